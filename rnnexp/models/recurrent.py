"""The recurrent network: torch's fused nn.RNN / nn.LSTM / nn.GRU, or any cell through ``CellLayer``, plus a
linear readout head."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnexp.errors import ConfigError
from rnnexp.models.cell_contract import check_cell, import_cell, known_cells
from rnnexp.models.cell_layer import CellLayer, initial_state

CELLS: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
NONLINEARITIES = ("tanh", "relu")
POOLINGS = ("last", "mean")

Hidden = torch.Tensor | tuple[torch.Tensor, ...]


@dataclass(frozen=True)
class RecurrentSpec:
    """What the ``model`` config group chooses; validated on construction, before any data is read.

    Input and output sizes are not here: they come from the datamodule. ``cell`` is a fused cell
    (``rnn``/``lstm``/``gru``), a built-in cell (``rnnexp.cells``) or a dotted class path; a non-fused cell is
    built as ``Cell(input_size, hidden_size, **cell_options)`` and checked against the contract here
    (``rnnexp.models.cell_contract``).
    """

    cell: str = "lstm"
    hidden_size: int = 128
    num_layers: int = 1
    bidirectional: bool = False
    dropout: float = 0.0
    nonlinearity: str | None = None
    pooling: str = "last"
    cell_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.cell_options, DictConfig):
            object.__setattr__(self, "cell_options", OmegaConf.to_container(self.cell_options, resolve=True))
        if self.cell_options is None:
            object.__setattr__(self, "cell_options", {})
        if not isinstance(self.cell, str) or (self.cell not in known_cells() and "." not in self.cell):
            raise ConfigError(
                f"model.cell={self.cell!r} is not a known cell; choose one of {known_cells()} or give a "
                "dotted class path (model.cell=mypackage.cells.MyCell)."
            )
        if not isinstance(self.cell_options, dict) or not all(isinstance(k, str) for k in self.cell_options):
            raise ConfigError(
                f"model.cell_options={self.cell_options!r} must be a mapping of keyword arguments for the cell."
            )
        if self.cell in CELLS and self.cell_options:
            raise ConfigError(
                f"model.cell_options={self.cell_options!r} is set but model.cell={self.cell!r} is torch's fused "
                "module, which takes no cell options; remove them (model.cell_options={})."
            )
        for key in ("hidden_size", "num_layers"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"model.{key}={value!r} must be a positive integer (e.g. model.{key}=2).")
        if not isinstance(self.bidirectional, bool):
            raise ConfigError(f"model.bidirectional={self.bidirectional!r} must be true or false.")
        if not isinstance(self.dropout, int | float) or not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model.dropout={self.dropout!r} must be in [0, 1) (e.g. model.dropout=0.2).")
        if self.nonlinearity is not None:
            if self.cell != "rnn":
                raise ConfigError(
                    f"model.nonlinearity={self.nonlinearity!r} is set but model.cell={self.cell!r} has no "
                    "choice of nonlinearity; it applies to model.cell=rnn only (use model=rnn, or remove it)."
                )
            if self.nonlinearity not in NONLINEARITIES:
                raise ConfigError(
                    f"model.nonlinearity={self.nonlinearity!r} is unknown; choose one of {list(NONLINEARITIES)}."
                )
        if self.pooling not in POOLINGS:
            raise ConfigError(f"model.pooling={self.pooling!r} is unknown; choose one of {list(POOLINGS)}.")
        if self.cell not in CELLS:
            check_cell(self.cell, self.hidden_size, self.cell_options)

    @classmethod
    def coerce(cls, spec: RecurrentSpec | Mapping[str, Any]) -> RecurrentSpec:
        """Accept a spec or its dict form (how it is stored in checkpoints)."""
        return spec if isinstance(spec, cls) else cls(**dict(spec))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_recurrent_layer(spec: RecurrentSpec, input_size: int) -> nn.Module:
    """The multi-layer recurrent module that ``spec`` describes, called like ``nn.RNN(batch_first=True)``:
    torch's fused module for ``rnn``/``lstm``/``gru``, else a ``CellLayer`` over the named cell."""
    if spec.cell not in CELLS:
        cls = import_cell(spec.cell)
        return CellLayer(
            lambda size: cls(size, spec.hidden_size, **spec.cell_options),
            input_size,
            spec.hidden_size,
            spec.num_layers,
            spec.bidirectional,
            spec.dropout if spec.num_layers > 1 else 0.0,
        )
    kwargs: dict[str, Any] = {
        "input_size": input_size,
        "hidden_size": spec.hidden_size,
        "num_layers": spec.num_layers,
        "bidirectional": spec.bidirectional,
        # torch applies dropout between stacked layers only; with one layer it would only warn.
        "dropout": spec.dropout if spec.num_layers > 1 else 0.0,
        "batch_first": True,
    }
    if spec.cell == "rnn":
        kwargs["nonlinearity"] = spec.nonlinearity or "tanh"
    return CELLS[spec.cell](**kwargs)


