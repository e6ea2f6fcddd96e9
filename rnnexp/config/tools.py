"""Checks of the command-line tools' configs (``rnnexp.generate``, ``rnnexp.translate``): every required
key is given and every value they take is one they can use, before a checkpoint is read."""

from __future__ import annotations

import re

import torch
from omegaconf import DictConfig, OmegaConf

from rnnexp.config.values import fail, require_int
from rnnexp.errors import ConfigError

DEVICE = re.compile(r"^(cpu|mps|cuda(:\d+)?)$")


def check_tool_config(cfg: DictConfig, tool: str, required: dict[str, str]) -> None:
    """``required``: each mandatory key with an example value, for the message."""
    for key in required:
        if OmegaConf.is_missing(cfg, key):
            given = " ".join(f"{k}={v}" for k, v in required.items())
            raise ConfigError(
                f"{key} is required: python -m {tool} {given} (options: conf/{tool.split('.')[-1]}.yaml)."
            )
    device = cfg.get("device", "cpu")
    if not isinstance(device, str) or not DEVICE.match(device):
        fail("device", device, "cpu, cuda, cuda:<index> or mps", "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={device} but torch sees no CUDA GPU on this machine; use device=cpu.")
    if device == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device=mps but this machine has no usable MPS device; use device=cpu.")
    if "seed" in cfg:
        require_int("seed", cfg.seed, 0, 1)
