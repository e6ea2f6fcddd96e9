"""Report a trial's monitored validation metric to its Optuna study at every validation, and stop the job
when the pruner says so. The job runs in its own process: it reopens its trial through the study's storage
(Optuna's distributed pattern), from the ``optuna_trial`` config the sweeper fills in.

optuna-integration's PyTorchLightningPruningCallback would do the reporting, but it imports
``lightning.pytorch`` and rejects the ``pytorch_lightning`` trainer rnnexp uses.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import pytorch_lightning as pl
from omegaconf import DictConfig

from rnnexp.errors import ConfigError
from rnnexp.lifecycle.step_hooks import skip_unused_batch_hooks
from rnnexp.lifecycle.validation_clock import is_fit_validation

log = logging.getLogger(__name__)


@skip_unused_batch_hooks
class OptunaPruning(pl.Callback):
    """Does nothing outside an Optuna sweep (``trial.number`` is null). ``pruned_at`` is the validation
    (0, 1, ...) at which the trial was pruned, or None. Steps are validations, not optimizer steps, so that
    trials with different batch counts (text's searched ``seq_len``) compare at the same point."""

    def __init__(self, trial: DictConfig | dict[str, Any], monitor: str) -> None:
        self.number = trial.get("number")
        self.storage = trial.get("storage")
        self.study_name = trial.get("study_name")
        self.pruner = trial.get("pruner")  # the sweep's pruner (its config's ``_target_`` is instantiated)
        self.monitor = monitor
        self.validations = 0
        self.pruned_at: int | None = None
        self.last_value: float | None = None
        self._trial = None
        if self.number is not None and not (self.storage and self.study_name):
            raise ConfigError(
                f"optuna_trial.number={self.number} needs optuna_trial.storage and optuna_trial.study_name "
                "(the sweeper sets all three; a study kept in memory cannot be reached from a trial's job)."
            )

    @property
    def active(self) -> bool:
        return self.number is not None

    def trial(self):  # optuna.trial.Trial, opened on first use (optuna is imported only in sweeps)
        if self._trial is None:
            import hydra
            import optuna

            from rnnexp.sweeps.storage import open_storage

            pruner = self.pruner  # Hydra instantiated it with this callback, unless built by hand
            if isinstance(pruner, dict | DictConfig):
                pruner = hydra.utils.instantiate(pruner)
            study = optuna.load_study(
                study_name=self.study_name, storage=open_storage(self.storage), pruner=pruner
            )
            trial_id = study._storage.get_trial_id_from_study_id_trial_number(study._study_id, self.number)
            self._trial = optuna.trial.Trial(study, trial_id)
        return self._trial

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self.active or not is_fit_validation(trainer):
            return
        value = trainer.callback_metrics.get(self.monitor)
        step, self.validations = self.validations, self.validations + 1
        prune = False
        if trainer.is_global_zero and value is not None and math.isfinite(float(value)):
            self.last_value = float(value)
            trial = self.trial()
            trial.report(self.last_value, step)
            prune = trial.should_prune()
        if trainer.strategy.broadcast(prune):  # every rank stops together
            self.pruned_at = step
            trainer.should_stop = True
            log.info(
                "Optuna trial %d pruned at validation %d (%s = %s): worse than the pruner allows.",
                self.number, step, self.monitor, self.last_value,
            )  # fmt: skip


def pruned_at(trainer: pl.Trainer) -> int | None:
    """The validation at which this fit was pruned, or None."""
    for callback in trainer.callbacks:
        if isinstance(callback, OptunaPruning) and callback.pruned_at is not None:
            return callback.pruned_at
    return None
