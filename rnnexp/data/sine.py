"""Sine waves generated on the fly: map sin(x) to cos(x) step by step, predict the next value, or forecast
the next ``horizon`` values from a context window (encoder-decoder)."""

from __future__ import annotations

import math

import torch
from torch.utils.data import DataLoader

from rnnexp.data.batching import TensorBatchDataset
from rnnexp.data.splits import split_sizes
from rnnexp.data.streams import StreamBatches, rank_streams, stream_loader
from rnnexp.data.tensor_datamodule import TensorDataModule
from rnnexp.errors import ConfigError

TASKS = ("sin_to_cos", "next_step", "forecast")
SPLITS = ("train", "val", "test")


def make_sine_waves(
    task: str,
    num_sequences: int,
    seq_len: int,
    noise: float,
    freq_range: tuple[float, float],
    step: float,
    seed: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and per-step targets, each ``(num_sequences, seq_len, 1)``, from a private generator.

    Every sequence has its own phase and frequency, so the network must infer them from what it has seen.
    """
    gen = torch.Generator().manual_seed(seed)
    phase = torch.rand(num_sequences, 1, generator=gen) * 2 * math.pi
    low, high = freq_range
    freq = low + (high - low) * torch.rand(num_sequences, 1, generator=gen)
    # One extra step so next_step can shift by one.
    angle = phase + freq * step * torch.arange(seq_len + 1, dtype=torch.float32)
    wave = torch.sin(angle)
    if task == "sin_to_cos":
        inputs, targets = wave[:, :-1], torch.cos(angle[:, :-1])
    else:
        inputs, targets = wave[:, :-1], wave[:, 1:]
    inputs = inputs + noise * torch.randn(inputs.shape, generator=gen)
    return inputs.unsqueeze(-1), targets.unsqueeze(-1)


def make_forecast_windows(
    num_sequences: int,
    seq_len: int,
    horizon: int,
    noise: float,
    freq_range: tuple[float, float],
    step: float,
    seed: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Context ``(num_sequences, seq_len, 1)`` (noisy, as observed) and the clean next ``horizon`` values of
    the same wave, ``(num_sequences, horizon, 1)``."""
    wave, _ = make_sine_waves("sin_to_cos", num_sequences, seq_len + horizon, 0.0, freq_range, step, seed)
    gen = torch.Generator().manual_seed(seed + 1)  # noise independent of the waves' phases and frequencies
    context = wave[:, :seq_len] + noise * torch.randn((num_sequences, seq_len, 1), generator=gen)
    return context, wave[:, seq_len:].contiguous()


def make_sine_stream(
    task: str,
    length: int,
    noise: float,
    freq_range: tuple[float, float],
    step: float,
    segment_len: int,
    seed: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One long wave, inputs and per-step targets each ``(length, 1)``, for truncated BPTT streams.

    The frequency is redrawn every ``segment_len`` steps while the phase runs on without a jump, so a
    stream keeps a state worth carrying but the network must still track changes.
    """
    gen = torch.Generator().manual_seed(seed)
    low, high = freq_range
    segments = -(-(length + 1) // segment_len)
    freq = low + (high - low) * torch.rand(segments, generator=gen)
    per_step = freq.repeat_interleave(segment_len)[: length + 1]
    angle = torch.rand(1, generator=gen) * 2 * math.pi + torch.cumsum(per_step * step, 0) - per_step[0] * step
    wave = torch.sin(angle)
    targets = torch.cos(angle[:-1]) if task == "sin_to_cos" else wave[1:]
    inputs = wave[:-1] + noise * torch.randn(length, generator=gen)
    return inputs.unsqueeze(-1), targets.unsqueeze(-1)


class SineWaves(TensorDataModule):
    """Deterministic synthetic sine data (no download).

    Shapes, always ``(batch, time, features)`` with ``features == 1`` here:

    - ``sin_to_cos`` / ``next_step``: inputs and targets ``(batch, seq_len, 1)``, a target per step. With
      ``tbptt`` each split is instead one long wave (its ``num_sequences`` share of steps, frequency redrawn
      every ``segment_len`` steps) cut into ``batch_size`` streams, served ``seq_len`` steps at a time in
      order, for a task that carries its hidden state across batches.
    - ``forecast``: inputs are a context ``(batch, seq_len, features)``, targets the next values of the same
      features ``(batch, horizon, features)``; noise is added to the context only.
    """

    input_size = 1
    output_size = 1
    per_step = True

    def __init__(
        self,
        task: str = "sin_to_cos",
        num_sequences: int = 2048,
        seq_len: int = 64,
        noise: float = 0.05,
        freq_range: tuple[float, float] = (0.5, 1.5),
        step: float = 0.2,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        batch_size: int = 64,
        seed: int = 0,
        tbptt: bool = False,
        segment_len: int = 1024,
        horizon: int = 20,
    ):
        super().__init__(batch_size)
        if task not in TASKS:
            raise ConfigError(f"datamodule.task={task!r} is unknown; choose one of {list(TASKS)}.")
        if tbptt and task == "forecast":
            raise ConfigError(
                "datamodule.tbptt=true lays the waves out as streams with a target per step, but "
                "datamodule.task=forecast reads independent context windows; use datamodule.tbptt=false."
            )
        for key, value in (
            ("num_sequences", num_sequences),
            ("seq_len", seq_len),
            ("batch_size", batch_size),
            ("segment_len", segment_len),
            ("horizon", horizon),
        ):
            if value <= 0:
                raise ConfigError(f"datamodule.{key}={value!r} must be a positive integer.")
        if noise < 0:
            raise ConfigError(f"datamodule.noise={noise!r} must be >= 0.")
        freq_range = tuple(float(f) for f in freq_range)  # a plain tuple keeps checkpoints weights_only-safe
        if len(freq_range) != 2 or not 0 < freq_range[0] <= freq_range[1]:
            raise ConfigError(
                f"datamodule.freq_range={list(freq_range)!r} must be [low, high] with 0 < low <= high."
            )
        self.save_hyperparameters(logger=False)  # train() logs the resolved config itself
        self.split = split_sizes(num_sequences, val_fraction, test_fraction)
        self.tbptt = tbptt
        self.streams: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}  # tbptt: each split's long wave

    @property
    def horizon(self) -> int | None:
        """Values forecast per window (``forecast`` only)."""
        return self.hparams.horizon if self.hparams.task == "forecast" else None

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        hp = self.hparams
        freq_range = tuple(hp.freq_range)
        if hp.tbptt:  # contiguous slices of one long wave, as text is split
            inputs, targets = make_sine_stream(
                hp.task, hp.num_sequences * hp.seq_len, hp.noise, freq_range, hp.step, hp.segment_len, hp.seed
            )
            start = 0
            for name, size in zip(SPLITS, self.split, strict=True):
                stop = start + size * hp.seq_len
                if size:  # a zero fraction leaves the split out: Lightning skips the stage
                    self.streams[name] = (inputs[start:stop], targets[start:stop])
                    self.datasets[name] = self.stream_dataset(name)  # fails now when a split is too short
                start = stop
            return
        if hp.task == "forecast":
            inputs, targets = make_forecast_windows(
                hp.num_sequences, hp.seq_len, hp.horizon, hp.noise, freq_range, hp.step, hp.seed
            )
        else:
            inputs, targets = make_sine_waves(
                hp.task, hp.num_sequences, hp.seq_len, hp.noise, freq_range, hp.step, hp.seed
            )
        start = 0
        for name, size in zip(SPLITS, self.split, strict=True):
            self.datasets[name] = TensorBatchDataset(
                inputs[start : start + size], targets[start : start + size]
            )
            start += size

    def stream_dataset(self, split: str, rank: int = 0, world_size: int = 1) -> StreamBatches:
        """One rank's ``batch_size`` streams of a split's long wave (tbptt)."""
        inputs, targets = self.streams[split]
        if inputs.shape[0] < self.batch_size * world_size:
            raise ConfigError(
                f"The {split} split has {inputs.shape[0]} steps, too few for datamodule.batch_size="
                f"{self.batch_size} streams (x {world_size} processes); raise datamodule.num_sequences or the "
                "split's fraction, or lower datamodule.batch_size."
            )
        streams = [rank_streams(t, self.batch_size, rank, world_size) for t in (inputs, targets)]
        return StreamBatches(streams[0], self.hparams.seq_len, targets=streams[1])

    def loader(self, split: str, shuffle: bool) -> DataLoader | list:
        if not self.tbptt:
            return super().loader(split, shuffle)
        if split not in self.streams:
            return []
        trainer = self.trainer
        rank, world_size = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        return stream_loader(self.stream_dataset(split, rank, world_size))
