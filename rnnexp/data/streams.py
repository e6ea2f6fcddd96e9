"""Long series laid out as parallel streams for truncated backpropagation through time, shared by every
datamodule with a ``tbptt`` option (text, sine waves).

A split is one long series ``(length, *features)``; ``batchify`` cuts it into ``streams`` contiguous rows
``(streams, length // streams, *features)``, and batch i of ``StreamBatches`` is the next ``seq_len`` steps
of every row, so a task that carries its hidden state from batch to batch reads each row without a break.
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from rnnexp.data.batching import EpochBatchSampler, ResumableLoader


def batchify(series: torch.Tensor, streams: int) -> torch.Tensor:
    """Cut a series ``(length, *features)`` into ``streams`` equal contiguous rows,
    ``(streams, length // streams, *features)``; the tail that does not fill a row is dropped. Row b
    continues where row b-1 ends, as in the classic RNN LM recipe."""
    length = series.shape[0] // streams
    return series[: length * streams].reshape(streams, length, *series.shape[1:])


def rank_streams(series: torch.Tensor, batch_size: int, rank: int = 0, world_size: int = 1) -> torch.Tensor:
    """One process's ``batch_size`` streams of a series laid out for all ``world_size`` processes: the same
    layout in every process, each taking every ``world_size``-th row, so no two ranks read the same steps."""
    return batchify(series, batch_size * world_size)[rank::world_size]


class StreamBatches(Dataset):
    """Item i is batch i of truncated BPTT: the next ``seq_len`` steps of every stream, ``(streams, time,
    *features)``, and their targets. Items must be served in order (the hidden state carries over).

    Without ``targets`` the target of each step is the next step of the same stream (language modelling),
    so the last step of a stream is only ever a target. With ``targets`` (the same shape as ``inputs`` in its
    first two dimensions) step t's target is ``targets[:, t]``.
    """

    def __init__(self, inputs: torch.Tensor, seq_len: int, targets: torch.Tensor | None = None):
        self.streams = inputs  # (streams, length, *features), as laid out
        if targets is None:
            inputs, targets = inputs[:, :-1], inputs[:, 1:]
        if targets.shape[:2] != inputs.shape[:2]:
            raise ValueError("StreamBatches needs inputs and targets with the same (streams, time)")
        self.inputs, self.targets = inputs, targets
        self.seq_len = seq_len

    @property
    def steps(self) -> int:
        return self.inputs.shape[1]

    def __len__(self) -> int:
        return -(-self.steps // self.seq_len)  # the last window may be shorter

    def __getitem__(self, i: int | list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        if isinstance(i, list):  # from a batch sampler of batch size 1
            (i,) = i
        if not 0 <= i < len(self):
            raise IndexError(i)
        start = i * self.seq_len
        stop = min(start + self.seq_len, self.steps)
        # Contiguous copies: a column slice of the streams would trip ``view`` in metrics and kernels.
        return self.inputs[:, start:stop].contiguous(), self.targets[:, start:stop].contiguous()


def stream_loader(dataset: StreamBatches) -> ResumableLoader:
    """Item i is already batch i: served in order (never shuffled) by a sampler that lets a run resumed
    mid-epoch skip the batches it had read, as the other datamodules' loaders do."""
    sampler = EpochBatchSampler(len(dataset), batch_size=1, shuffle=False, seed=0)
    return ResumableLoader(dataset, sampler=sampler, batch_size=None, generator=torch.Generator())
