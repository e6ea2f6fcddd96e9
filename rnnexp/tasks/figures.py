"""Figures a person reads (prediction curves, confusion matrices), sent to every logger that shows images
and saved as PNG in the run directory."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from matplotlib.figure import Figure  # the object API needs no GUI backend and no global pyplot state
from pytorch_lightning.loggers import TensorBoardLogger, WandbLogger


def plot_sequences(
    inputs: torch.Tensor,
    targets: torch.Tensor,
    preds: torch.Tensor,
    title: str,
    max_sequences: int = 4,
    boundaries: Sequence[int] = (),
) -> Figure:
    """Input, true target and prediction per step for a few sequences, each ``(batch, time, 1)``; dotted
    vertical lines at ``boundaries`` (steps where a new batch of a carried stream begins)."""
    count = min(max_sequences, inputs.shape[0])
    fig = Figure(figsize=(10, 2.2 * count), layout="constrained")
    axes = fig.subplots(count, 1, sharex=True, squeeze=False)[:, 0]
    steps = np.arange(inputs.shape[1])
    for i, ax in enumerate(axes):
        ax.plot(steps, inputs[i, :, 0].cpu().float().numpy(), color="0.7", lw=1, label="input")
        ax.plot(steps, targets[i, :, 0].cpu().float().numpy(), color="C0", lw=2, label="target")
        ax.plot(steps, preds[i, :, 0].cpu().float().numpy(), color="C1", lw=1.5, ls="--", label="prediction")
        for step in boundaries:
            ax.axvline(step - 0.5, color="0.4", lw=0.8, ls=":")
        ax.set_ylabel(f"seq {i}")
    axes[0].legend(loc="upper right", ncols=3, fontsize="small")
    axes[0].set_title(title)
    axes[-1].set_xlabel("time step")
    return fig


def plot_confusion_matrix(matrix: torch.Tensor, class_names: Sequence[str], title: str) -> Figure:
    """Counts of (true, predicted) pairs, rows normalised for colour so rare classes stay readable."""
    counts = matrix.cpu().long().numpy()
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = max(5.0, 0.55 * len(class_names) + 2)
    fig = Figure(figsize=(size + 1, size), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, label="fraction of true class")
    ticks = np.arange(len(class_names))
    ax.set_xticks(ticks, class_names, rotation=45, ha="right")
    ax.set_yticks(ticks, class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for (row, col), count in np.ndenumerate(counts):
        ax.text(
            col,
            row,
            str(count),
            ha="center",
            va="center",
            fontsize=7,
            color="white" if rates[row, col] > 0.5 else "black",
        )
    ax.set_title(title)
    return fig


def publish_figure(trainer: pl.Trainer, name: str, fig: Figure, per_epoch: bool = True) -> Path | None:
    """Save ``fig`` under ``<run dir>/figures/`` and send it to the loggers that display images (rank 0).

    ``per_epoch`` figures keep one PNG per epoch (``<name>_epoch003.png``) so their history stays readable.
    """
    if not trainer.is_global_zero:
        return None
    folder = Path(trainer.default_root_dir) / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    stem = name.replace("/", "_")
    path = folder / (f"{stem}_epoch{trainer.current_epoch:03d}.png" if per_epoch else f"{stem}.png")
    fig.savefig(path, dpi=100)
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.experiment.add_figure(name, fig, global_step=trainer.global_step, close=False)
        elif isinstance(logger, WandbLogger):
            logger.log_image(key=name, images=[str(path)])
    return path


def plot_captions(images: torch.Tensor, captions: Sequence[str], truths: Sequence[str], title: str) -> Figure:
    """Images ``(count, height, width)`` with the caption generated for each (red where it is not the truth),
    the classic captioning picture."""
    count = images.shape[0]
    cols = min(count, 8)
    rows = -(-count // cols)
    fig = Figure(figsize=(1.6 * cols, 1.9 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes:
        ax.axis("off")
    for ax, image, caption, truth in zip(axes, images.cpu().float(), captions, truths, strict=False):
        ax.imshow(image.numpy(), cmap="gray")
        ax.set_title(caption or "(nothing)", fontsize=8, color="black" if caption == truth else "red")
    fig.suptitle(title)
    return fig
