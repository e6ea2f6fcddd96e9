"""Sliding windows over series rows, gathered a batch at a time: memory holds the rows once (not once per
window, which a stride of 1 would multiply by the window length), and a batch is one indexing op."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch.utils.data import Dataset


def window_starts(part_lengths: Sequence[int], size: int, stride: int) -> torch.Tensor:
    """First rows ``(windows,)`` int64 of every ``stride``-th window of ``size`` rows that lies inside one
    part, for parts of ``part_lengths`` rows laid end to end (so no window crosses from one part into the
    next); a part shorter than ``size`` has none."""
    offsets = torch.tensor([0, *part_lengths[:-1]], dtype=torch.int64).cumsum(0)
    starts = [
        offset + torch.arange(0, length - size + 1, stride, dtype=torch.int64)
        for offset, length in zip(offsets.tolist(), part_lengths, strict=True)
        if length >= size
    ]
    return torch.cat(starts) if starts else torch.empty(0, dtype=torch.int64)


class WindowDataset(Dataset):
    """``rows`` ``(rows, columns)`` and window ``starts`` ``(windows,)``; indexed with a whole batch of window
    indices (as ``rnnexp.data.batching`` reads datasets), it gathers ``(batch, size, columns)`` and returns
    ``cut(windows)``: the task's ``(inputs, targets)``."""

    def __init__(
        self,
        rows: torch.Tensor,
        starts: torch.Tensor,
        size: int,
        cut: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
    ):
        self.rows, self.starts, self.cut = rows, starts, cut
        self.offsets = torch.arange(size, dtype=torch.int64)

    def __len__(self) -> int:
        return self.starts.numel()

    def __getitem__(self, index: list[int] | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.as_tensor(index)
        return tuple(t.contiguous() for t in self.cut(self.rows[self.starts[index, None] + self.offsets]))

    @property
    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every window at once (tests, figures): ``(inputs, targets)``."""
        return self[torch.arange(len(self))]
