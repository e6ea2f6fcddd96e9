"""The timing harness both benchmarks share: clocks that wait for the device, the per-step clock inside a
Lightning fit of exactly what ``train()`` composes, the records of timed runs, repeats that alternate the
paths, the result table and the common options. Each benchmark script keeps only what it measures."""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import logging
import os
import platform
import statistics
import threading
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
    """One timed run of ``steps`` steps over ``items`` items (images, characters); ``cpu_s`` is the CPU time
    of the work timed (a window: the process's, all threads; a relay: the path's own thread's), which other
    processes on a busy machine do not inflate."""

    steps: int
    items: int
    wall_s: float
    cpu_s: float
    left_out: int = 0  # a relay's rounds left out as outliers (``Relay``)

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


def _sync(device: torch.device) -> None:
    """Wait for the device's queued work, so a clock read after it counts that work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


M_ARENA_MAX = -8  # glibc's mallopt parameter (malloc.h)


def share_one_malloc_arena() -> bool:
    """Make the threads started from now on allocate from glibc's main heap, as a single-threaded loop does.

    It only caps the number of heaps (``M_ARENA_MAX`` = 1): threads that allocated before the call keep their
    own, and a later thread may be given one of those. So it acts fully when called before any thread has
    allocated (the overhead script calls it first thing; ``Relay.run`` again, for other callers), or with
    ``MALLOC_ARENA_MAX=1`` in the environment at process start.

    Why: glibc gives each new thread a heap (arena) of its own, which returns freed memory to the system
    sooner; a relay path's thread then pays page faults for memory the main heap would have kept. Measured on
    the text classifier's LSTM (variable-length batches, ~250 ms steps): the paths of one interleaved repeat
    differed up to 3x in items/s with per-thread arenas and agreed within ~10 % with one, and the classifier's
    LSTM lost a fifth of its speed in one path's whole repeat now and then. The relay's threads never run at
    once, so sharing one arena costs no lock waits. Returns whether glibc took the setting (glibc only;
    elsewhere the allocator is left as it is)."""
    if platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    return bool(libc.mallopt(M_ARENA_MAX, 1))


class Stopwatch:
    """Wall and CPU clocks started and stopped together, after the device has finished its queued work."""

    def __init__(self, device: torch.device):
        self.device = device
        self.wall = self.cpu = 0.0

    def start(self) -> None:
        _sync(self.device)
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def stop(self, steps: int, items: int) -> Timing:
        _sync(self.device)
        return Timing(steps, items, time.perf_counter() - self.wall, time.process_time() - self.cpu)


class WindowClock:
    """Times the steps after ``warmup`` as one window: from the end of step ``warmup`` to the end of step
    ``warmup + steps``, so each timed step includes its batch fetch, transfer, hooks and logging."""

    def __init__(self, warmup: int, steps: int, items_per_step: int, device: torch.device):
        self.warmup, self.steps, self.items_per_step = warmup, steps, items_per_step
        self.stopwatch = Stopwatch(device)
        self.done = 0
        self._timing: Timing | None = None

    def step_done(self) -> None:
        self.done += 1
        if self.done == self.warmup:
            self.stopwatch.start()
        elif self.done == self.warmup + self.steps:
            self._timing = self.stopwatch.stop(self.steps, self.steps * self.items_per_step)

    def timing(self) -> Timing:
        if self._timing is None:
            raise RuntimeError(f"{self.done} steps ran, {self.warmup + self.steps} were to be timed")
        return self._timing


class Relay:
    """Trains several paths at the same time, one step each in turn, so that they share the machine to within a
    step (milliseconds) instead of runs seconds apart.

    Each path runs on its own thread and, after every step, hands a baton to the next path and waits for its
    turn; only the thread holding the baton runs, so no two steps overlap. A path's timed step is the span from
    taking the baton to its next ``step_done``: wall clock and the thread's own CPU time (with one torch
    thread, all of the step's compute). Why: on a shared or virtualised CPU the speed of the same work drifts
    by 10 % and more within seconds (cache and memory-bandwidth contention from other tenants, frequency), so
    runs timed one after the other differ by more than the few percent a framework's overhead is; steps
    interleaved a few milliseconds apart see the same drift. Every path also starts each step with caches
    another path's step has used, so absolute items/s run lower than a path timed alone; the ratios are fair.

    A round (the k-th timed step of every path) is left out when any path's step in it took more than
    ``outlier`` times that path's median step: a preemption or page fault landing in one path's step, not
    work of the loop's own (every path loses the round).
    """

    def __init__(
        self,
        order: Sequence[str],
        warmup: int,
        steps: int,
        items_per_step: int,
        device: torch.device,
        outlier: float = 3.0,
    ):
        if warmup < 1 or steps < 1:
            raise ValueError(
                f"a relay needs warmup >= 1 and steps >= 1 (got warmup={warmup}, steps={steps}): the first "
                "step of every path pays one-off costs (allocation, kernel selection) and must not be timed"
            )
        self.order, self.warmup, self.steps = list(order), warmup, steps
        self.items_per_step, self.device, self.outlier = items_per_step, device, outlier
        self._turn = {path: threading.Event() for path in self.order}
        self._finished: set[str] = set()
        self._lock = threading.Lock()
        self._began: dict[str, tuple[float, float]] = {}
        self._done = dict.fromkeys(self.order, 0)
        self._segments: dict[str, list[tuple[float, float]]] = {path: [] for path in self.order}

    def clock(self, path: str) -> RelayClock:
        """The clock a path's loop calls after every optimizer step."""
        return RelayClock(self, path)

    def run(self, measures: Mapping[str, Callable[[], object]]) -> dict[str, Timing]:
        """Run every path's loop (``measures[path]()``, which calls its clock's ``step_done`` after each step)
        on its own thread, in turns; return each path's timing over the rounds kept. A path that raises stops
        only itself; its error is raised once all threads have ended."""
        errors: dict[str, BaseException] = {}
        share_one_malloc_arena()  # before the threads start: each would otherwise get a heap of its own

        def body(path: str) -> None:
            self._take_turn(path)
            try:
                measures[path]()
            except BaseException as error:  # re-raised in the calling thread below
                errors[path] = error
            finally:
                with self._lock:
                    self._finished.add(path)
                self._hand_on(path)

        threads = [
            threading.Thread(target=body, args=(path,), name=f"relay-{path}", daemon=True)
            for path in self.order
        ]
        for thread in threads:
            thread.start()
        self._turn[self.order[0]].set()
        for thread in threads:
            thread.join()
        if errors:
            path, error = next(iter(errors.items()))
            raise RuntimeError(f"the {path!r} path failed") from error
        return self._timings()

    def step_done(self, path: str) -> None:
        _sync(self.device)
        wall, cpu = self._began[path]
        span = (time.perf_counter() - wall, time.thread_time() - cpu)
        self._done[path] += 1
        if self.warmup < self._done[path] <= self.warmup + self.steps:
            self._segments[path].append(span)
        self._hand_on(path)
        self._take_turn(path)

    def _take_turn(self, path: str) -> None:
        self._turn[path].wait()
        self._turn[path].clear()
        _sync(self.device)
        self._began[path] = (time.perf_counter(), time.thread_time())

    def _hand_on(self, path: str) -> None:
        """Wake the next path that has not finished (``path`` itself when it is the last one running)."""
        with self._lock:
            at = self.order.index(path)
            for following in self.order[at + 1 :] + self.order[: at + 1]:
                if following not in self._finished:
                    self._turn[following].set()
                    return

    def _timings(self) -> dict[str, Timing]:
        short = {path: len(spans) for path, spans in self._segments.items() if len(spans) < self.steps}
        if short:
            raise RuntimeError(f"paths timed fewer than {self.steps} steps: {short}")
        limits = {
            path: self.outlier * statistics.median(wall for wall, _ in spans)
            for path, spans in self._segments.items()
        }
        kept = [
            k
            for k in range(self.steps)
            if all(self._segments[path][k][0] <= limits[path] for path in self.order)
        ]
        if len(kept) < self.steps / 2:
            raise RuntimeError(
                f"only {len(kept)} of {self.steps} rounds had no step slower than {self.outlier}x its path's "
                "median: the machine was too busy to time these paths (another process preempting them); run "
                "again on a quieter machine, pinned to one core (taskset -c N), or with more --steps"
            )
        timings = {}
        for path, spans in self._segments.items():
            wall = sum(spans[k][0] for k in kept)
            cpu = sum(spans[k][1] for k in kept)
            timings[path] = Timing(
                len(kept), len(kept) * self.items_per_step, wall, cpu, self.steps - len(kept)
            )
        return timings


