"""``trainer.limit_val_batches`` as a fraction is only known to select no batch once the datamodule knows
the size of its validation split: checked right after the datamodule's setup, before the first training
step, so the run ends in one paragraph instead of Lightning's exception after the data was read."""

from __future__ import annotations

import math

import pytorch_lightning as pl

from rnnexp.errors import ConfigError
from rnnexp.lifecycle.step_hooks import skip_unused_batch_hooks


@skip_unused_batch_hooks
class CheckValidationBatches(pl.Callback):
    """Refuses a fraction of the validation split that rounds down to zero batches (Lightning takes
    ``int(batches * fraction)``); the fix names the smallest fraction that keeps one batch."""

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        limit = trainer.limit_val_batches
        datamodule = trainer.datamodule
        if stage != "fit" or not isinstance(limit, float) or limit >= 1.0 or datamodule is None:
            return
        try:
            batches = len(datamodule.val_dataloader())
        except TypeError:  # an iterable without a length: Lightning accepts only 1.0 or a count there
            return
        if batches > 0 and int(batches * limit) == 0:
            smallest = math.ceil(1e4 / batches) / 1e4
            raise ConfigError(
                f"trainer.limit_val_batches={limit} selects no batch of the validation split, which has "
                f"{batches} batch{'es' if batches != 1 else ''} ({limit} x {batches} < 1), so the run would "
                f"have nothing to judge it by. Give at least trainer.limit_val_batches={smallest} (one batch), a "
                "number of batches (e.g. trainer.limit_val_batches=1), or 1.0 for the whole split."
            )
