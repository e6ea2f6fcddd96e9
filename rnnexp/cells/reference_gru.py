"""The GRU cell, written from its equations: the reference ``nn.GRU`` must equal (tests/test_cells.py)."""

from __future__ import annotations

import math

import torch
from torch import nn


class ReferenceGRUCell(nn.Module):
    """Cho et al. (2014), "Learning phrase representations using RNN encoder-decoder", as ``torch.nn.GRU``
    computes it (gate order r, z, n; the reset gate multiplies ``W_hn h + b_hn``):

    ``r = σ(W_ir x + b_ir + W_hr h + b_hr)``, ``z = σ(W_iz x + b_iz + W_hz h + b_hz)``,
    ``n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))``, ``h' = (1 − z) ⊙ n + z ⊙ h``.

    Shapes: ``x_t (batch, input_size)``, ``h (batch, hidden_size)``. Parameters as in ``torch.nn.GRUCell``.
    """

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.hidden_size = hidden_size
        self.weight_ih = nn.Parameter(torch.empty(3 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(3 * hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(3 * hidden_size))
        self.bias_hh = nn.Parameter(torch.empty(3 * hidden_size))
        bound = 1.0 / math.sqrt(hidden_size)
        for weight in self.parameters():
            nn.init.uniform_(weight, -bound, bound)

    @staticmethod
    def update(from_input: torch.Tensor, from_state: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """``W_i* x + b_i*`` and ``W_h* h + b_h*`` (each ``(batch, 3 hidden)``) and ``h`` → the new ``h``."""
        x_r, x_z, x_n = from_input.chunk(3, dim=-1)
        h_r, h_z, h_n = from_state.chunk(3, dim=-1)
        r = torch.sigmoid(x_r + h_r)
        z = torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + r * h_n)
        return (1 - z) * n + z * h

    def forward(self, x_t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return self.update(x_t @ self.weight_ih.T + self.bias_ih, h @ self.weight_hh.T + self.bias_hh, h)

    def sequence(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The same equations over ``x (batch, time, input_size)``, every step's input projection in one
        matrix product; outputs ``(batch, time, hidden)`` and the last state."""
        projected = torch.addmm(self.bias_ih, x.reshape(-1, x.shape[-1]), self.weight_ih.T).view(
            x.shape[0], x.shape[1], -1
        )
        outputs = []
        for step in projected.unbind(1):  # unbind: one gradient buffer, not one per step
            h = self.update(step, torch.addmm(self.bias_hh, h, self.weight_hh.T), h)
            outputs.append(h)
        return torch.stack(outputs, dim=1), h


CELL = ReferenceGRUCell
