"""Shared by the resilience tests: a tiny run that checkpoints mid-epoch, and faults injected at an exact
training step (a signal, a corrupt batch), so a test knows which checkpoints exist when a run dies."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch

from rnnexp.training import train
from tests.conftest import compose_config, run_cli  # noqa: F401  (run_cli: re-exported for the tests)

ROOT = Path(__file__).resolve().parents[1]

# 64 training sequences in batches of 8: 8 steps per epoch, 24 in all; a step checkpoint every 5 steps lands
# mid-epoch (steps 5, 10, 15, 20). Two layers with dropout, so the random generators matter too.
TINY_RUN = [
    "trainer.deterministic=true", "datamodule.num_sequences=80", "datamodule.batch_size=8", "model.hidden_size=8", "model.num_layers=2",
    "model.dropout=0.2", "trainer.max_epochs=3", "trainer.log_every_n_steps=2", "task.log_figures=false",
    "callbacks.step_checkpoint.every_n_train_steps=5", "~callbacks.progress_bar",
    "+trainer.enable_progress_bar=false", "trainer.enable_model_summary=false", "print_config=false",
]  # fmt: skip
COMPARED = ("train", "val", "test", "objective", "epochs", "global_step")


_reference: dict[str, Any] = {}


def reference_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    """TINY_RUN trained once per test session, uninterrupted: what every interrupted and resumed run must
    reproduce. Returns its results and run directory."""
    if not _reference:
        run_dir = tmp_path_factory.mktemp("reference")
        _reference["results"], _ = train(compose_config(TINY_RUN, run_dir))
        _reference["run_dir"] = run_dir
    return _reference["results"], _reference["run_dir"]


def same_results(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Bit-identical metrics (exact float equality), ignoring paths and durations."""
    return all(a[key] == b[key] for key in COMPARED)


def fault(callback: str, **kwargs: Any) -> list[str]:
    """Overrides adding one of the callbacks below to a run."""
    return [f"+callbacks.fault._target_=tests.resilience.{callback}"] + [
        f"+callbacks.fault.{key}={value}" for key, value in kwargs.items()
    ]


class SignalAtStep(pl.Callback):
    """Send this process ``signum`` (SIGKILL: no handler runs, nothing is cleaned up) as global step ``step``
    begins."""

    def __init__(self, step: int, signum: str = "SIGKILL"):
        self.step, self.signum, self.sent = step, getattr(signal, signum), False

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx: int):
        if trainer.global_step == self.step and not self.sent:
            self.sent = True
            os.kill(os.getpid(), self.signum)


class PoisonBatch(pl.Callback):
    """Fill the inputs of the batches at the given global steps with NaN, like a corrupt record would."""

    def __init__(self, steps: list[int]):
        self.steps = set(steps)

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx: int):
        if trainer.global_step in self.steps:
            batch[0].fill_(torch.nan)


class RecordBestAtResume(pl.Callback):
    """Write the task's best validation value so far (the metric object named ``metric``: the regressor's
    ``val_mse_best``, the language model's ``val_loss_best``), as training (re)starts, to ``path``."""

    def __init__(self, path: str, metric: str = "val_mse_best"):
        self.path, self.metric, self.done = path, metric, False

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx: int):
        if not self.done:
            self.done = True
            Path(self.path).write_text(str(getattr(pl_module, self.metric).compute().item()))


class KillSweepAtStep(pl.Callback):
    """Kill the whole sweep this job belongs to (its process group: the sweep's process, the forkserver and
    every job; SIGKILL, as a lost machine or ``kill -9 -<pgid>``) as global step ``step`` of job number
    ``job`` begins, once ``<sweep dir>/<wait_for>/results.json`` exists and unless ``marker`` exists (so the
    resumed sweep runs through). Only for a sweep started in its own session (``start_new_session=True``):
    anything else is left alone."""

    def __init__(self, step: int, job: int, wait_for: int, marker: str):
        self.step, self.job, self.wait_for, self.marker = step, job, wait_for, Path(marker)

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx: int):
        from hydra.core.hydra_config import HydraConfig

        config = HydraConfig.get()
        if trainer.global_step != self.step or config.job.num != self.job or self.marker.exists():
            return
        done = Path(config.sweep.dir) / str(self.wait_for) / "results.json"
        deadline = time.time() + 300
        while not done.is_file() and time.time() < deadline:
            time.sleep(0.1)
        self.marker.write_text("killed")
        if os.getsid(0) == os.getpgrp():  # the sweep leads its own session and process group
            os.killpg(os.getpgrp(), signal.SIGKILL)
