"""The copy memory task: read a few symbols, wait through a long delay, then output them in order.

Definition (Arjovsky, Shah & Bengio 2016, "Unitary Evolution RNNs", §4.1, after Hochreiter & Schmidhuber
1997): the alphabet is a blank ``0``, ``symbols`` data symbols ``1..symbols`` and a delimiter
``symbols + 1``. A sequence is ``length`` data symbols drawn uniformly, then ``delay - 1`` blanks, the
delimiter, and ``length`` blanks (``delay + 2 * length`` steps in all). The target is blank at every step
except the last ``length``, which must repeat the data symbols in order. A model with no memory can output
blank until the delimiter and then guess: its per-step cross-entropy averaged over the whole sequence is
``length * ln(symbols) / (delay + 2 * length)`` (the memoryless baseline, 10 ln 8 / (T + 20) in the paper).
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from rnnexp.config.values import require_int
from rnnexp.data.tensor_datamodule import TensorDataModule, require_split_sizes

BLANK = 0


def make_copy_symbols(count: int, length: int, symbols: int, seed: int) -> torch.Tensor:
    """The data symbols of ``count`` sequences, ``(count, length)`` int64 in ``1..symbols``: everything
    random about a copy-memory sequence (``copy_sequences`` lays out the rest)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(1, symbols + 1, (count, length), generator=gen)


def copy_sequences(data: torch.Tensor, delay: int, symbols: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``data (batch, length)`` -> input and target symbol ids, each ``(batch, delay + 2 * length)`` int64.

    Input: the data, ``delay - 1`` blanks, the delimiter (``symbols + 1``), ``length`` blanks. Target:
    ``delay + length`` blanks, then the data.
    """
    batch, length = data.shape
    blanks = data.new_full((batch, delay + length), BLANK)
    inputs = torch.cat([data, blanks], dim=1)
    inputs[:, length + delay - 1] = symbols + 1
    targets = torch.cat([blanks, data], dim=1)
    return inputs, targets


def memoryless_loss(delay: int, length: int, symbols: int) -> float:
    """The per-step cross-entropy (nats) of outputting blank until the delimiter and then a uniform guess
    over the symbols, averaged over all ``delay + 2 * length`` steps."""
    return length * math.log(symbols) / (delay + 2 * length)


class CopyMemory(TensorDataModule):
    """The copy memory task as fixed train/val/test sets generated from ``seed`` (each split its own stream).

    Only the data symbols are stored, ``(N, length)``; on its device a batch becomes one-hot inputs
    ``(batch, delay + 2 * length, symbols + 2)`` (blank, symbols, delimiter) and per-step target ids
    ``(batch, delay + 2 * length)`` in ``0..symbols`` (``on_after_batch_transfer``). Many-to-many: the network
    outputs ``symbols + 1`` logits per step.
    """

    per_step = True

    def __init__(
        self,
        delay: int = 100,
        length: int = 10,
        symbols: int = 8,
        train_size: int = 10000,
        val_size: int = 1000,
        test_size: int = 1000,
        batch_size: int = 128,
        seed: int = 0,
    ):
        super().__init__(batch_size)
        require_int("datamodule.delay", delay, 1, 100)
        require_int("datamodule.length", length, 1, 10)
        require_int("datamodule.symbols", symbols, 1, 8)
        require_split_sizes(train_size, val_size, test_size)
        require_int("datamodule.batch_size", batch_size, 1, 128)
        require_int("datamodule.seed", seed, 0, 0)
        self.save_hyperparameters(logger=False)  # train() logs the resolved config itself
        self.input_size = symbols + 2  # blank, the symbols, the delimiter
        self.output_size = symbols + 1  # blank and the symbols

    @property
    def baseline_loss(self) -> float:
        """The memoryless baseline's cross-entropy per step (nats)."""
        hp = self.hparams
        return memoryless_loss(hp.delay, hp.length, hp.symbols)

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        hp = self.hparams
        sizes = (hp.train_size, hp.val_size, hp.test_size)
        self.generate_splits(
            sizes, hp.seed, lambda size, seed: (make_copy_symbols(size, hp.length, hp.symbols, seed),)
        )

    def on_after_batch_transfer(self, batch: tuple[torch.Tensor], dataloader_idx: int):
        (data,) = batch
        inputs, targets = copy_sequences(data, self.hparams.delay, self.hparams.symbols)
        return F.one_hot(inputs, self.input_size).float(), targets
