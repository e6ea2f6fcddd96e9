"""The timing harness both benchmarks share: clocks that wait for the device, the per-step clock inside a
Lightning fit of exactly what ``train()`` composes, the records of timed runs, repeats that alternate the
paths, the result table and the common options. Each benchmark script keeps only what it measures."""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import hydra
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig
from pytorch_lightning.callbacks import Checkpoint, EarlyStopping, ProgressBar

from rnnexp.training import Experiment, build_experiment, instantiate, instantiate_group

CELLS = ("rnn", "lstm", "gru")


@dataclass(frozen=True)
class Timing:
    """One timed run of ``steps`` steps over ``items`` items (images, characters); ``cpu_s`` is this
    process's CPU time over all its threads, which other processes on a busy machine do not inflate."""

    steps: int
    items: int
    wall_s: float
    cpu_s: float

    @property
    def per_s(self) -> float:
        return self.items / self.wall_s

    @property
    def per_cpu_s(self) -> float:
        return self.items / self.cpu_s


Measure = Callable[[DictConfig], Timing]  # one path: time a run of this config


@dataclass
class CellResult:
    """Every repeat of each path for one cell, in the order they ran. Paired ratios match repeat i of a path
    with repeat i of the baseline, which ran right next to it."""

    cell: str
    timings: dict[str, list[Timing]] = field(default_factory=dict)

    def per_s(self, path: str) -> float:
        """Median over repeats of wall-clock items/s."""
        return statistics.median(t.per_s for t in self.timings[path])

    def ratio(self, path: str = "lightning", baseline: str = "plain") -> float:
        """Median items/s of ``path`` over median items/s of ``baseline``."""
        return self.per_s(path) / self.per_s(baseline)

    def paired_ratio(self, path: str = "lightning", baseline: str = "plain") -> float:
        """Median over repeats of ``path`` / ``baseline`` items/s, each pair measured back to back."""
        pairs = zip(self.timings[path], self.timings[baseline], strict=True)
        return statistics.median(other.per_s / base.per_s for other, base in pairs)

    def cpu_ratio(self, path: str = "lightning", baseline: str = "plain") -> float:
        """The paired ratio from CPU time instead of wall time."""
        pairs = zip(self.timings[path], self.timings[baseline], strict=True)
        return statistics.median(other.per_cpu_s / base.per_cpu_s for other, base in pairs)


class Stopwatch:
    """Wall and CPU clocks started and stopped together, after the device has finished its queued work."""

    def __init__(self, device: torch.device):
        self.device = device
        self.wall = self.cpu = 0.0

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def start(self) -> None:
        self._sync()
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def stop(self, steps: int, items: int) -> Timing:
        self._sync()
        return Timing(steps, items, time.perf_counter() - self.wall, time.process_time() - self.cpu)


class StepClock(pl.Callback):
    """Times the training steps after ``warmup``: from the end of step warmup-1 to the end of the last step,
    so each timed step includes its batch fetch, transfer, hooks and logging. The step count is the
    optimizer steps the Trainer made in between, not the number asked for."""

    def __init__(self, warmup: int, steps: int, items_per_step: int, device: torch.device):
        self.warmup, self.last, self.items_per_step = warmup, warmup + steps - 1, items_per_step
        self.stopwatch = Stopwatch(device)
        self.first_step = 0
        self.timing: Timing | None = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if batch_idx == self.warmup - 1:
            self.stopwatch.start()
            self.first_step = trainer.global_step
        if batch_idx == self.last:
            steps = trainer.global_step - self.first_step
            self.timing = self.stopwatch.stop(steps, steps * self.items_per_step)


def per_step_callbacks(cfg: DictConfig) -> list[pl.Callback]:
    """The configured callbacks minus checkpointing, early stopping (it acts after validation, which is off)
    and the progress bar; whatever else the default config runs each step stays in the measurement."""
    off = (Checkpoint, EarlyStopping, ProgressBar)
    return [cb for cb in instantiate_group(cfg.get("callbacks")) if not isinstance(cb, off)]


def time_fit(
    cfg: DictConfig,
    warmup: int,
    steps: int,
    items_per_step: int,
    device: torch.device,
    bare: Callable[[Experiment], pl.LightningModule] | None = None,
) -> Timing:
    """Fit what ``rnnexp.training.build_experiment`` composes (the objects ``train()`` fits) for
    warmup + steps batches and time the last ``steps``. The Trainer keeps the configured callbacks that act
    per step; with ``bare`` it keeps only the clock and fits ``bare(experiment)`` instead of the task."""
    pl.seed_everything(cfg.seed, verbose=False)
    clock = StepClock(warmup, steps, items_per_step, device)
    experiment = build_experiment(cfg, callbacks=[clock] if bare else [*per_step_callbacks(cfg), clock])
    task = bare(experiment) if bare else experiment.task
    experiment.trainer.fit(task, datamodule=experiment.datamodule)
    if clock.timing is None or experiment.trainer.global_step != warmup + steps:
        raise RuntimeError(f"Lightning ran {experiment.trainer.global_step} steps, expected {warmup + steps}")
    return clock.timing


