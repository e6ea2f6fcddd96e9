"""Load a trained task back from a checkpoint, rebuilding its network from the spec stored inside."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import torch

from rnnexp.errors import DataError
from rnnexp.resume import flatten
from rnnexp.tasks.base import SequenceTask, qualified_name


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


def describe_value(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def network_differences(stored: dict[str, Any], configured: dict[str, Any]) -> list[str]:
    """Readable ``key: checkpoint vs config`` lines for two network descriptions (``net.describe()``)."""
    old, new = flatten(stored), flatten(configured)
    lines = []
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            label = (
                "model." + key.removeprefix("spec.") if key.startswith("spec.") else f"the network's {key}"
            )
            lines.append(
                f"{label} is {describe_value(old.get(key, '<unset>'))} in the checkpoint but "
                f"{describe_value(new.get(key, '<unset>'))} in the config"
            )
    return lines


def check_fits(path: str | Path, task: SequenceTask) -> dict[str, Any]:
    """Refuse, before training starts, a checkpoint whose task or network differs from the configured one;
    the message names the file and every differing key. Returns the checkpoint."""
    checkpoint = read_checkpoint(path)
    stored = checkpoint["rnnexp"]
    problems = []
    if stored.get("task") != qualified_name(type(task)):
        problems.append(
            f"the task is {stored.get('task')} in the checkpoint but {qualified_name(type(task))} in the config"
        )
    problems += network_differences(stored.get("net", {}), task.net.describe())
    if not problems:
        expected = {key: tuple(value.shape) for key, value in task.state_dict().items()}
        found = {key: tuple(value.shape) for key, value in checkpoint["state_dict"].items()}
        problems += [
            f"weight {key} has shape {found.get(key, 'none')} in the checkpoint but {expected.get(key, 'none')} "
            "in the config"
            for key in sorted(set(expected) | set(found))
            if expected.get(key) != found.get(key)
        ][:5]
    if problems:
        raise DataError(
            f"Checkpoint {path} does not fit the configured model: {'; '.join(problems)}. Resume with the "
            "configuration it was trained with (config.yaml in its run directory), or leave ckpt_path out to "
            "start a new run."
        )
    return checkpoint


def load_task(path: str | Path, map_location: str | torch.device = "cpu") -> SequenceTask:
    """A ready-to-use task (eval mode) from an rnnexp checkpoint; no optimizer is attached."""
    checkpoint = read_checkpoint(path)
    task_class = rnnexp_class(checkpoint["rnnexp"]["task"], path)
    net_class = rnnexp_class(checkpoint["rnnexp"].get("net_class", "rnnexp.network.RecurrentNet"), path)
    net = net_class.from_description(checkpoint["rnnexp"]["net"])
    task = task_class(net=net, **checkpoint.get("hyper_parameters", {}))
    task.load_state_dict(checkpoint["state_dict"])
    return task.to(map_location).eval()
