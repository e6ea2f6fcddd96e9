"""Sine waves generated on the fly: map sin(x) to cos(x) step by step, or forecast the next value."""

from __future__ import annotations

import math

import torch

from rnnexp.config.values import fail, is_number, require_int, require_number
from rnnexp.data.batching import TensorBatchDataset
from rnnexp.data.splits import split_sizes
from rnnexp.data.tensor_datamodule import TensorDataModule
from rnnexp.errors import ConfigError

TASKS = ("sin_to_cos", "next_step")


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


class SineWaves(TensorDataModule):
    """Deterministic synthetic sine data (no download): a target per step, so a many-to-many task."""

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
    ):
        super().__init__(batch_size)
        if task not in TASKS:
            raise ConfigError(f"datamodule.task={task!r} is unknown; choose one of {list(TASKS)}.")
        for key, value in (
            ("num_sequences", num_sequences),
            ("seq_len", seq_len),
            ("batch_size", batch_size),
        ):
            require_int(f"datamodule.{key}", value, 1, 64)
        require_number("datamodule.noise", noise, 0.05, low=0.0)
        require_number("datamodule.step", step, 0.2, low=0.0, low_open=True)
        require_int("datamodule.seed", seed, 0, 0)
        for key, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
            require_number(f"datamodule.{key}", value, 0.1, low=0.0, high=1.0, high_open=True)
        if not (len(freq_range) == 2 and all(is_number(f) for f in freq_range)):
            fail("datamodule.freq_range", list(freq_range), "[low, high], two numbers", "[0.5,1.5]")
        freq_range = tuple(float(f) for f in freq_range)  # a plain tuple keeps checkpoints weights_only-safe
        if len(freq_range) != 2 or not 0 < freq_range[0] <= freq_range[1]:
            raise ConfigError(
                f"datamodule.freq_range={list(freq_range)!r} must be [low, high] with 0 < low <= high."
            )
        self.save_hyperparameters(logger=False)  # train() logs the resolved config itself
        self.task = task
        self.split = split_sizes(num_sequences, val_fraction, test_fraction)

    @property
    def targets_are_future_inputs(self) -> bool:
        """next_step: the target of step t is the input of step t+1, so the network must be causal
        (rnnexp.config.checks.check_causality)."""
        return self.task == "next_step"

    target_description = "datamodule.task=next_step predicts each step's next input"
    causal_alternative = ", or datamodule.task=sin_to_cos, whose targets are not inputs"

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        hp = self.hparams
        inputs, targets = make_sine_waves(
            hp.task, hp.num_sequences, hp.seq_len, hp.noise, tuple(hp.freq_range), hp.step, hp.seed
        )
        start = 0
        for name, size in zip(("train", "val", "test"), self.split, strict=True):
            self.datasets[name] = TensorBatchDataset(
                inputs[start : start + size], targets[start : start + size]
            )
            start += size
