"""How a run spreads over processes: keep Lightning's DDP and Hydra sweeps from tripping over each other."""

from __future__ import annotations

import logging
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning_fabric.plugins.environments import SLURMEnvironment, TorchElasticEnvironment

from rnnexp.lifecycle.step_hooks import skip_unused_batch_hooks

log = logging.getLogger(__name__)


def in_multirun() -> bool:
    """Whether this process runs one job of a Hydra sweep (``-m``), rather than a single run."""
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def strategy_for_launch(strategy: Any, multirun: bool) -> Any:
    """``ddp`` starts its extra ranks by running the command line again; under a Hydra multirun that
    command is the whole sweep, so the ranks would run different jobs. There the ranks are spawned from this
    job instead (``ddp_spawn``) -- unless SLURM (``srun``, e.g. through the submitit launcher) or torchrun
    already started one process per rank, which ``ddp`` then simply joins."""
    if not multirun or strategy != "ddp":
        return strategy
    if SLURMEnvironment.detect() or TorchElasticEnvironment.detect():
        return strategy
    log.info("trainer.strategy=ddp under a multirun: spawning the ranks from this job (ddp_spawn).")
    return "ddp_spawn"


@skip_unused_batch_hooks
class ReportProgress(pl.Callback):
    """Puts the epochs and steps the fit reached into ``callback_metrics``: ranks spawned by ``ddp_spawn``
    send the launching process their metrics and weights, but not their loops' counters."""

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        trainer.callback_metrics["progress/epochs"] = torch.tensor(trainer.current_epoch)
        trainer.callback_metrics["progress/global_step"] = torch.tensor(trainer.global_step)


def fit_progress(trainer: pl.Trainer) -> tuple[int, int]:
    """Epochs and optimizer steps the fit reached, also when the ranks ran in spawned processes."""
    metrics = trainer.callback_metrics
    if "progress/global_step" in metrics:
        return int(metrics["progress/epochs"]), int(metrics["progress/global_step"])
    return trainer.current_epoch, trainer.global_step
