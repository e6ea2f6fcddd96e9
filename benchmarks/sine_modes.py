"""The sine sequence modes side by side, trained with the project's own config and ``train()``:

- stateful vs stateless sin -> cos: the same model, seed and epochs, with ``datamodule.tbptt=true``
  (streams, hidden state carried across batches) and without (independent windows);
- encoder-decoder forecasting at ``--horizon`` against the persistence baseline, on clean waves (noise 0)
  and on the default noise;
- training time per epoch (wall and process CPU, validation excluded) of the forecaster against the
  many-to-many model on the same number of windows.

    python benchmarks/sine_modes.py --help
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `python benchmarks/<script>.py` finds rnnexp and benchmarks.harness

from benchmarks.harness import prepare_run  # noqa: E402
from rnnexp.training import compose_config, train  # noqa: E402


class EpochTimer(pl.Callback):
    """Wall and process CPU seconds of each training epoch (validation runs after it is timed)."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.started = (time.perf_counter(), time.process_time())

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.wall.append(time.perf_counter() - self.started[0])
        self.cpu.append(time.process_time() - self.started[1])


def run(name: str, overrides: list[str], common: list[str]) -> dict[str, float | str]:
    with tempfile.TemporaryDirectory() as tmp:
        timer_cb = ["+callbacks.epoch_timer._target_=benchmarks.sine_modes.EpochTimer"]
        cfg = compose_config([*common, *overrides, *timer_cb], Path(tmp))
        results, objects = train(cfg)
        timer = next(cb for cb in objects["trainer"].callbacks if type(cb).__name__ == "EpochTimer")
    later = slice(1, None) if len(timer.wall) > 1 else slice(None)  # epoch 0 includes warm-up
    row = {"run": name, **{k: v for k, v in results["test"].items() if k.endswith("mse")}}
    row["s/epoch"] = sum(timer.wall[later]) / len(timer.wall[later])
    row["cpu s/epoch"] = sum(timer.cpu[later]) / len(timer.cpu[later])
    print(row, flush=True)
    return row


def main(argv: list[str] | None = None) -> list[dict[str, float | str]]:
    """Run the comparisons, print each row as it finishes and then the Markdown table; return the rows."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--num-sequences", type=int, default=1024)
    parser.add_argument("--hidden-size", type=int, default=32)
    parser.add_argument("--cell", default="gru")
    parser.add_argument("--horizon", type=int, default=20)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--lr", type=float, help="optimizer.lr (default: the config's)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", choices=["stateful", "forecast"], help="run one of the two comparisons")
    args = parser.parse_args(argv)
    prepare_run("cpu", args.threads)
    common = [
        f"model={args.cell}", f"model.hidden_size={args.hidden_size}", f"trainer.max_epochs={args.epochs}",
        f"datamodule.num_sequences={args.num_sequences}", f"seed={args.seed}", "trainer.accelerator=cpu",
        "logger=csv", "~callbacks.progress_bar", "+trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false", "task.log_figures=false",
    ]  # fmt: skip
    if args.lr is not None:
        common.append(f"optimizer.lr={args.lr}")
    forecast = ["datamodule=sine_forecast", f"datamodule.horizon={args.horizon}"]
    rows = []
    if args.only in (None, "stateful"):
        rows.append(run("sin->cos, independent windows", ["datamodule=sine"], common))
        rows.append(run("sin->cos, tbptt streams", ["datamodule=sine", "datamodule.tbptt=true"], common))
    if args.only in (None, "forecast"):
        rows.append(run("forecast, noise 0", [*forecast, "datamodule.noise=0.0"], common))
        rows.append(run("forecast, noise 0.05", forecast, common))
    keys = ["run", "test/mse", "test/naive_mse", "s/epoch", "cpu s/epoch"]
    print("\n| " + " | ".join(keys) + " |\n|" + "---|" * len(keys))
    for row in rows:
        cells = [row.get(k, "") for k in keys]
        print("| " + " | ".join(f"{c:.4g}" if isinstance(c, float) else str(c) for c in cells) + " |")
    return rows


if __name__ == "__main__":
    main()
