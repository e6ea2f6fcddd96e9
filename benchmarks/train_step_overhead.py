"""What the framework costs per training step: rnnexp's Lightning path against a plain PyTorch loop, for every
task (classifier, regressor with and without carried state, language model, forecaster, translator, captioner,
adding-problem regressor, copy memory, text classifier, tagger).

Three paths train the same network on the same batches, in one process:

- **lightning**: what ``rnnexp.training.build_experiment`` composes for ``train()`` from the task's default
  config (its datamodule, task with metrics, loss and grad-norm logging, CSV logger, the callbacks that act per
  step); only checkpointing, early stopping, the progress bar and validation are off.
- **bare** (``--bare``): Lightning's loop around a LightningModule that only computes the same loss (no metrics,
  no logging, no callbacks): the floor of Lightning's own loop.
- **plain**: a hand-written loop: the same network, optimizer and clipping, over the same training batches,
  drawn from the datamodule's loader inside the timed loop as a user's ``for batch in loader:`` draws them, as
  both Lightning paths do (the datamodule's transfer hooks, e.g. uint8 to float, run inside the timed step,
  as they do under Lightning). Every path pays the same data loading; the ratios are the loops' own costs.

The step each path computes is in ``benchmarks/task_steps.py``; a task without one stops the script.

How the paths share the machine (``--schedule``):

- **steps** (the default): the paths train at the same time, one step each in turn (``harness.Relay``: a
  thread per path, a baton handed on after every step), and a path's time is the sum of its own steps. Drift
  of the machine's speed, which on a shared or virtual CPU reaches 10-20 % within seconds even with nothing
  else running here, then hits every path alike: the ratios' spread falls from several percent to about one.
- **runs**: the paths run one after the other, the order flipping each repeat (the earlier method; the
  absolute items/s of a path running alone, but ratios that drift moves).

Besides wall-clock items/s it records CPU time (relay: each path's own thread's; runs: the process's): with
--threads 1 that is the work done, which other processes on a busy machine do not inflate.

    python benchmarks/train_step_overhead.py --help
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `python benchmarks/<script>.py` finds rnnexp and benchmarks.harness

from benchmarks.harness import (  # noqa: E402
    CellResult,
    Clock,
    Relay,
    Timing,
    WindowClock,
    argument_parser,
    build_plain,
    check_counts,
    markdown_table,
    prepare_run,
    repeat_lines,
    run_alternating,
    share_one_malloc_arena,
    step_only_overrides,
    time_fit,
)
from benchmarks.task_steps import TASKS, PlainStep, check_tasks, plain_step_for, task_overrides  # noqa: E402
from rnnexp.training import Experiment, compose_config, instantiate  # noqa: E402

BARE = "bare"  # optional third path: the floor of Lightning's own loop


def unit_name(task: str, cell: str) -> str:
    """One row of the table: a task trained with one cell."""
    return f"{task}/{cell}"


def bench_config(
    task: str,
    cell: str,
    hidden_size: int,
    work_dir: Path,
    run_dir: Path,
    max_steps: int,
    device: str,
    batch_size: int | None = None,
) -> DictConfig:
    """The config ``train.py <task's datamodule> model=<cell>`` gets at its default sizes (batch, sequence
    length), with training cut to ``max_steps`` batches of one epoch and no validation."""
    batches = max_steps + 1
    overrides = task_overrides(task, cell, work_dir / task, batches, hidden_size, batch_size)
    return compose_config([*overrides, *step_only_overrides(max_steps, device)], run_dir)


def items_per_step(cfg: DictConfig) -> int:
    """Sequences per step (the text streams' characters: batch x seq_len)."""
    batch = int(cfg.datamodule.batch_size)
    return batch * int(cfg.datamodule.seq_len) if "CharCorpus" in cfg.datamodule._target_ else batch


class BareTask(pl.LightningModule):
    """The floor: Lightning's loop around the same network, optimizer and plain step, with no metrics, no
    logging and no gradient norm, so ``lightning`` minus ``bare`` is what rnnexp adds and ``bare`` minus
    ``plain`` Lightning."""

    def __init__(self, net: torch.nn.Module, optimizer, step: PlainStep):
        super().__init__()
        self.net, self.optimizer_factory, self.step = net, optimizer, step
        self.state: dict[str, Any] = {}  # a carried hidden state

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self.step(self.net, batch, self.state)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.optimizer_factory(params=self.parameters())


def bare_task(experiment: Experiment, cfg: DictConfig) -> BareTask:
    """``BareTask`` around the network and optimizer the composed task would train."""
    return BareTask(experiment.task.net, experiment.task.optimizer_factory, plain_step_for(cfg))


def clip_gradients(net: torch.nn.Module, value: float | None, algorithm: str | None) -> None:
    """What ``trainer.gradient_clip_val`` / ``gradient_clip_algorithm`` make Lightning do, by hand."""
    if not value:
        return
    if algorithm == "value":
        torch.nn.utils.clip_grad_value_(net.parameters(), value)
    else:
        torch.nn.utils.clip_grad_norm_(net.parameters(), value)


def time_plain(
    cfg: DictConfig, warmup: int, steps: int, device: torch.device, clock: Clock | None = None
) -> Timing | None:
    """The hand-written loop: same network, optimizer, clipping, batches and transfer hooks as the task.
    With a relay's clock the relay times the steps (``None`` is returned)."""
    pl.seed_everything(cfg.seed, verbose=False)
    net, datamodule = build_plain(cfg, device)
    datamodule.setup("fit")
    step_fn = plain_step_for(cfg)
    net.train()
    optimizer = instantiate(cfg.optimizer)(params=net.parameters())
    clip_value, clip_algorithm = cfg.trainer.gradient_clip_val, cfg.trainer.gradient_clip_algorithm
    state: dict[str, Any] = {}
    window = WindowClock(warmup, steps, items_per_step(cfg), device) if clock is None else None
    step_done = (clock or window).step_done
    taken = 0
    for batch in itertools.islice(datamodule.train_dataloader(), warmup + steps):
        batch = datamodule.on_before_batch_transfer(batch, 0)
        batch = datamodule.on_after_batch_transfer(tuple(t.to(device) for t in batch), 0)
        loss = step_fn(net, batch, state)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip_gradients(net, clip_value, clip_algorithm)
        optimizer.step()
        step_done()
        taken += 1
    if taken < warmup + steps:
        raise RuntimeError(f"the training split has {taken} batches, {warmup + steps} are timed")
    return window.timing() if window else None


SCHEDULES = ("steps", "runs")


def run_benchmark(
    tasks: tuple[str, ...],
    cells: tuple[str, ...],
    hidden_size: int,
    warmup: int,
    steps: int,
    repeats: int,
    device: str,
    work_dir: Path,
    bare: bool = False,
    batch_size: int | None = None,
    schedule: str = "steps",
) -> list[CellResult]:
    """Per repeat and task/cell, time the paths: ``steps``, all at once a step each in turn (``Relay``);
    ``runs``, back to back. Their order is reversed every other repeat."""
    check_counts(warmup, steps, repeats)
    check_tasks(tasks)
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule={schedule!r}: use one of {SCHEDULES}")
    torch_device = torch.device(device)
    configs: dict[tuple[str, str], DictConfig] = {}

    def config_for(unit: str, path: str = "lightning") -> DictConfig:
        """One config per unit and path: paths that run at the same time write to their own run folders."""
        task, cell = unit.split("/")
        run_dir = work_dir / ("run" if path == "lightning" or schedule == "runs" else f"run-{path}") / task
        if (unit, path) not in configs:
            configs[unit, path] = bench_config(
                task, cell, hidden_size, work_dir, run_dir, warmup + steps, device, batch_size
            )
        return configs[unit, path]

    def lightning(cfg: DictConfig, **options: Any) -> Timing | None:
        timed = {
            "warmup": warmup,
            "steps": steps,
            "items_per_step": items_per_step(cfg),
            "device": torch_device,
        }
        return time_fit(cfg, **timed, **options)

    paths: dict[str, Callable[..., Timing | None]] = {
        "lightning": lightning,
        "plain": partial(time_plain, warmup=warmup, steps=steps, device=torch_device),
    }
    if bare:
        paths[BARE] = lambda cfg, **options: lightning(cfg, bare=partial(bare_task, cfg=cfg), **options)
    units = tuple(unit_name(task, cell) for task in tasks for cell in cells)
    if schedule == "runs":
        return run_alternating(units, repeats, lambda unit, repeat: config_for(unit), paths)
    results = {unit: CellResult(unit, {path: [] for path in paths}) for unit in units}
    for repeat in range(repeats):
        for unit in units:
            order = list(paths) if repeat % 2 == 0 else list(paths)[::-1]
            relay = Relay(order, warmup, steps, items_per_step(config_for(unit)), torch_device)
            measures = {
                path: partial(paths[path], config_for(unit, path), clock=relay.clock(path)) for path in order
            }
            for path, timing in relay.run(measures).items():
                results[unit].timings[path].append(timing)
    return list(results.values())


def format_table(results: list[CellResult], hidden_size: int) -> str:
    """Median items/s per path and the ratios to the plain loop (see ``CellResult``)."""
    bare = all(BARE in r.timings for r in results)
    header = ["task/cell", "plain items/s", "lightning items/s", "ratio", "paired ratio", "CPU-time ratio"]
    rows = []
    for r in results:
        row = [r.cell, f"{r.per_s('plain'):.0f}", f"{r.per_s('lightning'):.0f}"]
        row += [f"{r.ratio():.3f}", f"{r.paired_ratio():.3f}", f"{r.cpu_ratio():.3f}"]
        if bare:
            row += [f"{r.per_s(BARE):.0f}", f"{r.paired_ratio(BARE):.3f}", f"{r.cpu_ratio(BARE):.3f}"]
            row += [f"{r.paired_ratio('lightning', BARE):.3f}"]
        rows.append(row)
    caption = (
        f"each task's default datamodule sizes, hidden {hidden_size}; items: sequences (text: characters); "
        f"median of {len(results[0].timings['plain'])} repeats"
    )
    extra = (
        ["bare items/s", "bare paired ratio", "bare CPU-time ratio", "rnnexp / bare (paired)"] if bare else []
    )
    return markdown_table(caption, header + extra, rows)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argument_parser(__doc__, steps=50, repeats=5)
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), help=f"any of {list(TASKS)}")
    parser.add_argument("--hidden-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=None, help="default: each datamodule's own")
    parser.add_argument(
        "--schedule",
        choices=SCHEDULES,
        default="steps",
        help="steps: the paths train at once, a step each in turn (default); runs: one after the other",
    )
    parser.add_argument(
        "--bare", action="store_true", help="also time a bare LightningModule: the floor of Lightning's loop"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    check_tasks(args.tasks)
    if args.schedule == "steps":
        share_one_malloc_arena()  # at start, before any thread has allocated (see its docstring)
    prepare_run(args.device, args.threads)
    if args.schedule == "steps" and args.device == "cpu" and torch.get_num_threads() > 1:
        print(
            f"warning: --schedule steps with {torch.get_num_threads()} torch threads: each path's thread has "
            "its own pool of workers, which spin on while the next path runs, and a path's CPU time counts its "
            "own thread only. Give --threads 1 (the measurements in BENCHMARKS.md) or --schedule runs.",
            file=sys.stderr,
        )
    with tempfile.TemporaryDirectory(prefix="rnnexp-bench-") as tmp:
        results = run_benchmark(
            tuple(args.tasks), tuple(args.cells), args.hidden_size, args.warmup, args.steps, args.repeats,
            args.device, Path(tmp), args.bare, args.batch_size, args.schedule,
        )  # fmt: skip
    if args.verbose:
        print("\n".join(repeat_lines(results, "items")))
    print(format_table(results, args.hidden_size))


if __name__ == "__main__":
    main()
