"""The part every in-memory datamodule shares: train/val/test tensors served as whole-batch slices."""

from __future__ import annotations

import pytorch_lightning as pl
from torch.utils.data import DataLoader

from rnnexp.data.batching import TensorBatchDataset, tensor_batches


class TensorDataModule(pl.LightningDataModule):
    """Subclasses fill ``self.datasets`` (``train``/``val``/``test``) in an idempotent ``setup``.

    Training batches are shuffled per epoch; evaluation batches keep their order. Under DDP each rank reads
    its own shard (see ``rnnexp.data.batching.tensor_batches``).
    """

    # Whether a step's target is a later input of the same sequence, so that only a causal network may
    # learn it (rnnexp.config.checks.check_causality); a subclass whose targets are future inputs says so.
    targets_are_future_inputs = False

    def __init__(self, batch_size: int):
        super().__init__()
        self.batch_size = batch_size
        self.datasets: dict[str, TensorBatchDataset] = {}

    def loader(self, split: str, shuffle: bool) -> DataLoader:
        return tensor_batches(self.datasets[split], self.batch_size, shuffle=shuffle, trainer=self.trainer)

    def train_dataloader(self) -> DataLoader:
        return self.loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self.loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self.loader("test", shuffle=False)
