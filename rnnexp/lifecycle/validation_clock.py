"""One validation clock: everything that consumes a validation result acts once per validation that
Lightning really runs during the fit, on that validation's value.

The consumers: the LR scheduler (``StepSchedulersAtValidation``, stepped here rather than by Lightning's
epoch/step intervals, which tick whether or not a validation ran), early stopping and the best checkpoint
(``check_on_train_epoch_end=false`` / ``save_on_train_epoch_end=false`` in their configs, so they act at
``on_validation_end``), Optuna pruning (``rnnexp.sweeps.pruning``), the task's ``val/*_best`` tracker and
the text sample. The sanity check's validation and the report-only validation that ``train`` runs after a
fit whose last validation was not of the final weights are not validations of the fit: no consumer acts
on them (the text sample is still written for the latter, as a report).

A validation at a global step the fit already validated would be the same validation (same weights, same
value): it is not run (``skip_a_validated_step``), so every consumer, Lightning's own EarlyStopping and
ModelCheckpoint included, sees each validation once.
"""

from __future__ import annotations

import math

import pytorch_lightning as pl
from pytorch_lightning.trainer.states import TrainerFn
from torch.optim.lr_scheduler import ReduceLROnPlateau

from rnnexp.errors import ConfigError
from rnnexp.lifecycle.step_hooks import skip_unused_batch_hooks


def is_fit_validation(trainer: pl.Trainer) -> bool:
    """Whether the validation that just ran belongs to the fit (not the sanity check, not a report)."""
    return trainer.state.fn == TrainerFn.FITTING and not trainer.sanity_checking


def skip_a_validated_step(trainer: pl.Trainer, validated_step: int | None) -> None:
    """Called at the end of each training batch: when the fit's last validation ran at the current global
    step (this batch accumulated gradients without stepping the optimizer), Lightning's loop is told not to
    validate after this batch. It would otherwise validate the same weights again when a stop is requested
    there (``trainer.max_time``'s Timer, pruning, early stopping: "should_stop" validates, see
    ``_should_check_val_fx``) or when a scheduled check lands there, and each consumer would act twice on
    one validation (Lightning's ModelCheckpoint skips a step it saved, EarlyStopping does not).

    ``validated_step``: the global step of the fit's last validation (None before the first). Uses the loop
    flag Lightning sets itself to skip a validation a resumed run already ran (``_skip_next_val``, read and
    reset in ``on_advance_end`` after this hook); pinned by tests/test_validation_clock.py.
    """
    if validated_step is None or validated_step != trainer.global_step:
        return
    loop = trainer.fit_loop.epoch_loop
    if not hasattr(loop, "_skip_next_val"):  # pragma: no cover - a Lightning upgrade removed the flag
        raise RuntimeError(
            "Lightning's training loop has no `_skip_next_val` flag any more: rnnexp cannot keep it from "
            "validating a step twice (rnnexp.lifecycle.validation_clock.skip_a_validated_step)."
        )
    loop._skip_next_val = True


@skip_unused_batch_hooks
class StepSchedulersAtValidation(pl.Callback):
    """Steps every LR scheduler once after each validation of the fit: ``ReduceLROnPlateau`` on that
    validation's value of its monitor, the others without a value (cosine's ``T_max`` counts validations).
    Runs before the checkpoint callbacks (Lightning orders those last), so a checkpoint taken at this
    validation holds the stepped scheduler and a resumed run continues it exactly."""

    def __init__(self, monitor: str | None) -> None:
        self.monitor = monitor  # the task's ``scheduler_monitor``: what a plateau scheduler watches

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not is_fit_validation(trainer):
            return
        for config in trainer.lr_scheduler_configs:
            if not isinstance(config.scheduler, ReduceLROnPlateau):
                config.scheduler.step()
                continue
            value = trainer.callback_metrics.get(self.monitor) if self.monitor else None
            if value is None:  # names are checked before any data is read (rnnexp.config.metrics): a bug
                raise RuntimeError(
                    f"The plateau scheduler monitors {self.monitor!r}, which this validation did not log "
                    f"(logged: {sorted(trainer.callback_metrics)})."
                )
            config.scheduler.step(float(value))


def step_cadence(trainer: pl.Trainer) -> int | None:
    """N when the trainer validates every N training batches (``trainer.val_check_interval=N`` with
    ``check_val_every_n_epoch=null``); None for an epoch cadence."""
    interval = trainer.val_check_interval
    if (
        isinstance(interval, int)
        and not isinstance(interval, bool)
        and trainer.check_val_every_n_epoch is None
    ):
        return interval
    return None


def training_batches_in_run(trainer: pl.Trainer) -> float:
    """Training batches the run reads: its step budget (optimizer steps x accumulation) or its epochs."""
    per_epoch = int(trainer.num_training_batches)
    by_epochs = trainer.max_epochs * per_epoch if trainer.max_epochs not in (None, -1) else math.inf
    by_steps = (
        trainer.max_steps * trainer.accumulate_grad_batches
        if trainer.max_steps not in (None, -1)
        else math.inf
    )
    return min(by_epochs, by_steps)


def validations_in_run(trainer: pl.Trainer) -> int:
    """How many validations the fit runs (at least 1), counting the one that closes a run between two
    scheduled checks (``ValidateAtRunEnd``): the scheduler steps a ``T_max: null`` cosine spans."""
    batches = training_batches_in_run(trainer)
    if not math.isfinite(batches):
        raise ConfigError(
            "scheduler.T_max=null spans the whole run, but the run has no step or epoch budget (only "
            "trainer.max_time, or none); set trainer.max_steps or trainer.max_epochs, or a number as "
            "scheduler.T_max."
        )
    batches = int(batches)
    every = step_cadence(trainer)
    if every:
        return max(1, math.ceil(batches / every))
    per_epoch = max(1, int(trainer.num_training_batches))
    check = max(1, int(trainer.val_check_batch))  # Lightning's batches between checks within an epoch
    n = trainer.check_val_every_n_epoch or 1
    full, rest = divmod(batches, per_epoch)
    count = (full // n) * (per_epoch // check)
    if rest and (full + 1) % n == 0:  # the run ends mid-epoch, in an epoch that validates
        count += rest // check + (1 if rest % check else 0)
    elif not rest and full % n == 0 and per_epoch % check:  # ends at an epoch end between two checks
        count += 1
    return max(1, count)
