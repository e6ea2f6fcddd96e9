"""Callbacks of rnnexp's own; the rest (checkpointing, early stopping, progress) are Lightning's."""

from __future__ import annotations

import pytorch_lightning as pl
import torch

from rnnexp.errors import TrainingError


class NonFiniteLossGuard(pl.Callback):
    """Stop before a NaN/inf loss is back-propagated, so no update poisons the weights and the last
    checkpoint stays good; the message says where it happened and what to change."""

    def on_before_backward(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, loss: torch.Tensor
    ) -> None:
        if torch.isfinite(loss).all():
            return
        grad_norm = getattr(pl_module, "last_grad_norm", None)
        previous = f"{grad_norm.item():.4g}" if grad_norm is not None else "n/a (first step)"
        raise TrainingError(
            f"The training loss became {loss.item()} at global step {trainer.global_step} "
            f"(epoch {trainer.current_epoch}); the gradient norm before clipping at the previous step was "
            f"{previous}. The weights were not updated with it. Lower optimizer.lr, keep gradient clipping on "
            "(trainer.gradient_clip_val, e.g. 1.0), or check the data for NaN values."
        )
