"""Metrics in the data's own units: a datamodule that scales its targets (``rnnexp.data.series.TimeSeries``)
exposes ``target_scale = (mean, std)``, each ``(targets,)``; scaled values ``v`` are ``v * std + mean`` in
the units of the file. Tasks log these beside the scaled metrics (``<stage>/mse_data`` beside
``<stage>/mse``)."""

from __future__ import annotations

import pytorch_lightning as pl
import torch


def target_scale(task: pl.LightningModule, device: torch.device) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The attached datamodule's ``(mean, std)`` on ``device``, or None (no trainer, or unscaled data)."""
    trainer = task._trainer  # None outside a Trainer (a test calling model_step directly)
    datamodule = getattr(trainer, "datamodule", None) if trainer is not None else None
    scale = getattr(datamodule, "target_scale", None)
    if scale is None:
        return None
    mean, std = scale
    return mean.to(device), std.to(device)


def to_data_units(values: torch.Tensor, scale: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """``(..., targets)`` scaled values → the file's units (the last dimension is the target column)."""
    mean, std = scale
    return values * std + mean
