"""The adding problem: remember two marked values across a long sequence and output their sum.

Definition (the form of Arjovsky, Shah & Bengio 2016, "Unitary Evolution RNNs", §4.2, after Hochreiter &
Schmidhuber 1997, experiment 4, and Le, Jaitly & Hinton 2015): each of the ``T`` steps carries two inputs,
a value drawn uniformly from [0, 1] and a marker that is 0 except at two steps, one drawn uniformly from the
first half ``[0, T//2)`` and one from the second half ``[T//2, T)``. The target is the sum of the two marked
values. Predicting the sum's mean, 1, whatever the input scores ``Var(x1 + x2) = 2/12 = 1/6 ~ 0.167`` MSE:
the baseline a model must beat (it has then learned to remember something).
"""

from __future__ import annotations

import torch

from rnnexp.config.values import require_int
from rnnexp.data.tensor_datamodule import TensorDataModule, require_split_sizes

BASELINE_PREDICTION = 1.0  # E[x1 + x2] for x ~ U[0, 1]
BASELINE_MSE = 1.0 / 6.0  # Var(x1 + x2) = 2 * 1/12: the MSE of always predicting BASELINE_PREDICTION


def make_adding(count: int, seq_len: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``count`` adding-problem sequences from a private generator, stored compactly.

    Returns ``values (count, seq_len)`` float32 in [0, 1), ``marked (count, 2)`` int64 (the first marked
    step in ``[0, seq_len//2)``, the second in ``[seq_len//2, seq_len)``) and ``targets (count, 1)``, the
    sum of the two marked values. ``adding_inputs`` lays them out as the network reads them.
    """
    gen = torch.Generator().manual_seed(seed)
    half = seq_len // 2
    values = torch.rand((count, seq_len), generator=gen)
    first = torch.randint(0, half, (count,), generator=gen)
    second = half + torch.randint(0, seq_len - half, (count,), generator=gen)
    marked = torch.stack([first, second], dim=1)
    targets = values.gather(1, marked).sum(dim=1, keepdim=True)
    return values, marked, targets


def adding_inputs(values: torch.Tensor, marked: torch.Tensor) -> torch.Tensor:
    """``values (batch, T)`` and ``marked (batch, 2)`` -> the network's inputs ``(batch, T, 2)``: feature 0
    the value, feature 1 the marker (1.0 at the two marked steps, else 0.0)."""
    markers = torch.zeros_like(values).scatter_(1, marked, 1.0)
    return torch.stack([values, markers], dim=-1)


class AddingProblem(TensorDataModule):
    """The adding problem as fixed train/val/test sets generated from ``seed`` (each split its own stream).

    Batches are stored as ``(values, marked, targets)`` (4 bytes per step instead of 8) and become
    ``(inputs (batch, T, 2), targets (batch, 1))`` once on their device (``on_after_batch_transfer``).
    Many-to-one: the network reads the whole sequence and outputs one value.
    """

    input_size = 2
    output_size = 1
    per_step = False

    def __init__(
        self,
        seq_len: int = 200,
        train_size: int = 50000,
        val_size: int = 1000,
        test_size: int = 1000,
        batch_size: int = 50,
        seed: int = 0,
    ):
        super().__init__(batch_size)
        require_int("datamodule.seq_len", seq_len, 2, 200)
        require_split_sizes(train_size, val_size, test_size)
        require_int("datamodule.batch_size", batch_size, 1, 50)
        require_int("datamodule.seed", seed, 0, 0)
        self.save_hyperparameters(logger=False)  # train() logs the resolved config itself

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        hp = self.hparams
        sizes = (hp.train_size, hp.val_size, hp.test_size)
        self.generate_splits(sizes, hp.seed, lambda size, seed: make_adding(size, hp.seq_len, seed))

    def on_after_batch_transfer(self, batch: tuple[torch.Tensor, ...], dataloader_idx: int):
        values, marked, targets = batch
        return adding_inputs(values, marked), targets
