"""What both benchmarks share: a config trimmed to training steps, the callbacks that act per step, and a
quiet Lightning so the result table stays readable."""

from __future__ import annotations

import logging
import os
import warnings

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig
from pytorch_lightning.callbacks import Checkpoint, EarlyStopping, ProgressBar

from rnnexp.training import instantiate_group


def step_only_overrides(max_steps: int, device: str) -> list[str]:
    """Overrides that keep one epoch of ``max_steps`` training batches and nothing else (no validation,
    no model summary, no progress bar, no checkpoints): what is timed is the training step."""
    return [
        f"trainer.accelerator={'gpu' if device == 'cuda' else 'cpu'}",
        "trainer.max_epochs=1",
        f"++trainer.max_steps={max_steps}",
        "++trainer.limit_val_batches=0",
        "trainer.num_sanity_val_steps=0",
        "trainer.enable_model_summary=false",
        "++trainer.enable_progress_bar=false",
        "++trainer.enable_checkpointing=false",
    ]


def per_step_callbacks(cfg: DictConfig) -> list[pl.Callback]:
    """The configured callbacks minus checkpointing, early stopping (it acts after validation, which is off)
    and the progress bar; whatever else the default config runs each step stays in the measurement."""
    off = (Checkpoint, EarlyStopping, ProgressBar)
    return [cb for cb in instantiate_group(cfg.get("callbacks")) if not isinstance(cb, off)]


def quiet_lightning() -> None:
    """Trainer start-up chatter (accelerator, few-workers hints) would bury the table."""
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning.fabric", "rnnexp"):
        logging.getLogger(name).setLevel(logging.ERROR)
    for pattern in (
        ".*does not have many workers.*",
        ".*GPU available but not used.*",
        ".*treespec.*",
        ".*smaller than the logging interval.*",
        ".*have no `validation_step`.*",  # the bare task of train_step_overhead
        ".*Experiment logs directory.*exists.*",  # one temp run dir per repeat
    ):
        warnings.filterwarnings("ignore", pattern)


def prepare_run(device: str, threads: int) -> None:
    """Check the device, quiet Lightning, set torch's threads and print what the numbers were measured on."""
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device here; run with --device cpu.")
    quiet_lightning()
    torch.set_num_threads(threads)
    where = torch.cuda.get_device_name() if device == "cuda" else f"cpu, {os.cpu_count()} cores"
    print(
        f"torch {torch.__version__}, pytorch-lightning {pl.__version__}, threads {torch.get_num_threads()}, {where}"
    )
