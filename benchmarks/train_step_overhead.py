"""What the framework costs per training step: rnnexp's Lightning path against a plain PyTorch loop.

Both paths train the same ``RecurrentNet`` on the same MNIST-row tensors (synthetic IDX files read by the real
``MnistRows``) with the same optimizer and gradient clipping, in one process. The Lightning path is the
project's own: the composed default config (``datamodule=mnist_rows model=<cell>``), its ``SequenceClassifier``
with its metrics, loss and grad-norm logging, the CSV logger and the per-step callbacks; only checkpointing,
early stopping, the progress bar and validation are off, since they do not belong to a training step. The two
paths alternate, repeat after repeat (the order flips each time), so drift on a shared machine hits both.

Besides wall-clock samples/s it records the process's CPU time: with --threads 1 that is the work done,
which other processes on a busy machine do not inflate.

    python benchmarks/train_step_overhead.py --help
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from hydra.utils import get_class
from omegaconf import DictConfig
from torch.nn import functional as F

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # tests.conftest composes the real config and writes real IDX files

from benchmarks.common import per_step_callbacks, prepare_run, step_only_overrides  # noqa: E402
from rnnexp.data import MnistRows  # noqa: E402
from rnnexp.training import build_task, instantiate, instantiate_group  # noqa: E402
from tests.conftest import compose_config, write_idx  # noqa: E402

CELLS = ("rnn", "lstm", "gru")
PATHS = ("lightning", "plain")
BARE = "bare"  # optional third path: the floor of Lightning's own loop


@dataclass(frozen=True)
class Shape:
    """MNIST-row sizes: 28 steps of 28 features, 10 classes (fixed by MnistRows); batch and hidden vary."""

    batch_size: int = 128
    hidden_size: int = 128
    steps: int = 28
    features: int = 28
    classes: int = 10


@dataclass(frozen=True)
class Timing:
    """One timed run of ``samples`` training samples; ``cpu_s`` is this process's CPU time (all threads)."""

    samples: int
    wall_s: float
    cpu_s: float

    @property
    def per_s(self) -> float:
        return self.samples / self.wall_s

    @property
    def per_cpu_s(self) -> float:
        return self.samples / self.cpu_s


@dataclass
class CellResult:
    """Every repeat of each path for one cell, in the order they ran; paired ratios match repeat i of a path
    with repeat i of the plain loop, which ran right next to it."""

    cell: str
    timings: dict[str, list[Timing]] = field(default_factory=dict)

    def samples_per_s(self, path: str) -> float:
        """Median over repeats of wall-clock samples/s."""
        return statistics.median(t.per_s for t in self.timings[path])

    def ratio(self, path: str = "lightning") -> float:
        """Median samples/s of ``path`` over median samples/s of the plain loop."""
        return self.samples_per_s(path) / self.samples_per_s("plain")

    def paired_ratio(self, path: str = "lightning") -> float:
        """Median over repeats of ``path`` / plain samples/s, each pair measured back to back."""
        pairs = zip(self.timings[path], self.timings["plain"], strict=True)
        return statistics.median(other.per_s / plain.per_s for other, plain in pairs)

    def cpu_ratio(self, path: str = "lightning") -> float:
        """The paired ratio from CPU time instead of wall time (CPU seconds per sample, plain over ``path``)."""
        pairs = zip(self.timings[path], self.timings["plain"], strict=True)
        return statistics.median(other.per_cpu_s / plain.per_cpu_s for other, plain in pairs)


class Stopwatch:
    """Wall and CPU clocks started and stopped together (after the device has finished its queued work)."""

    def __init__(self, device: torch.device):
        self.device = device
        self.wall = self.cpu = 0.0

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def start(self) -> None:
        self._sync()
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def stop(self, samples: int) -> Timing:
        self._sync()
        return Timing(samples, time.perf_counter() - self.wall, time.process_time() - self.cpu)


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


class StepClock(pl.Callback):
    """Times the steps after ``warmup``: from the end of step warmup-1 to the end of the last step, so each
    timed step includes its batch fetch, transfer, hooks and logging."""

    def __init__(self, warmup: int, steps: int, batch_size: int, device: torch.device):
        self.warmup, self.last = warmup, warmup + steps - 1
        self.samples = steps * batch_size
        self.stopwatch = Stopwatch(device)
        self.timing: Timing | None = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if batch_idx == self.warmup - 1:
            self.stopwatch.start()
        if batch_idx == self.last:
            self.timing = self.stopwatch.stop(self.samples)


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


