"""The cell contract: what ``model.cell`` may name, how it is found, and the checks run when a run starts.

A cell is a ``torch.nn.Module`` class built as ``Cell(input_size, hidden_size, **model.cell_options)``:

- ``forward(x_t, state) -> state``: ``x_t (batch, input_size)``; the state is a tensor ``(batch, hidden_size)``
  or a tuple of tensors ``(batch, size_k)`` whose first element is the output ``h (batch, hidden_size)``;
- the initial state is zeros ``(batch, hidden_size)`` unless the cell defines ``initial_state(batch_size,
  device, dtype)`` (a cell with a tuple state must);
- optionally ``sequence(x, state) -> (outputs, last_state)`` over ``x (batch, time, input_size)``, outputs
  ``(batch, time, hidden_size)``: used for training when present, so it must agree with stepping.

``model.cell`` is one of torch's fused ``rnn``/``lstm``/``gru``, a built-in name (a module of ``rnnexp.cells``,
whose ``CELL`` is the class) or a dotted class path ``package.module.Class``. Every breach is refused with one
paragraph naming the part broken (``ConfigError``). A checkpoint stores the same string; loading one checks it
with ``check_checkpoint_cell`` first, which imports nothing.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import sys
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from rnnexp.cells import builtin_names
from rnnexp.errors import ConfigError, DataError

FUSED = ("rnn", "lstm", "gru")
PROBE_BATCH, PROBE_INPUT, PROBE_STEPS = 2, 3, 4


def known_cells() -> list[str]:
    return [*FUSED, *builtin_names()]


def class_path(cell: str) -> str:
    """Where ``model.cell`` names its class: a built-in name's module, or the dotted path itself."""
    return f"rnnexp.cells.{cell}.CELL" if cell in builtin_names() else cell


def import_cell(cell: str) -> type[nn.Module]:
    """The class ``model.cell`` names (not a fused one); refused in one paragraph when it cannot be had."""
    key = f"model.cell={cell!r}"
    module_name, _, attribute = class_path(cell).rpartition(".")
    if not module_name:
        raise ConfigError(
            f"{key} is not a known cell; choose one of {known_cells()} or give a dotted class path "
            "(model.cell=mypackage.cells.MyCell)."
        )
    try:
        module = importlib.import_module(module_name)
    except Exception as err:  # a missing module or one that fails while importing: both the user's to fix
        raise ConfigError(
            f"{key}: module {module_name!r} cannot be imported ({type(err).__name__}: {err}); put the package "
            "that defines the cell on PYTHONPATH, or choose one of " + str(known_cells()) + "."
        ) from None
    found = getattr(module, attribute, None)
    if not (isinstance(found, type) and issubclass(found, nn.Module)):
        what = "has no attribute" if found is None else "names something that is not a torch.nn.Module class:"
        raise ConfigError(
            f"{key}: module {module_name!r} {what} {attribute!r}; a cell is a torch.nn.Module subclass "
            "built as Cell(input_size, hidden_size, **model.cell_options)."
        )
    return found


