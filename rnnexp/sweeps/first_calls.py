"""What the sweep forkserver runs once, after its imports, so that the jobs it forks start warm.

Why: the imports are not all a process pays before its first training step runs at speed. A job forked from
a forkserver that only imported torch and Lightning repays, in every job, the first calls: torch's first LSTM
call (35-45 ms: oneDNN sets itself up), the ``abc`` caches behind ~7,000 ``isinstance`` checks in Lightning
and torchmetrics, the first backward pass, optimizer step, checkpoint save and ``weights_only`` load. Paid
here once, before the fork, they are shared by every job (measured: ~0.1 s less CPU per tiny sine job).

What: ``pay_first_calls`` fits (2 steps), validates and tests rnnexp's default task (``SequenceRegressor``,
AdamW, CSV log, best checkpoint saved and reloaded) on 4 in-memory sequences, once per fused cell (rnn, lstm,
gru), with torch at 1 thread.

What it must not leave behind, since every job inherits this process: no file (everything goes to a temporary
directory, deleted), no Hydra singleton or global config (Hydra is not used), no logging handler and no
console output (file descriptors 1 and 2 point at /dev/null meanwhile), no changed random state (torch's CPU
generator, Python's and numpy's are restored; jobs seed themselves anyway), no warning marked as shown
(Python's filters are restored, Lightning's ``WarningCache`` sets emptied), no thread, and no CUDA
initialisation (a forked child could not use CUDA after it: Lightning's device probe asks NVML, ``fork_rng``
is given no devices). ``tests/test_first_calls.py`` checks these; ``tests/test_grid_launcher.py`` that a
forked job's objective is bit-identical to a run alone.
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
import tempfile
import warnings
from collections.abc import Iterator
from functools import partial


def fit_first_tasks(root: str) -> None:
    """Fit (2 steps), validate and test the default task once per fused cell, every file under ``root``."""
    import pytorch_lightning as pl
    import torch
    from pytorch_lightning.callbacks import ModelCheckpoint
    from pytorch_lightning.loggers import CSVLogger
    from torch.utils.data import DataLoader, TensorDataset

    from rnnexp.models.recurrent import RecurrentNet, RecurrentSpec
    from rnnexp.tasks.regressor import SequenceRegressor

    inputs = torch.randn(4, 3, 1)  # (batch, time, features)
    data = DataLoader(TensorDataset(inputs, inputs.clone()), batch_size=2)
    for cell in ("rnn", "lstm", "gru"):
        spec = RecurrentSpec(cell=cell, hidden_size=2)
        net = RecurrentNet(spec, input_size=1, output_size=1, per_step=True)
        task = SequenceRegressor(net, optimizer=partial(torch.optim.AdamW), log_figures=False)
        trainer = pl.Trainer(
            accelerator="cpu",
            devices=1,
            max_epochs=1,
            logger=CSVLogger(root, name=cell),
            callbacks=[ModelCheckpoint(dirpath=os.path.join(root, cell), monitor="val/mse")],
            default_root_dir=root,
            enable_progress_bar=False,
            enable_model_summary=False,
            log_every_n_steps=1,
        )
        trainer.fit(task, train_dataloaders=data, val_dataloaders=data)
        trainer.test(task, dataloaders=data, ckpt_path="best", weights_only=True)


def forget_shown_warnings() -> None:
    """Empty Lightning's module-level ``WarningCache`` sets: a warning seen here must still reach a job."""
    from lightning_utilities.core.rank_zero import WarningCache  # the class Lightning uses

    for name, module in list(sys.modules.items()):
        if name.startswith(("pytorch_lightning", "lightning_fabric", "lightning_utilities", "torchmetrics")):
            for value in list(vars(module).values()):
                # type(), not isinstance(): that can set off a deprecated name's warning (torch.distributed)
                if type(value) is WarningCache:
                    value.clear()


@contextlib.contextmanager
def output_discarded() -> Iterator[None]:
    """Point file descriptors 1 and 2 at /dev/null meanwhile: Lightning's log handlers hold the real streams,
    and the forkserver's output is the sweep's console."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved, null = (os.dup(1), os.dup(2)), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        os.dup2(null, 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, null):
            os.close(fd)


def pay_first_calls() -> None:
    """Run every job's first calls once in this process, leaving nothing a job could see (module docstring)."""
    import numpy as np
    import torch

    # Before any torch operation: one thread, so no OpenMP thread pool, which a fork would not carry. The
    # count is put back afterwards (setting it starts no pool): a job sets its own, and one that does not gets
    # the count it would have had.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        with (
            output_discarded(),
            tempfile.TemporaryDirectory(prefix="rnnexp-first-calls-") as root,
            torch.random.fork_rng(devices=[]),  # devices=[]: no CUDA call
            warnings.catch_warnings(),
        ):
            warnings.simplefilter("ignore")
            fit_first_tasks(root)
    finally:  # also when the fit failed (the forkserver then goes on without it)
        random.setstate(python_state)
        np.random.set_state(numpy_state)
        forget_shown_warnings()
        torch.set_num_threads(threads)
