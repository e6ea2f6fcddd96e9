"""Load a trained task back from a checkpoint, rebuilding its network from the spec stored inside."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import torch

from rnnexp.errors import DataError
from rnnexp.tasks.base import SequenceTask


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint dict, loaded with ``weights_only=True`` (plain tensors and containers, no code)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"Checkpoint {path} does not exist; pass the path of a .ckpt file from a run directory."
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise DataError(f"Checkpoint {path} cannot be read ({type(err).__name__}: {err}).") from None
    if "rnnexp" not in checkpoint:
        raise DataError(f"Checkpoint {path} was not written by rnnexp (it has no 'rnnexp' entry).")
    return checkpoint


def rnnexp_class(name: str, path: str | Path) -> type:
    """Resolve a class named in a checkpoint, refusing anything outside rnnexp."""
    module_name, _, class_name = name.rpartition(".")
    if not module_name.startswith("rnnexp."):
        raise DataError(f"Checkpoint {path} names class {name}, which is not part of rnnexp.")
    return getattr(importlib.import_module(module_name), class_name)


def load_task(path: str | Path, map_location: str | torch.device = "cpu") -> SequenceTask:
    """A ready-to-use task (eval mode) from an rnnexp checkpoint; no optimizer is attached."""
    checkpoint = read_checkpoint(path)
    task_class = rnnexp_class(checkpoint["rnnexp"]["task"], path)
    net_class = rnnexp_class(checkpoint["rnnexp"].get("net_class", "rnnexp.network.RecurrentNet"), path)
    net = net_class.from_description(checkpoint["rnnexp"]["net"])
    task = task_class(net=net, **checkpoint.get("hyper_parameters", {}))
    task.load_state_dict(checkpoint["state_dict"])
    return task.to(map_location).eval()