@dataclass(frozen=True)
class RelayClock:
    """One path's clock in a ``Relay``: ``step_done`` records the step and waits for the path's next turn."""

    relay: Relay
    path: str

    def step_done(self) -> None:
        self.relay.step_done(self.path)


Clock = WindowClock | RelayClock


class StepClock(pl.Callback):
    """Calls ``clock.step_done()`` at the end of every training batch, after the other callbacks' hooks of
    the batch (it is the Trainer's last callback)."""

    def __init__(self, clock: Clock):
        self.clock = clock

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        self.clock.step_done()


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
    clock: Clock | None = None,
) -> Timing | None:
    """Fit what ``rnnexp.training.build_experiment`` composes (the objects ``train()`` fits) for
    warmup + steps batches and time the last ``steps``. The Trainer keeps the configured callbacks that act
    per step; with ``bare`` it keeps only the clock and fits ``bare(experiment)`` instead of the task.
    With a ``RelayClock`` the relay times the steps (``None`` is returned), else a ``WindowClock`` does."""
    pl.seed_everything(cfg.seed, verbose=False)
    window = WindowClock(warmup, steps, items_per_step, device) if clock is None else None
    step_clock = StepClock(clock or window)
    experiment = build_experiment(
        cfg, callbacks=[step_clock] if bare else [*per_step_callbacks(cfg), step_clock]
    )
    task = bare(experiment) if bare else experiment.task
    experiment.trainer.fit(task, datamodule=experiment.datamodule)
    if experiment.trainer.global_step != warmup + steps:
        raise RuntimeError(f"Lightning ran {experiment.trainer.global_step} steps, expected {warmup + steps}")
    return window.timing() if window else None


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
