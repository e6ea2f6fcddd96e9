"""Any recurrent cell as a multi-layer recurrent layer with ``nn.RNN(batch_first=True)``'s interface.

The cell owns one step (``forward(x_t, state) -> state``, see ``rnnexp.models.cell_contract``); this layer owns
the loop over time, stacking, both directions, dropout between layers, padding (a ``PackedSequence``: each
row's state stops at its own length, the backward direction starts at each row's own end) and the layout of
the state: ``(layers * directions, batch, size)`` per part, a tensor for a tensor state and a tuple for a tuple
state, index ``layer * directions + direction`` as in torch. So every task that works with ``nn.GRU`` works
with any cell.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

State = torch.Tensor | tuple[torch.Tensor, ...]


def state_parts(state: State) -> tuple[torch.Tensor, ...]:
    return state if isinstance(state, tuple) else (state,)


def initial_state(cell: nn.Module, batch: int, hidden_size: int, like: torch.Tensor) -> State:
    """The cell's ``initial_state(batch, device, dtype)`` when it has one, else zeros ``(batch, hidden)``."""
    if hasattr(cell, "initial_state"):
        return cell.initial_state(batch, like.device, like.dtype)
    return like.new_zeros(batch, hidden_size)


def reverse_rows(x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """``x (batch, time, ...)`` with each row's first ``lengths[row]`` steps reversed (padding stays put);
    its own inverse."""
    if lengths is None:
        return x.flip(1)
    steps = torch.arange(x.shape[1], device=x.device).unsqueeze(0)  # (1, time)
    index = torch.where(steps < lengths[:, None], lengths[:, None] - 1 - steps, steps)  # (batch, time)
    return x.gather(1, index.view(*index.shape, *([1] * (x.dim() - 2))).expand_as(x))


def step_loop(
    cell: nn.Module, x: torch.Tensor, state: State, lengths: torch.Tensor | None
) -> tuple[torch.Tensor, State]:
    """The cell stepped over ``x (batch, time, input)``: outputs ``(batch, time, hidden)`` (the first part of
    each state) and the last state; with ``lengths``, a row's state stops changing after its last step."""
    outputs = []
    active = None if lengths is None else torch.arange(x.shape[1], device=x.device)[None] < lengths[:, None]
    full = x.shape[1] if lengths is None else int(lengths.min())  # steps where every row is real
    # unbind, not x[:, t]: the backward pass of T slices would write T full-size gradient buffers
    for t, x_t in enumerate(x.unbind(1)):
        new = cell(x_t, state)
        if t >= full:
            keep = active[:, t, None]
            if isinstance(new, tuple):
                new = tuple(torch.where(keep, n, s) for n, s in zip(new, state, strict=True))
            else:
                new = torch.where(keep, new, state)
        state = new
        outputs.append(state[0] if isinstance(state, tuple) else state)
    return torch.stack(outputs, dim=1), state


def run_cell(
    cell: nn.Module, x: torch.Tensor, state: State, lengths: torch.Tensor | None
) -> tuple[torch.Tensor, State]:
    """The cell's whole-sequence method when it has one and can serve this batch, else the step loop.

    ``sequence`` computes every step of every row, so a padded batch can use it only when the state is one
    tensor (each row's last state is then its output at its own last step)."""
    padded = lengths is not None and bool((lengths < x.shape[1]).any())
    if hasattr(cell, "sequence") and not (padded and isinstance(state, tuple)):
        outputs, last = cell.sequence(x, state)
        if padded:
            last = outputs[torch.arange(x.shape[0], device=x.device), lengths - 1]
        return outputs, last
    return step_loop(cell, x, state, lengths)


class CellLayer(nn.Module):
    """``CellLayer(make_cell, input_size, hidden_size, num_layers, bidirectional, dropout)`` is called like
    ``nn.RNN(..., batch_first=True)``: ``(input, hx=None) -> (output, h_n)``.

    ``input``: ``(batch, time, input_size)`` or a ``PackedSequence``; ``output`` the same kind,
    ``(batch, time, hidden * directions)``; ``hx``/``h_n``: ``(layers * directions, batch, size)``, or a tuple
    of such for a cell whose state is a tuple. ``make_cell(input_size)`` builds one cell.
    """

    def __init__(
        self,
        make_cell: Callable[[int], nn.Module],
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bidirectional, self.dropout = bidirectional, dropout
        self.directions = 2 if bidirectional else 1
        self.cells = nn.ModuleList(
            make_cell(input_size if layer == 0 else hidden_size * self.directions)
            for layer in range(num_layers)
            for _ in range(self.directions)
        )

    def initial_hidden(self, batch: int, like: torch.Tensor) -> State:
        """Every cell's initial state in the layer's layout (on ``like``'s device and dtype)."""
        return self.merge([initial_state(cell, batch, self.hidden_size, like) for cell in self.cells])

    @staticmethod
    def merge(states: list[State]) -> State:
        """Per-cell states → ``(layers * directions, batch, size)`` per part."""
        if isinstance(states[0], tuple):
            return tuple(torch.stack(parts) for parts in zip(*states, strict=True))
        return torch.stack(states)

    @staticmethod
    def split(hidden: State, index: int) -> State:
        """The state of cell ``index`` from the layer's layout."""
        return tuple(part[index] for part in hidden) if isinstance(hidden, tuple) else hidden[index]

    def forward(
        self, input: torch.Tensor | PackedSequence, hx: State | None = None
    ) -> tuple[torch.Tensor | PackedSequence, State]:
        packed = isinstance(input, PackedSequence)
        if packed:  # rows in the caller's order, as hx and h_n are
            x, lengths = pad_packed_sequence(input, batch_first=True)
            lengths = lengths.to(x.device)
        else:
            x, lengths = input, None
        hidden = self.initial_hidden(x.shape[0], x) if hx is None else hx
        finals = []
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(self.directions):
                index = layer * self.directions + direction
                cell, state = self.cells[index], self.split(hidden, index)
                if direction == 0:
                    out, final = run_cell(cell, x, state, lengths)
                else:
                    out, final = run_cell(cell, reverse_rows(x, lengths), state, lengths)
                    out = reverse_rows(out, lengths)
                outputs.append(out)
                finals.append(final)
            x = torch.cat(outputs, dim=-1) if self.directions == 2 else outputs[0]
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, training=True)
        output: torch.Tensor | PackedSequence = x
        if packed:
            output = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        return output, self.merge(finals)

    def extra_repr(self) -> str:
        return (
            f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
            f"bidirectional={self.bidirectional}, dropout={self.dropout}"
        )
