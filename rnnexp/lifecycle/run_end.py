"""Every finished run ends on a fresh validation, whatever ended it (epochs, steps, time, early stopping)."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch

from rnnexp.lifecycle.step_hooks import skip_unused_batch_hooks
from rnnexp.lifecycle.validation_clock import is_fit_validation, skip_a_validated_step

VALIDATED_AT = "progress/validated_at_step"


def is_final_batch(trainer: pl.Trainer) -> bool:
    """Whether the batch that just ended is the run's last: the step budget is spent, or it closed the last
    epoch."""
    if trainer.max_steps != -1 and trainer.global_step >= trainer.max_steps:
        return True
    last_epoch = trainer.max_epochs is not None and trainer.current_epoch + 1 >= trainer.max_epochs > 0
    batch_idx = trainer.fit_loop.epoch_loop.batch_idx
    return last_epoch and batch_idx + 1 >= trainer.num_training_batches


@skip_unused_batch_hooks
class ValidateAtRunEnd(pl.Callback):
    """Asks Lightning to stop after the run's final batch, because a requested stop is also what makes it
    validate there ("should_stop" validates, see ``_should_check_val_fx``): a step budget would otherwise end
    mid-epoch with no validation (and EarlyStopping fails on the missing metric), and a step cadence would
    end on a validation up to N steps old. ``trainer.max_time`` already stops this way (its Timer sets
    ``should_stop`` after a batch). Where the stop lands on a scheduled validation, there is only one.

    It also keeps the fit from validating a global step twice (``skip_a_validated_step``): here, in a hook
    it already has, rather than in one more callback dispatched every batch."""

    def __init__(self) -> None:
        self.validated_step: int | None = None  # the global step of the fit's last validation

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if is_final_batch(trainer):
            trainer.should_stop = True
        skip_a_validated_step(trainer, self.validated_step)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if is_fit_validation(trainer):
            self.validated_step = trainer.global_step
        # In callback_metrics, so that ranks spawned by ddp_spawn report it back too (as ReportProgress).
        if not trainer.sanity_checking:
            trainer.callback_metrics[VALIDATED_AT] = torch.tensor(trainer.global_step)


def validated_at_step(trainer: pl.Trainer) -> int | None:
    """The global step of the fit's last validation; None when none ran."""
    value = trainer.callback_metrics.get(VALIDATED_AT)
    return None if value is None else int(value)
