"""The non-finite loss guard: a NaN/inf loss stops the run (or is skipped) before it poisons the weights."""

from __future__ import annotations

import logging
import math

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities.rank_zero import rank_zero_warn

from rnnexp.errors import ConfigError, TrainingError
from rnnexp.lifecycle.checkpoint import newest_checkpoint_of
from rnnexp.lifecycle.step_hooks import skip_unused_batch_hooks

log = logging.getLogger(__name__)

NON_FINITE_ACTIONS = ("stop", "skip")


@skip_unused_batch_hooks
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
        if action != "skip":
            self.on_before_optimizer_step = None  # only skipping acts there: Lightning passes over it
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
        # A scalar loss is read with one .item() (on a GPU the same wait for the device as bool(), on a CPU
        # a fraction of a microsecond against two tensor operations).
        if math.isfinite(loss.item()) if loss.numel() == 1 else bool(torch.isfinite(loss).all()):
            return
        if self.action == "skip":
            # Backward still runs; the update is dropped in on_before_optimizer_step.
            self.bad_loss = loss.item()
            return
        newest = newest_checkpoint_of(trainer)
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