def state_sizes(spec: RecurrentSpec) -> tuple[int, ...]:
    """The width of each part of the state ``spec``'s cell carries: ``(hidden,)``, ``(hidden, hidden)`` for an
    LSTM's ``(h, c)``, or what a cell's ``initial_state`` makes."""
    if spec.cell in CELLS:
        return (spec.hidden_size,) * (2 if spec.cell == "lstm" else 1)
    cell = import_cell(spec.cell)(1, spec.hidden_size, **spec.cell_options)
    state = initial_state(cell, 1, spec.hidden_size, torch.zeros(1))
    return tuple(part.shape[-1] for part in (state if isinstance(state, tuple) else (state,)))


def final_hidden(hidden: Hidden) -> torch.Tensor:
    """h_n of an RNN/GRU, of an LSTM's (h_n, c_n) or of a cell's tuple state (h first): shape
    (layers * directions, batch, hidden)."""
    return hidden[0] if isinstance(hidden, tuple) else hidden


def repackage_hidden(hidden: Hidden) -> Hidden:
    """The same values cut from their graph: the next batch starts from them, but backpropagation stops at
    the batch boundary (truncated BPTT)."""
    if isinstance(hidden, tuple):
        return tuple(h.detach() for h in hidden)
    return hidden.detach()


class RecurrentNet(nn.Module):
    """Sequence in, prediction out: ``(batch, time, input_size)`` → ``(batch, output_size)`` or, when
    ``per_step`` is true (many-to-many), ``(batch, time, output_size)``.

    Many-to-one readout uses ``spec.pooling``: ``last`` is the final hidden state of the top layer (both
    directions when bidirectional, so the backward direction contributes its state after reading the whole
    sequence), ``mean`` averages the top layer's outputs over time.

    Variable-length batches: ``lengths`` ``(batch,)`` gives each right-padded row's number of real steps. The
    recurrent layer then reads a packed sequence, so padding never reaches the state: ``last`` is each
    sequence's own last state (the backward direction starts at each sequence's own end), ``mean`` averages
    real steps only, and a prediction equals that of the sequence alone. Per-step outputs at padded positions
    are the head applied to zeros; the task must mask them out of its loss and metrics.
    """

    def __init__(self, spec: RecurrentSpec, input_size: int, output_size: int, per_step: bool = False):
        super().__init__()
        self.spec = spec
        self.input_size = input_size
        self.output_size = output_size
        self.per_step = per_step
        self.rnn = build_recurrent_layer(spec, input_size)
        directions = 2 if spec.bidirectional else 1
        self.head = nn.Linear(spec.hidden_size * directions, output_size)

    def forward(
        self, x: torch.Tensor, hidden: Hidden | None = None, lengths: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.forward_with_state(x, hidden, lengths)[0]

    def forward_with_state(
        self, x: torch.Tensor, hidden: Hidden | None = None, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, Hidden]:
        """The prediction and the final hidden state, for a task that carries it into the next batch.

        ``lengths`` ``(batch,)``: real steps per row of a right-padded ``x`` (see the class docstring).
        """
        if lengths is None:
            outputs, hidden = self.rnn(x, hidden)  # outputs: (batch, time, hidden * directions)
        else:
            outputs, hidden = self.packed_outputs(x, hidden, lengths)
        if self.per_step:
            return self.head(outputs), hidden
        if self.spec.pooling == "mean":
            if lengths is None:
                return self.head(outputs.mean(dim=1)), hidden
            # Padded outputs are zeros (pad_packed_sequence), so the sum runs over real steps only.
            counts = lengths.to(device=outputs.device, dtype=outputs.dtype).unsqueeze(1)
            return self.head(outputs.sum(dim=1) / counts), hidden
        h_n = final_hidden(hidden)
        directions = 2 if self.spec.bidirectional else 1
        top = h_n[-directions:]  # (directions, batch, hidden): the top layer, each direction's last state
        return self.head(top.transpose(0, 1).reshape(x.shape[0], -1)), hidden

    def packed_outputs(
        self, x: torch.Tensor, hidden: Hidden | None, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, Hidden]:
        """Run the recurrent layer over a packed batch; outputs ``(batch, time, hidden * directions)`` with
        zeros at padded positions, the final state of every sequence at its own length."""
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        packed_outputs, hidden = self.rnn(packed, hidden)  # both in the batch's original order
        outputs, _ = pad_packed_sequence(packed_outputs, batch_first=True, total_length=x.shape[1])
        return outputs, hidden

    def describe(self) -> dict[str, Any]:
        """Everything needed to rebuild this network (stored in checkpoints)."""
        return {
            "spec": self.spec.as_dict(),
            "input_size": self.input_size,
            "output_size": self.output_size,
            "per_step": self.per_step,
        }

    @classmethod
    def from_description(cls, description: Mapping[str, Any]) -> RecurrentNet:
        return cls(
            RecurrentSpec.coerce(description["spec"]),
            input_size=description["input_size"],
            output_size=description["output_size"],
            per_step=description["per_step"],
        )