def build_plain(cfg: DictConfig, device: torch.device) -> tuple[torch.nn.Module, pl.LightningDataModule]:
    """The task's network and the datamodule, built from the config as ``build_task`` builds them, for a
    hand-written loop."""
    spec = instantiate(cfg.model)
    datamodule = instantiate(cfg.datamodule)
    task_class = hydra.utils.get_class(cfg.task._target_)
    net = task_class.build_net(spec, datamodule, **task_class.net_options(cfg.task))
    return net.to(device), datamodule


def run_alternating(
    cells: Sequence[str],
    repeats: int,
    config_for: Callable[[str, int], DictConfig],
    paired: Mapping[str, Measure],
    after: Mapping[str, Measure] | None = None,
) -> list[CellResult]:
    """Per repeat and cell, time the ``paired`` paths back to back, in their order on even repeats and
    reversed on odd ones (so drift on a shared machine hits all of them), then the ``after`` measures."""
    after = after or {}
    measures = {**paired, **after}
    results = {cell: CellResult(cell, {path: [] for path in [*paired, *after]}) for cell in cells}
    for repeat in range(repeats):
        for cell in cells:
            cfg = config_for(cell, repeat)
            order = list(paired) if repeat % 2 == 0 else list(paired)[::-1]
            for path in [*order, *after]:
                results[cell].timings[path].append(measures[path](cfg))
    return list(results.values())


def check_counts(warmup: int, steps: int, repeats: int) -> None:
    if warmup < 1 or steps < 1 or repeats < 1:
        raise ValueError(f"warmup={warmup}, steps={steps}, repeats={repeats} must all be >= 1")


def markdown_table(caption: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A caption line, then a Markdown table (first column left-aligned, the numbers right-aligned)."""
    lines = [caption, "| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def repeat_lines(results: Sequence[CellResult], unit: str) -> list[str]:
    """Every repeat's items/s per cell and path, in the order they ran (``--verbose``)."""
    return [
        f"{r.cell} {path}: {[round(t.per_s) for t in timings]} {unit}/s"
        for r in results
        for path, timings in r.timings.items()
    ]


def step_only_overrides(max_steps: int, device: str) -> list[str]:
    """Overrides that keep one epoch of ``max_steps`` training batches and nothing else (no validation,
    no model summary, no progress bar, no checkpoints): what is timed is the training step."""
    return [
        f"trainer.accelerator={'gpu' if device == 'cuda' else 'cpu'}",
        "trainer.max_epochs=1",
        f"++trainer.max_steps={max_steps}",
        "++trainer.limit_val_batches=0",
        "trainer.num_sanity_val_steps=0",
        "trainer.enable_model_summary=false",
        "++trainer.enable_progress_bar=false",
        "++trainer.enable_checkpointing=false",
    ]


def argument_parser(description: str, steps: int, repeats: int) -> argparse.ArgumentParser:
    """The options every benchmark has; a script adds its sizes."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cells", nargs="+", choices=CELLS, default=list(CELLS))
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps before the timed ones")
    parser.add_argument("--steps", type=int, default=steps, help="timed training steps per repeat")
    parser.add_argument(
        "--repeats", type=int, default=repeats, help="alternating repeats; medians are reported"
    )
    parser.add_argument(
        "--threads", type=int, default=os.cpu_count(), help="torch.set_num_threads (default: all)"
    )
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--verbose", action="store_true", help="also print every repeat's throughput")
    return parser


def quiet_lightning() -> None:
    """Trainer start-up chatter (accelerator, few-workers hints) would bury the table."""
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning.fabric", "rnnexp"):
        logging.getLogger(name).setLevel(logging.ERROR)
    for pattern in (
        ".*does not have many workers.*",
        ".*GPU available but not used.*",
        ".*treespec.*",
        ".*smaller than the logging interval.*",
        ".*have no `validation_step`.*",  # the bare task of train_step_overhead
        ".*Experiment logs directory.*exists.*",  # one temp run dir per repeat
    ):
        warnings.filterwarnings("ignore", pattern)


def prepare_run(device: str, threads: int) -> None:
    """Check the device, quiet Lightning, set torch's threads and print what the numbers were measured on."""
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device here; run with --device cpu.")
    quiet_lightning()
    torch.set_num_threads(threads)
    where = torch.cuda.get_device_name() if device == "cuda" else f"cpu, {os.cpu_count()} cores"
    print(
        f"torch {torch.__version__}, pytorch-lightning {pl.__version__}, threads {torch.get_num_threads()}, {where}"
    )