def time_lightning(
    cfg: DictConfig, warmup: int, steps: int, device: torch.device, bare: bool = False
) -> Timing:
    """Fit the project's task (or, with ``bare``, ``BareTask`` without the per-step callbacks) for
    warmup + steps batches with a real ``pl.Trainer`` built from the config."""
    pl.seed_everything(cfg.seed, verbose=False)
    spec = instantiate(cfg.model)
    datamodule = instantiate(cfg.datamodule)
    clock = StepClock(warmup, steps, cfg.datamodule.batch_size, device)
    trainer: pl.Trainer = instantiate(
        cfg.trainer,
        callbacks=[clock] if bare else [*per_step_callbacks(cfg), clock],
        logger=instantiate_group(cfg.get("logger")) or False,
    )
    task = build_task(cfg, spec, datamodule)
    if bare:
        task = BareTask(task.net, instantiate(cfg.optimizer))
    trainer.fit(task, datamodule=datamodule)
    if clock.timing is None or trainer.global_step != warmup + steps:
        raise RuntimeError(f"Lightning ran {trainer.global_step} steps, expected {warmup + steps}")
    return clock.timing


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
    spec = instantiate(cfg.model)
    datamodule: MnistRows = instantiate(cfg.datamodule)
    datamodule.setup("fit")
    images, labels = datamodule.datasets["train"].tensors  # (N, time, features) uint8, (N,) int64
    net = get_class(cfg.task._target_).build_net(spec, datamodule).to(device).train()
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
    return stopwatch.stop(steps * batch_size)


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
    if warmup < 1 or steps < 1 or repeats < 1:
        raise ValueError(f"warmup={warmup}, steps={steps}, repeats={repeats} must all be >= 1")
    if (shape.steps, shape.features, shape.classes) != (28, 28, 10):
        raise ValueError("MnistRows reads 28x28 images with 10 classes; only batch and hidden sizes vary")
    torch_device = torch.device(device)
    data_dir = write_fake_mnist(work_dir / "data", shape, n_train=shape.batch_size * (warmup + steps + 1))
    measure = {
        "lightning": time_lightning,
        "plain": time_plain,
        BARE: partial(time_lightning, bare=True),
    }
    paths = (*PATHS, BARE) if bare else PATHS
    results = {cell: CellResult(cell, {path: [] for path in paths}) for cell in cells}
    for repeat in range(repeats):
        for cell in cells:
            run_dir = work_dir / f"run-{cell}-{repeat}"
            cfg = bench_config(cell, shape, data_dir, run_dir, warmup + steps, device)
            for path in paths if repeat % 2 == 0 else paths[::-1]:
                results[cell].timings[path].append(measure[path](cfg, warmup, steps, torch_device))
    return list(results.values())


def format_table(results: list[CellResult], shape: Shape) -> str:
    """A Markdown table: median samples/s per path and the ratios to the plain loop (see ``CellResult``)."""
    bare = all(BARE in r.timings for r in results)
    header = "| cell | plain samples/s | lightning samples/s | ratio | paired ratio | CPU-time ratio |"
    lines = [
        f"batch {shape.batch_size}, {shape.steps} steps x {shape.features} features, hidden {shape.hidden_size}; "
        f"median of {len(results[0].timings['plain'])} repeats",
        header + (" bare Lightning samples/s | bare ratio |" if bare else ""),
        "|---|---:|---:|---:|---:|---:|" + ("---:|---:|" if bare else ""),
    ]
    for r in results:
        row = (
            f"| {r.cell} | {r.samples_per_s('plain'):.0f} | {r.samples_per_s('lightning'):.0f} "
            f"| {r.ratio():.3f} | {r.paired_ratio():.3f} | {r.cpu_ratio():.3f} |"
        )
        if bare:
            row += f" {r.samples_per_s(BARE):.0f} | {r.ratio(BARE):.3f} |"
        lines.append(row)
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cells", nargs="+", choices=CELLS, default=list(CELLS))
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--hidden-size", type=int, default=128)
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps before the timed ones")
    parser.add_argument("--steps", type=int, default=50, help="timed training steps per repeat")
    parser.add_argument("--repeats", type=int, default=5, help="alternating repeats; medians are reported")
    parser.add_argument(
        "--threads", type=int, default=os.cpu_count(), help="torch.set_num_threads (default: all)"
    )
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument(
        "--bare", action="store_true", help="also time a bare LightningModule: the floor of Lightning's loop"
    )
    parser.add_argument("--verbose", action="store_true", help="also print every repeat's samples/s")
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
        for r in results:
            for path, timings in r.timings.items():
                print(f"{r.cell} {path}: {[round(t.per_s) for t in timings]} samples/s")
    print(format_table(results, shape))


if __name__ == "__main__":
    main()
