"""Accuracy of every cell at one equal, small budget: the same tasks, widths, steps and seeds, through
``train()`` exactly as ``python train.py`` runs them.

    python benchmarks/cell_accuracy.py --seeds 0 1 --out accuracy.csv
    python benchmarks/cell_accuracy.py --tasks sine_cos --cells gru mingru --seeds 0

Tasks: ``sine_cos`` (sin x → cos x per step, test MSE), ``sine_forecast`` (20 values after each context
window, test MSE), ``fashion_rows`` (Fashion-MNIST read row by row, 28 steps of 28 pixels, test accuracy;
Debian's dataset-fashion-mnist files, a subset of the batches) and ``text`` (a character language model on the
plain-text licences in /usr/share/common-licenses, test loss in nats per character). The reference cells
equal the fused ones (tests/test_cells.py), so they are left out; the fused three are the baselines.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch

from rnnexp.training import compose_config, train

CELLS = ("rnn", "lstm", "gru", "indrnn", "mingru", "minlstm")
FASHION = Path("/usr/share/datasets/fashion-mnist")
LICENSES = Path("/usr/share/common-licenses")
COMMON = ["callbacks=none", "logger=csv", "trainer.enable_model_summary=false", "+trainer.enable_progress_bar=false",
          "model.hidden_size=32", "print_config=false", "optimizer.lr=1e-2"]  # fmt: skip

# task -> (overrides, the test metric, whether higher is better)
TASKS: dict[str, tuple[list[str], str, bool]] = {
    "sine_cos": (["datamodule=sine", "datamodule.num_sequences=512", "datamodule.batch_size=32",
                  "trainer.max_epochs=6", "task.log_figures=false"], "test/mse", False),
    "sine_forecast": (["datamodule=sine_forecast", "datamodule.num_sequences=512", "datamodule.batch_size=32",
                       "trainer.max_epochs=6", "task.log_figures=false"], "test/mse", False),
    "fashion_rows": (["datamodule=mnist_rows", "datamodule.variant=fashion", "datamodule.download=false",
                      "datamodule.batch_size=64", "trainer.max_epochs=2", "+trainer.limit_train_batches=60",
                      "trainer.limit_val_batches=10", "+trainer.limit_test_batches=40"], "test/acc", True),
    "text": (["datamodule=text", "datamodule.batch_size=16", "datamodule.seq_len=64", "task.embedding_dim=16",
              "trainer.max_epochs=1", "+trainer.limit_train_batches=120", "trainer.val_check_interval=120",
              "trainer.limit_val_batches=8", "+trainer.limit_test_batches=8", "task.sample_length=20"],
             "test/loss", False),
}  # fmt: skip


def prepare_data(root: Path) -> tuple[Path, Path]:
    """Overrides pointing the datamodules at local files: Fashion-MNIST's gzipped IDX files in a torchvision
    root, and one text file of the licences."""
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for packed in FASHION.glob("*.gz"):
        shutil.copy(packed, raw / packed.name)
    corpus = root / "licenses.txt"
    corpus.write_text(
        "\n".join(p.read_text(errors="replace") for p in sorted(LICENSES.iterdir()) if p.is_file()),
        encoding="utf-8",
    )
    return root, corpus


def run_one(task: str, cell: str, seed: int, data: tuple[Path, Path], out: Path) -> tuple[float, float]:
    """The test metric and the CPU seconds of one run."""
    overrides, metric, _ = TASKS[task]
    extra = [f"paths.data_dir={data[0]}"] + ([f"datamodule.path={data[1]}"] if task == "text" else [])
    cell_choice = [f"model.cell={cell}", "model.nonlinearity=null"]
    cfg = compose_config(
        [*COMMON, *overrides, *extra, *cell_choice, f"seed={seed}"], out / f"{task}-{cell}-{seed}"
    )
    start = time.process_time()
    results, _ = train(cfg)
    return float(results["test"][metric]), time.process_time() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--cells", nargs="+", default=list(CELLS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--out", type=Path, default=Path("cell_accuracy.csv"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    load = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = prepare_data(Path(tmp) / "data")
        for task in args.tasks:
            for seed in args.seeds:
                for cell in args.cells:
                    value, cpu = run_one(task, cell, seed, data, Path(tmp) / "runs")
                    rows.append({"task": task, "cell": cell, "seed": seed, "value": value, "cpu_s": cpu})
                    print(rows[-1], flush=True)
    with args.out.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"\nload average {load:.1f} before, {os.getloadavg()[0]:.1f} after; {len(args.seeds)} seeds\n")
    print("| cell | " + " | ".join(f"{t} ({TASKS[t][1]})" for t in args.tasks) + " | CPU s per run |")
    print("|" + "---|" * (len(args.tasks) + 2))
    for cell in args.cells:
        cells, cpu = [], []
        for task in args.tasks:
            values = [r["value"] for r in rows if r["task"] == task and r["cell"] == cell]
            cpu += [r["cpu_s"] for r in rows if r["task"] == task and r["cell"] == cell]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):.3f} ± {spread:.3f}")
        print(f"| {cell} | " + " | ".join(cells) + f" | {statistics.mean(cpu):.0f} |")


if __name__ == "__main__":
    main()
