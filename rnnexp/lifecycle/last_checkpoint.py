"""``last.ckpt``: the newest state of the run, written by rnnexp itself rather than by Lightning's
``ModelCheckpoint(save_last=True)``.

Lightning 2.6's ``save_last`` writes ``last.ckpt`` only when the same callback saves a top-k file at that step,
so with ``save_top_k=1`` a run whose best validation was early ends with ``last.ckpt`` holding the best
weights, and a resume from it trains the later epochs again (pinned by tests/test_last_checkpoint.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Checkpoint
from pytorch_lightning.trainer.states import TrainerFn
from pytorch_lightning.utilities.exceptions import SIGTERMException

from rnnexp.lifecycle.run_end import is_final_batch

LAST_NAME = "last"


class LastCheckpoint(Checkpoint):
    """Writes ``<dirpath>/last.ckpt`` after every validation of the fit (so a crash loses little), after
    the run's final training batch whatever ended it (epochs, ``max_steps``, ``max_time``, early stopping,
    pruning), and on SIGTERM / a first Ctrl-C (beside ``interrupted.ckpt``). Each write replaces the previous one, so
    the file always holds the newest state and ``ckpt_path=<it>`` continues exactly where the run stopped.

    A ``Checkpoint`` subclass so that Lightning runs it after every other callback's ``on_validation_end``
    (the task's scheduler step, early stopping's count): the state it saves includes their updates.
    """

    def __init__(self, dirpath: str, filename: str = LAST_NAME) -> None:
        self.dirpath = str(dirpath)
        self.path = Path(dirpath) / f"{filename}.ckpt"
        self.saved_at_step: int | None = None

    @property
    def state_key(self) -> str:
        return f"LastCheckpoint{{'filename': '{self.path.name}'}}"

    def save(self, trainer: pl.Trainer) -> None:
        trainer.save_checkpoint(self.path, weights_only=False)  # the full state, to resume from
        self.saved_at_step = trainer.global_step

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.state.fn == TrainerFn.FITTING and not trainer.sanity_checking:
            self.save(trainer)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        # The run's final batch (ValidateAtRunEnd and Lightning's Timer have set should_stop by now): saved
        # here, at a batch boundary, because a save in on_train_end after a stop mid-epoch would record the
        # epoch as finished and a resume would skip its remaining batches (pinned in the tests). A validation
        # that follows at this step saves again, with its updates.
        if trainer.should_stop or is_final_batch(trainer):
            self.save(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.saved_at_step != trainer.global_step:  # a stop no hook above saw (nothing in rnnexp today)
            self.save(trainer)

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        # Only an interrupt: an error (a NaN loss, a bug) must not overwrite the last good state, and a
        # mid-validation state cannot be resumed exactly.
        if isinstance(exception, SIGTERMException) and not (trainer.sanity_checking or trainer.validating):
            self.save(trainer)
