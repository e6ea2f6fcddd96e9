"""Callbacks of rnnexp's own; the rest (checkpointing, early stopping, progress) are Lightning's."""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from lightning_utilities.core.apply_func import apply_to_collection
from pytorch_lightning.utilities.rank_zero import rank_zero_warn
from torchmetrics import MaxMetric, Metric, MinMetric

from rnnexp.errors import ConfigError, TrainingError

log = logging.getLogger(__name__)

NON_FINITE_ACTIONS = ("stop", "skip")


def newest_checkpoint(trainer: pl.Trainer) -> Path | None:
    """The most recently written checkpoint of the run's ModelCheckpoint callbacks, if any."""
    folders = {Path(cb.dirpath) for cb in trainer.checkpoint_callbacks if getattr(cb, "dirpath", None)}
    files = [path for folder in folders if folder.is_dir() for path in folder.glob("*.ckpt")]
    return max(files, key=lambda path: path.stat().st_mtime_ns, default=None)


class NonFiniteLossGuard(pl.Callback):
    """A NaN/inf loss either stops the run before it is back-propagated (``action="stop"``: no update poisons
    the weights, and the newest checkpoint stays good) or drops that update and goes on (``"skip"``, for rare
    bad batches; ``max_consecutive_skips`` non-finite steps in a row still stop the run). The message names
    the step, the loss and the last gradient norm."""

    def __init__(self, action: str = "stop", max_consecutive_skips: int = 10):
        if action not in NON_FINITE_ACTIONS:
            raise ConfigError(
                f"callbacks.non_finite_loss.action={action!r} is unknown; choose one of {list(NON_FINITE_ACTIONS)}."
            )
        if isinstance(max_consecutive_skips, bool) or not isinstance(max_consecutive_skips, int):
            raise ConfigError(
                f"callbacks.non_finite_loss.max_consecutive_skips={max_consecutive_skips!r} must be an integer."
            )
        self.action = action
        self.max_consecutive_skips = max_consecutive_skips
        self.bad_loss: float | None = None  # the current step's loss, when it is not finite
        self.consecutive_skips = 0
        self.skipped_steps = 0

    def where(self, trainer: pl.Trainer, pl_module: pl.LightningModule, loss: float) -> str:
        grad_norm = getattr(pl_module, "last_grad_norm", None)
        previous = f"{grad_norm.item():.4g}" if grad_norm is not None else "n/a (first step)"
        return (
            f"The training loss became {loss} at global step {trainer.global_step} (epoch "
            f"{trainer.current_epoch}); the gradient norm before clipping at the previous step was {previous}."
        )

    def on_before_backward(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, loss: torch.Tensor
    ) -> None:
        self.bad_loss = None
        if torch.isfinite(loss).all():
            return
        if self.action == "skip":
            # Backward still runs; the update is dropped in on_before_optimizer_step.
            self.bad_loss = loss.item()
            return
        newest = newest_checkpoint(trainer)
        kept = f" The newest checkpoint, written before this step, is {newest}." if newest else ""
        raise TrainingError(
            f"{self.where(trainer, pl_module, loss.item())} The weights were not updated with it.{kept} Lower "
            "optimizer.lr, keep gradient clipping on (trainer.gradient_clip_val, e.g. 1.0), check the data for "
            "NaN values, or set callbacks.non_finite_loss.action=skip to drop such steps."
        )

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        if self.action != "skip":
            return
        params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        # Under DDP the gradients are already averaged over ranks, so every rank takes the same decision.
        grads_finite = all(bool(torch.isfinite(p.grad).all()) for p in params)
        local_only = trainer.world_size == 1
        if grads_finite and not (local_only and self.bad_loss is not None):
            self.consecutive_skips = 0
            return
        # Torch optimizers leave a parameter without a gradient untouched: no weight decay, no moment update.
        for p in params:
            p.grad = None
        self.consecutive_skips += 1
        self.skipped_steps += 1
        loss = self.bad_loss if self.bad_loss is not None else float("nan")
        message = self.where(trainer, pl_module, loss)
        if self.consecutive_skips > self.max_consecutive_skips:
            raise TrainingError(
                f"{message} That is {self.consecutive_skips} non-finite steps in a row "
                f"(callbacks.non_finite_loss.max_consecutive_skips={self.max_consecutive_skips}), so the "
                "weights themselves are likely broken. Lower optimizer.lr or check the data for NaN values."
            )
        rank_zero_warn(f"{message} Skipped this update ({self.skipped_steps} skipped so far).")

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.action == "skip":
            pl_module.log("train/skipped_steps", float(self.skipped_steps))


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
        checkpoint["metric_states"] = {
            name: {**module.metric_state, "_update_count": module._update_count}
            for name, module in pl_module.named_modules()
            if isinstance(module, Metric)
        }
        checkpoint["metric_states_epoch_finished"] = (
            trainer.fit_loop.epoch_loop.batch_idx + 1 >= trainer.num_training_batches
        )
        # Saved at the end of a validation (a step cadence checkpoints there, mid-epoch): that validation is
        # complete, and Lightning resets its accumulators right after, so a resumed run must not restore them.
        checkpoint["metric_states_validation_finished"] = trainer.validating
        if trainer.world_size > 1:
            # Each rank accumulates its own share of the epoch's metrics and only rank 0 writes the file, so
            # every rank's accumulators are gathered (Lightning builds the checkpoint on all ranks at once).
            states = apply_to_collection(checkpoint["metric_states"], torch.Tensor, torch.Tensor.cpu)
            by_rank: list[Any] = [None] * trainer.world_size
            torch.distributed.all_gather_object(by_rank, states)
            checkpoint["metric_states_by_rank"] = by_rank
        for logger in trainer.loggers:
            logger.save()

    def on_load_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        metrics = dict(pl_module.named_modules())
        saved = checkpoint.get("metric_states", {})
        by_rank = checkpoint.get("metric_states_by_rank")
        if by_rank is not None and len(by_rank) == trainer.world_size:
            saved = by_rank[trainer.global_rank]  # otherwise every rank starts from rank 0's accumulators
        epoch_finished = checkpoint.get("metric_states_epoch_finished", False)
        validation_finished = checkpoint.get("metric_states_validation_finished", False)
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
