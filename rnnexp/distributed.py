"""How a run spreads over processes: keep Lightning's DDP and Hydra sweeps from tripping over each other."""

from __future__ import annotations

import logging
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning_fabric.plugins.environments import SLURMEnvironment, TorchElasticEnvironment

from rnnexp.callbacks import newest_checkpoint

log = logging.getLogger(__name__)


def in_multirun() -> bool:
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


def fit_progress(trainer: pl.Trainer) -> tuple[int, int]:
    """Epochs and optimizer steps the fit reached. Under ``ddp_spawn`` the ranks trained in child processes,
    which hand back only their metrics and weights, so the counts come from the newest checkpoint."""
    if trainer.global_step > 0 or trainer.world_size == 1:
        return trainer.current_epoch, trainer.global_step
    newest = newest_checkpoint(trainer)
    if newest is None:
        return trainer.current_epoch, trainer.global_step
    checkpoint = torch.load(newest, map_location="cpu", weights_only=True)
    return checkpoint["loops"]["fit_loop"]["epoch_progress"]["current"]["processed"], checkpoint[
        "global_step"
    ]
