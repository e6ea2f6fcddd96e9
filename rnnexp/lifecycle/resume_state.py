"""Exact resume: what a checkpoint needs beyond Lightning's own for a resumed run to end bit-identical to an
uninterrupted one (random generators, torchmetrics accumulators). Keys: ``rnnexp.lifecycle.checkpoint``."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from lightning_utilities.core.apply_func import apply_to_collection
from torchmetrics import MaxMetric, Metric, MinMetric

from rnnexp.lifecycle.checkpoint import (
    METRIC_STATES,
    METRIC_STATES_BY_RANK,
    METRIC_STATES_EPOCH_FINISHED,
    METRIC_STATES_VALIDATION_FINISHED,
)
from rnnexp.lifecycle.step_hooks import skip_unused_batch_hooks


def random_states() -> dict[str, Any]:
    """Every global generator training may draw from (dropout), in a form ``weights_only`` loading accepts."""
    name, keys, pos, has_gauss, cached_gauss = np.random.get_state()
    version, state, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached_gauss],
        "python": [version, list(state), gauss],
    }


def set_random_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    name, keys, pos, has_gauss, cached_gauss = states["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached_gauss))
    version, state, gauss = states["python"]
    random.setstate((version, tuple(state), gauss))


@skip_unused_batch_hooks
class ResumeState(pl.Callback):
    """What a checkpoint needs beyond Lightning's own for a resumed run to end bit-identical to an
    uninterrupted one: the random generators' states (dropout masks continue where they stopped) and the
    torchmetrics accumulators (the epoch's running means, the best validation value so far), which
    ``state_dict`` leaves out. Loggers are flushed at every checkpoint, so a resumed run's CSV has no gap.

    A checkpoint taken after the epoch's last batch (``last.ckpt``, the epoch checkpoints) is resumed at the
    start of the next epoch, where an uninterrupted run holds only its best-value trackers (``MinMetric``,
    ``MaxMetric``): Lightning has reset the epoch's accumulators, so they are not restored then."""

    def state_dict(self) -> dict[str, Any]:
        return {"random": random_states()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        set_random_states(state_dict["random"])

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint[METRIC_STATES] = {
            name: {**module.metric_state, "_update_count": module._update_count}
            for name, module in pl_module.named_modules()
            if isinstance(module, Metric)
        }
        checkpoint[METRIC_STATES_EPOCH_FINISHED] = (
            trainer.fit_loop.epoch_loop.batch_idx + 1 >= trainer.num_training_batches
        )
        # Saved at the end of a validation (a step cadence checkpoints there, mid-epoch): that validation is
        # complete, and Lightning resets its accumulators right after, so a resumed run must not restore them.
        checkpoint[METRIC_STATES_VALIDATION_FINISHED] = trainer.validating
        if trainer.world_size > 1:
            # Each rank accumulates its own share of the epoch's metrics and only rank 0 writes the file, so
            # every rank's accumulators are gathered (Lightning builds the checkpoint on all ranks at once).
            states = apply_to_collection(checkpoint[METRIC_STATES], torch.Tensor, torch.Tensor.cpu)
            by_rank: list[Any] = [None] * trainer.world_size
            torch.distributed.all_gather_object(by_rank, states)
            checkpoint[METRIC_STATES_BY_RANK] = by_rank
        for logger in trainer.loggers:
            logger.save()

    def on_load_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        metrics = dict(pl_module.named_modules())
        saved = checkpoint.get(METRIC_STATES, {})
        by_rank = checkpoint.get(METRIC_STATES_BY_RANK)
        if by_rank is not None and len(by_rank) == trainer.world_size:
            saved = by_rank[trainer.global_rank]  # otherwise every rank starts from rank 0's accumulators
        epoch_finished = checkpoint.get(METRIC_STATES_EPOCH_FINISHED, False)
        validation_finished = checkpoint.get(METRIC_STATES_VALIDATION_FINISHED, False)
        for name, states in saved.items():
            metric = metrics.get(name)
            if not isinstance(metric, Metric):
                continue  # a metric the task no longer has
            if isinstance(metric, MinMetric | MaxMetric):
                pass  # a best-value tracker: always restored
            elif epoch_finished or (validation_finished and name.startswith("val_")):
                continue  # an accumulator of the finished epoch or validation (tasks name them <stage>_...)
            for key, value in states.items():
                current = getattr(metric, key)
                if isinstance(current, torch.Tensor):
                    value = value.to(current.device)
                setattr(metric, key, value)
