"""Pre-emption and Ctrl-C: stop at the next batch boundary, save a checkpoint, say how to resume.

Lightning already turns SIGTERM into a clean stop: it finishes the running batch, raises ``SIGTERMException``
on every rank at the same step, and calls ``on_exception`` hooks. This module adds the checkpoint, the first
Ctrl-C routed through the same path (a bare KeyboardInterrupt could land between two parameter updates of
one optimizer step), and a message with the command that resumes the run.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.utilities.exceptions import SIGTERMException
from pytorch_lightning.utilities.rank_zero import rank_zero_info

from rnnexp.lifecycle.checkpoint import newest_checkpoint_of
from rnnexp.lifecycle.resume import run_resume_command
from rnnexp.lifecycle.step_hooks import skip_unused_batch_hooks

log = logging.getLogger(__name__)


@skip_unused_batch_hooks
class InterruptCheckpoint(pl.Callback):
    """On SIGTERM (pre-emption, ``scancel``, a job's time limit) or a first Ctrl-C: save ``<dirpath>/<filename>.ckpt``
    at the end of the running training batch, log how to resume, and exit with status 128 + the signal
    number. A second Ctrl-C aborts at once without a checkpoint. The file is deleted when a later run of the
    same directory finishes.

    Not Lightning's ``OnExceptionCheckpoint``: that one saves on any exception (a NaN loss too, hiding the
    last good checkpoint), and its presence makes every ``fit`` without ``ckpt_path`` resume silently. Not a
    ``Checkpoint`` subclass either, so ``trainer.checkpoint_callback`` stays the best-model ModelCheckpoint.
    """

    def __init__(self, dirpath: str, filename: str = "interrupted"):
        self.ckpt_path = str(Path(dirpath) / f"{filename}.ckpt")
        self.signal_name = "SIGTERM"
        self.previous_sigint: Any = None

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        # Lightning calls teardown only after a run that finished; the interrupt checkpoint is stale then.
        if trainer.is_global_zero and stage == "fit":
            Path(self.ckpt_path).unlink(missing_ok=True)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # By now Lightning has installed its SIGTERM handler, which the first Ctrl-C is routed to.
        if threading.current_thread() is threading.main_thread() and callable(
            signal.getsignal(signal.SIGTERM)
        ):
            self.previous_sigint = signal.signal(signal.SIGINT, self._first_ctrl_c)

    def _first_ctrl_c(self, signum: int, frame: FrameType | None) -> None:
        self.restore_sigint()  # the next Ctrl-C interrupts immediately
        self.signal_name = "SIGINT (Ctrl-C)"
        rank_zero_info(
            "\nCtrl-C: stopping after this training batch to save a checkpoint (Ctrl-C again aborts)."
        )
        # Lightning's SIGTERM handler sets the stop request, shared with all ranks at the next batch.
        os.kill(os.getpid(), signal.SIGTERM)

    def restore_sigint(self) -> None:
        if self.previous_sigint is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, self.previous_sigint)
            self.previous_sigint = None

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.restore_sigint()

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        self.restore_sigint()
        if not isinstance(exception, SIGTERMException):
            if isinstance(exception, KeyboardInterrupt) and trainer.is_global_zero:
                newest = newest_checkpoint_of(trainer)
                log.warning(
                    "Aborted without saving (a checkpoint taken mid-step would be inconsistent). %s",
                    resume_hint(trainer, newest) if newest else "No checkpoint was written yet.",
                )
            return  # other errors (a NaN loss, a bug) must not leave a checkpoint newer than the last good one
        if trainer.sanity_checking or trainer.validating:
            # Mid-validation state cannot be resumed exactly; the newest periodic checkpoint stays the latest.
            saved = newest_checkpoint_of(trainer)
        else:
            trainer.save_checkpoint(self.ckpt_path, weights_only=False)  # the full state, to resume from
            saved = Path(self.ckpt_path)
        signum = signal.SIGINT if self.signal_name.startswith("SIGINT") else signal.SIGTERM
        exception.code = 128 + signum  # what a shell reports for a process stopped by that signal
        if trainer.is_global_zero:
            log.warning(
                "%s received at epoch %d, global step %d. %s",
                self.signal_name,
                trainer.current_epoch,
                trainer.global_step,
                resume_hint(trainer, saved)
                if saved
                else "No checkpoint was written yet; start the run again.",
            )


def resume_hint(trainer: pl.Trainer, checkpoint: Path) -> str:
    run_dir = Path(trainer.default_root_dir).resolve()
    return f"Checkpoint: {checkpoint}. Resume the run in its own directory with:\n  {run_resume_command(run_dir)}"
