"""The part every in-memory datamodule shares: train/val/test tensors served as whole-batch slices."""

from __future__ import annotations

from collections.abc import Callable

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from rnnexp.config.values import require_int
from rnnexp.data.batching import TensorBatchDataset, tensor_batches

SPLITS = ("train", "val", "test")


def require_split_sizes(train_size: object, val_size: object, test_size: object) -> None:
    """Each split's size is an integer >= 1 (one paragraph naming ``datamodule.<split>_size`` otherwise)."""
    for key, value in (("train_size", train_size), ("val_size", val_size), ("test_size", test_size)):
        require_int(f"datamodule.{key}", value, 1, 1000)


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

    def generate_splits(
        self, sizes: tuple[int, int, int], seed: int, make: Callable[[int, int], tuple[torch.Tensor, ...]]
    ) -> None:
        """Fill ``self.datasets`` with ``make(size, split_seed)`` for train, val and test, each split from its
        own generator stream (``seed * 3 + index``): changing ``train_size`` leaves val and test as they were."""
        for index, (name, size) in enumerate(zip(SPLITS, sizes, strict=True)):
            self.datasets[name] = TensorBatchDataset(*make(size, seed * 3 + index))

    def loader(self, split: str, shuffle: bool) -> DataLoader:
        return tensor_batches(self.datasets[split], self.batch_size, shuffle=shuffle, trainer=self.trainer)

    def train_dataloader(self) -> DataLoader:
        return self.loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self.loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self.loader("test", shuffle=False)
