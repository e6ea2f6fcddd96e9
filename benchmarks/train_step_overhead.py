"""What the framework costs per training step: rnnexp's Lightning path against a plain PyTorch loop.

Both paths train the same ``RecurrentNet`` on the same MNIST-row tensors (synthetic IDX files read by the real
``MnistRows``) with the same optimizer and gradient clipping, in one process. The Lightning path is the
project's own: what ``rnnexp.training.build_experiment`` composes for ``train()`` from the default config
(``datamodule=mnist_rows model=<cell>``): its ``SequenceClassifier`` with its metrics, loss and grad-norm
logging, the CSV logger and the per-step callbacks; only checkpointing, early stopping, the progress bar and
validation are off, since they do not belong to a training step. The two
paths alternate, repeat after repeat (the order flips each time), so drift on a shared machine hits both.

Besides wall-clock samples/s it records the process's CPU time: with --threads 1 that is the work done,
which other processes on a busy machine do not inflate.

    python benchmarks/train_step_overhead.py --help
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig
from torch.nn import functional as F

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `python benchmarks/<script>.py` finds rnnexp and benchmarks.harness

from benchmarks.harness import (  # noqa: E402
    CellResult,
    Stopwatch,
    Timing,
    argument_parser,
    build_plain,
    check_counts,
    markdown_table,
    prepare_run,
    repeat_lines,
    run_alternating,
    step_only_overrides,
    time_fit,
)
from rnnexp.data.mnist_rows import write_idx  # noqa: E402
from rnnexp.training import Experiment, compose_config, instantiate  # noqa: E402

BARE = "bare"  # optional third path: the floor of Lightning's own loop


@dataclass(frozen=True)
class Shape:
    """MNIST-row sizes: 28 steps of 28 features, 10 classes (fixed by MnistRows); batch and hidden vary."""

    batch_size: int = 128
    hidden_size: int = 128
    steps: int = 28
    features: int = 28
    classes: int = 10


def write_fake_mnist(root: Path, shape: Shape, n_train: int, seed: int = 0) -> Path:
    """A torchvision root of random uint8 images ``(n, 28, 28)`` and labels; timing ignores their content."""
    rng = np.random.default_rng(seed)
    raw = root / "MNIST" / "raw"
    for prefix, count in (("train", n_train), ("t10k", shape.batch_size)):
        write_idx(
            raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (count, shape.steps, shape.features))
        )
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", rng.integers(0, shape.classes, count))
    return root


def bench_config(
    cell: str, shape: Shape, data_dir: Path, run_dir: Path, max_steps: int, device: str
) -> DictConfig:
    """The config ``train.py datamodule=mnist_rows model=<cell>`` gets, with training cut to ``max_steps``
    batches of one epoch and no validation (the validation split is one batch, unused)."""
    return compose_config(
        [
            "datamodule=mnist_rows",
            f"model={cell}",
            f"model.hidden_size={shape.hidden_size}",
            f"datamodule.data_dir={data_dir}",
            f"datamodule.batch_size={shape.batch_size}",
            f"datamodule.val_size={shape.batch_size}",
            "datamodule.download=false",
            *step_only_overrides(max_steps, device),
        ],
        run_dir,
    )


class BareTask(pl.LightningModule):
    """The floor: Lightning's loop around the same network and optimizer, with no metrics, no logging and no
    gradient norm, so ``lightning`` minus ``bare`` is what rnnexp adds and ``bare`` minus ``plain`` Lightning."""

    def __init__(self, net: torch.nn.Module, optimizer: Callable[..., torch.optim.Optimizer]):
        super().__init__()
        self.net, self.optimizer_factory = net, optimizer

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        inputs, targets = batch  # (batch, time, features), (batch,)
        return F.cross_entropy(self.net(inputs), targets)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.optimizer_factory(params=self.parameters())


def bare_task(experiment: Experiment) -> BareTask:
    """``BareTask`` around the network and optimizer the composed task would train."""
    return BareTask(experiment.task.net, experiment.task.optimizer_factory)


def clip_gradients(net: torch.nn.Module, value: float | None, algorithm: str | None) -> None:
    """What ``trainer.gradient_clip_val`` / ``gradient_clip_algorithm`` make Lightning do, by hand."""
    if not value:
        return
    if algorithm == "value":
        torch.nn.utils.clip_grad_value_(net.parameters(), value)
    else:
        torch.nn.utils.clip_grad_norm_(net.parameters(), value)


def time_plain(cfg: DictConfig, warmup: int, steps: int, device: torch.device) -> Timing:
    """The hand-written loop: same network, optimizer, clipping and uint8-to-float conversion as the task."""
    pl.seed_everything(cfg.seed, verbose=False)
    net, datamodule = build_plain(cfg, device)  # the datamodule: MnistRows
    datamodule.setup("fit")
    images, labels = datamodule.datasets["train"].tensors  # (N, time, features) uint8, (N,) int64
    net.train()
    optimizer = instantiate(cfg.optimizer)(params=net.parameters())
    clip_value, clip_algorithm = cfg.trainer.gradient_clip_val, cfg.trainer.gradient_clip_algorithm
    batch_size = cfg.datamodule.batch_size
    order = torch.randperm(len(images))
    stopwatch = Stopwatch(device)
    for step in range(warmup + steps):
        if step == warmup:
            stopwatch.start()
        index = order[step * batch_size : (step + 1) * batch_size]
        x, y = images[index].to(device), labels[index].to(device)
        x = (x.float() / 255.0 - datamodule.mean) / datamodule.std  # (batch, time, features)
        loss = F.cross_entropy(net(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip_gradients(net, clip_value, clip_algorithm)
        optimizer.step()
    return stopwatch.stop(steps, steps * batch_size)


def run_benchmark(
    cells: tuple[str, ...],
    shape: Shape,
    warmup: int,
    steps: int,
    repeats: int,
    device: str,
    work_dir: Path,
    bare: bool = False,
) -> list[CellResult]:
    """Per repeat and cell, time the paths back to back, reversing their order every other repeat."""
    check_counts(warmup, steps, repeats)
    if (shape.steps, shape.features, shape.classes) != (28, 28, 10):
        raise ValueError("MnistRows reads 28x28 images with 10 classes; only batch and hidden sizes vary")
    torch_device = torch.device(device)
    data_dir = write_fake_mnist(work_dir / "data", shape, n_train=shape.batch_size * (warmup + steps + 1))
    lightning = partial(
        time_fit, warmup=warmup, steps=steps, items_per_step=shape.batch_size, device=torch_device
    )
    paths = {
        "lightning": lightning,
        "plain": partial(time_plain, warmup=warmup, steps=steps, device=torch_device),
    }
    if bare:
        paths[BARE] = partial(lightning, bare=bare_task)

    def config_for(cell: str, repeat: int) -> DictConfig:
        run_dir = work_dir / f"run-{cell}-{repeat}"
        return bench_config(cell, shape, data_dir, run_dir, warmup + steps, device)

    return run_alternating(cells, repeats, config_for, paths)


def format_table(results: list[CellResult], shape: Shape) -> str:
    """Median samples/s per path and the ratios to the plain loop (see ``CellResult``)."""
    bare = all(BARE in r.timings for r in results)
    header = ["cell", "plain samples/s", "lightning samples/s", "ratio", "paired ratio", "CPU-time ratio"]
    rows = []
    for r in results:
        row = [r.cell, f"{r.per_s('plain'):.0f}", f"{r.per_s('lightning'):.0f}"]
        row += [f"{r.ratio():.3f}", f"{r.paired_ratio():.3f}", f"{r.cpu_ratio():.3f}"]
        rows.append(row + ([f"{r.per_s(BARE):.0f}", f"{r.ratio(BARE):.3f}"] if bare else []))
    caption = (
        f"batch {shape.batch_size}, {shape.steps} steps x {shape.features} features, hidden {shape.hidden_size}; "
        f"median of {len(results[0].timings['plain'])} repeats"
    )
    return markdown_table(
        caption, header + (["bare Lightning samples/s", "bare ratio"] if bare else []), rows
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argument_parser(__doc__, steps=50, repeats=5)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--hidden-size", type=int, default=128)
    parser.add_argument(
        "--bare", action="store_true", help="also time a bare LightningModule: the floor of Lightning's loop"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    prepare_run(args.device, args.threads)
    shape = Shape(batch_size=args.batch_size, hidden_size=args.hidden_size)
    with tempfile.TemporaryDirectory(prefix="rnnexp-bench-") as tmp:
        results = run_benchmark(
            tuple(args.cells), shape, args.warmup, args.steps, args.repeats, args.device, Path(tmp), args.bare
        )
    if args.verbose:
        print("\n".join(repeat_lines(results, "samples")))
    print(format_table(results, shape))


if __name__ == "__main__":
    main()
