"""The Elman cell, written from its equation: the reference ``nn.RNN`` must equal (tests/test_cells.py)."""

from __future__ import annotations

import math

import torch
from torch import nn

NONLINEARITIES = {"tanh": torch.tanh, "relu": torch.relu}


class ReferenceRNNCell(nn.Module):
    """``h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)`` (or ReLU), Elman (1990), "Finding structure in
    time", Cognitive Science 14(2). Shapes: ``x_t (batch, input_size)``, ``h (batch, hidden_size)``.

    Parameters are named and initialised as in ``torch.nn.RNNCell`` (uniform in ``±1/sqrt(hidden_size)``),
    so a fused ``nn.RNN``'s weights copy over one to one. ``sequence`` is the same equation with the input
    projection of every step done as one matrix product (the step loop then only adds ``W_hh h``).
    """

    def __init__(self, input_size: int, hidden_size: int, nonlinearity: str = "tanh"):
        super().__init__()
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(
                f"nonlinearity={nonlinearity!r} is unknown; choose one of {list(NONLINEARITIES)}"
            )
        self.hidden_size = hidden_size
        self.activation = NONLINEARITIES[nonlinearity]
        self.weight_ih = nn.Parameter(torch.empty(hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(hidden_size))
        self.bias_hh = nn.Parameter(torch.empty(hidden_size))
        bound = 1.0 / math.sqrt(hidden_size)
        for weight in self.parameters():
            nn.init.uniform_(weight, -bound, bound)

    def forward(self, x_t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return self.activation(x_t @ self.weight_ih.T + self.bias_ih + h @ self.weight_hh.T + self.bias_hh)

    def sequence(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x (batch, time, input_size)`` → outputs ``(batch, time, hidden)`` and the last state."""
        projected = torch.addmm(
            self.bias_ih + self.bias_hh, x.reshape(-1, x.shape[-1]), self.weight_ih.T
        ).view(x.shape[0], x.shape[1], -1)
        outputs = []
        for step in projected.unbind(1):  # unbind: one gradient buffer, not one per step
            h = self.activation(torch.addmm(step, h, self.weight_hh.T))
            outputs.append(h)
        return torch.stack(outputs, dim=1), h


CELL = ReferenceRNNCell
