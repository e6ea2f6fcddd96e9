"""The long-range memory suite (adding problem, copy memory, sequential and permuted pixel MNIST) for each cell
and several seeds, trained with the project's own configs and ``train()``: test metrics beside each task's
baseline, then mean ± std per (task, cell). Lengths and budgets are CPU-sized by default (say so wherever the
numbers are quoted); ``--device cuda`` with the published lengths reproduces the papers' settings.

    python benchmarks/memory_suite.py --help
    python benchmarks/memory_suite.py --tasks adding --adding-len 50 --steps 600 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `python benchmarks/<script>.py` finds rnnexp and benchmarks.harness

from benchmarks.harness import CELLS, prepare_run  # noqa: E402
from rnnexp.training import compose_config, train  # noqa: E402

# task -> (overrides, the test metrics to report: the network's, then its baseline's)
TASKS = ("adding", "copy_memory", "pixels", "permuted_pixels")
METRICS = {
    "adding": ("test/mse", "test/baseline_mse"),
    "copy_memory": ("test/loss", "test/baseline_loss", "test/recall_acc"),
    "pixels": ("test/acc",),
    "permuted_pixels": ("test/acc",),
}


def task_overrides(task: str, args: argparse.Namespace) -> list[str]:
    """The datamodule and its CPU-sized lengths for one task of the suite."""
    if task == "adding":
        return [
            "datamodule=adding", f"datamodule.seq_len={args.adding_len}", f"datamodule.train_size={args.train_size}",
            "datamodule.batch_size=50",
        ]  # fmt: skip
    if task == "copy_memory":
        return [
            "datamodule=copy_memory", f"datamodule.delay={args.copy_delay}",
            f"datamodule.train_size={args.train_size}", "datamodule.batch_size=50",
        ]  # fmt: skip
    pixels = [
        "datamodule=mnist_pixels", f"datamodule.variant={args.variant}", f"datamodule.downsample={args.downsample}",
        f"datamodule.val_size={args.val_size}", "task.log_figures=false",
    ]  # fmt: skip
    if args.data_dir:
        pixels.append(f"datamodule.data_dir={args.data_dir}")
    return [*pixels, "datamodule.permute=true"] if task == "permuted_pixels" else pixels


def run(task: str, cell: str, seed: int, args: argparse.Namespace) -> dict[str, object]:
    overrides = [
        *task_overrides(task, args), f"model={cell}", f"model.hidden_size={args.hidden_size}", f"seed={seed}",
        f"optimizer.lr={args.lr}", f"trainer.max_steps={args.steps}", "trainer.max_epochs=-1",
        f"trainer.gradient_clip_val={args.clip}", f"trainer.accelerator={'gpu' if args.device == 'cuda' else 'cpu'}",
        f"trainer.val_check_interval={args.val_every}", "trainer.check_val_every_n_epoch=null",
        "~callbacks.early_stopping", "~callbacks.progress_bar", "+trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false", f"num_threads={args.threads}",
    ]  # fmt: skip
    if args.device == "cuda":
        overrides.append("trainer.precision=32-true")  # the papers' precision; bf16 blurs a 1e-4 MSE
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        results, _ = train(compose_config(overrides, Path(tmp)))
    row: dict[str, object] = {"task": task, "cell": cell, "seed": seed, "steps": results["global_step"]}
    row.update({name: results["test"].get(name) for name in METRICS[task]})
    row["wall_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(row), flush=True)
    return row


def summary(rows: list[dict[str, object]]) -> str:
    """Markdown: mean ± std over seeds per (task, cell), each metric its own column."""
    lines = [
        "| task | cell | seeds | metrics (mean ± std over seeds) | wall s/run |",
        "|---|---|---:|---|---:|",
    ]
    groups: dict[tuple[str, str], list[dict[str, object]]] = {}
    for row in rows:
        groups.setdefault((row["task"], row["cell"]), []).append(row)
    for (task, cell), group in groups.items():
        parts = []
        for name in METRICS[task]:
            values = [float(r[name]) for r in group if r.get(name) is not None]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            parts.append(f"{name.split('/')[1]} {statistics.mean(values):.4g} ± {spread:.2g}")
        wall = statistics.mean(float(r["wall_s"]) for r in group)
        lines.append(f"| {task} | {cell} | {len(group)} | {'; '.join(parts)} | {wall:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict[str, object]]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS))
    parser.add_argument("--cells", nargs="+", default=list(CELLS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=600, help="optimizer steps per run")
    parser.add_argument("--val-every", type=int, default=100, help="validate every N steps")
    parser.add_argument("--hidden-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--clip", type=float, default=1.0, help="gradient norm clip")
    parser.add_argument("--adding-len", type=int, default=50, help="adding problem T")
    parser.add_argument("--copy-delay", type=int, default=10, help="copy memory T (blanks after the symbols)")
    parser.add_argument("--train-size", type=int, default=10000, help="generated training sequences")
    parser.add_argument("--variant", default="fashion", help="MNIST family member for the pixel tasks")
    parser.add_argument("--data-dir", help="torchvision root holding the IDX files (default: the config's)")
    parser.add_argument("--downsample", type=int, default=4, help="pixel tasks: 1 is the published 784 steps")
    parser.add_argument("--val-size", type=int, default=5000)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, help="append each row to this JSON-lines file")
    args = parser.parse_args(argv)
    prepare_run(args.device, args.threads)
    rows = []
    for task in args.tasks:
        for cell in args.cells:
            for seed in args.seeds:
                rows.append(run(task, cell, seed, args))
                if args.out:
                    with args.out.open("a") as file:
                        file.write(json.dumps(rows[-1]) + "\n")
    print(summary(rows))
    return rows


if __name__ == "__main__":
    main()