def shape_of(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return str(tuple(value.shape))
    if isinstance(value, tuple):
        return "(" + ", ".join(shape_of(v) for v in value) + ")"
    return type(value).__name__


def check_state(key: str, what: str, state: Any, expected: Any, hidden_size: int) -> None:
    """A state is a tensor (batch, hidden) or a tuple of (batch, size) tensors led by h (batch, hidden), and
    keeps the structure of ``expected`` (the initial state) when one is given."""
    parts = state if isinstance(state, tuple) else (state,)
    good = (
        len(parts) > 0
        and all(isinstance(p, torch.Tensor) and p.dim() == 2 and p.shape[0] == PROBE_BATCH for p in parts)
        and parts[0].shape[1] == hidden_size
    )
    if good and expected is not None:
        good = shape_of(state) == shape_of(expected)
    if not good:
        wanted = shape_of(expected) if expected is not None else f"({PROBE_BATCH}, {hidden_size})"
        raise ConfigError(
            f"{key}: {what} is {shape_of(state)} for a batch of {PROBE_BATCH}, but a cell's state must be a "
            f"tensor (batch, hidden_size) or a tuple of (batch, size) tensors whose first is h (batch, "
            f"hidden_size), the same at every step: expected {wanted} (model.hidden_size={hidden_size})."
        )


def check_cell(cell: str, hidden_size: int, options: Mapping[str, Any]) -> None:
    """Build the cell once on a small probe batch and check every part of the contract (see the module
    docstring); the refusal names the part that is broken."""
    key = f"model.cell={cell!r}"
    cls = import_cell(cell)
    try:
        module = cls(PROBE_INPUT, hidden_size, **options)
    except Exception as err:
        raise ConfigError(
            f"{key}: building it as {cls.__name__}(input_size, hidden_size={hidden_size}, "
            f"**model.cell_options={dict(options)}) failed ({type(err).__name__}: {err}); a cell's constructor "
            "takes (input_size, hidden_size) and its options as keywords."
        ) from None
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(PROBE_BATCH, PROBE_STEPS, PROBE_INPUT, generator=generator)
    try:
        if hasattr(module, "initial_state"):
            start = module.initial_state(PROBE_BATCH, x.device, x.dtype)
            check_state(key, "initial_state(batch_size, device, dtype)", start, None, hidden_size)
        else:
            start = torch.zeros(PROBE_BATCH, hidden_size)
        state, outputs = start, []
        for t in range(PROBE_STEPS):
            state = module(x[:, t], state)
            check_state(key, "the state its forward(x_t, state) returns", state, start, hidden_size)
            outputs.append(state[0] if isinstance(state, tuple) else state)
        stepped = torch.stack(outputs, dim=1)
        if hasattr(module, "sequence"):
            result = module.sequence(x, start)
            if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], torch.Tensor)):
                raise ConfigError(f"{key}: sequence(x, state) must return (outputs, last_state).")
            if result[0].shape != stepped.shape:
                raise ConfigError(
                    f"{key}: sequence(x, state) returns outputs of shape {tuple(result[0].shape)} for x of shape "
                    f"{tuple(x.shape)}; expected {tuple(stepped.shape)} (batch, time, hidden_size)."
                )
            check_state(key, "the last state sequence(x, state) returns", result[1], start, hidden_size)
            if not torch.allclose(result[0], stepped, rtol=1e-4, atol=1e-5):
                gap = (result[0] - stepped).abs().max().item()
                raise ConfigError(
                    f"{key}: sequence(x, state) disagrees with stepping forward(x_t, state) (largest "
                    f"difference {gap:.3g} over {PROBE_STEPS} steps); the whole-sequence method must compute "
                    "the same states as the step, or be removed."
                )
    except ConfigError:
        raise
    except Exception as err:
        raise ConfigError(
            f"{key}: running it on a batch x_t of shape ({PROBE_BATCH}, {PROBE_INPUT}) failed "
            f"({type(err).__name__}: {err}); forward(x_t, state) takes x_t (batch, input_size) and the state "
            f"(a tensor (batch, hidden_size) unless the cell defines initial_state) and returns the new state."
        ) from None


def module_is_findable(module_name: str) -> bool:
    """Whether ``module_name`` exists on the Python path, found without importing it or its parents."""
    if module_name in sys.modules:
        return True
    locations = None
    parts = module_name.split(".")
    for depth in range(1, len(parts) + 1):
        name = ".".join(parts[:depth])
        spec = sys.modules[name].__spec__ if name in sys.modules else None
        if spec is None:
            spec = importlib.machinery.PathFinder.find_spec(name, locations)
        if spec is None:
            return False
        locations = spec.submodule_search_locations
        if locations is None and depth < len(parts):
            return False
    return True


def check_checkpoint_cell(cell: Any, path: Any) -> None:
    """Refuse, before anything is imported, a checkpoint whose ``model.cell`` is neither known nor a class
    path that this Python finds outside the standard library (a checkpoint is a file from anywhere: it must
    not make rnnexp import arbitrary modules)."""
    if cell in known_cells() or cell is None:
        return
    module_name = str(cell).rpartition(".")[0]
    top = module_name.split(".")[0]
    if not isinstance(cell, str) or not module_name or top.startswith("_"):
        reason = "which is neither a known cell nor a dotted class path"
    elif top in sys.stdlib_module_names or top in sys.builtin_module_names:
        reason = "a class of the standard library, which is never a recurrent cell"
    elif not module_is_findable(module_name):
        reason = f"whose module {module_name!r} is not on this Python path"
    else:
        return
    raise DataError(
        f"Checkpoint {path} was trained with model.cell={cell!r}, {reason}; it is refused without importing "
        "anything. Install or put on PYTHONPATH the package that defines the cell (the same code the run "
        f"was trained with), then load it again. Known cells: {known_cells()}."
    )
