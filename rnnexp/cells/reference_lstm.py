"""The LSTM cell, written from its equations: the reference ``nn.LSTM`` must equal (tests/test_cells.py)."""

from __future__ import annotations

import math

import torch
from torch import nn


class ReferenceLSTMCell(nn.Module):
    """Hochreiter & Schmidhuber (1997), "Long short-term memory", with the forget gate of Gers et al. (2000),
    as ``torch.nn.LSTM`` computes it (gate order i, f, g, o):

    ``i = σ(W_ii x + b_ii + W_hi h + b_hi)``, ``f = σ(W_if x + b_if + W_hf h + b_hf)``,
    ``g = tanh(W_ig x + b_ig + W_hg h + b_hg)``, ``o = σ(W_io x + b_io + W_ho h + b_ho)``,
    ``c' = f ⊙ c + i ⊙ g``, ``h' = o ⊙ tanh(c')``.

    The state is the pair ``(h, c)``, each ``(batch, hidden_size)``; ``h`` is the output. Parameters as in
    ``torch.nn.LSTMCell`` (``weight_ih (4 hidden, input)``, ...), so fused weights copy over one to one.
    """

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.hidden_size = hidden_size
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(4 * hidden_size))
        self.bias_hh = nn.Parameter(torch.empty(4 * hidden_size))
        bound = 1.0 / math.sqrt(hidden_size)
        for weight in self.parameters():
            nn.init.uniform_(weight, -bound, bound)

    def initial_state(
        self, batch_size: int, device: torch.device, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor]:
        zeros = torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)
        return zeros, zeros.clone()

    def gates(self, gates: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pre-activations ``(batch, 4 hidden)`` and the old cell state → the new ``(h, c)``."""
        i, f, g, o = gates.chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c

    def forward(
        self, x_t: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        h, c = state
        return self.gates(x_t @ self.weight_ih.T + self.bias_ih + h @ self.weight_hh.T + self.bias_hh, c)

    def sequence(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """The same equations over ``x (batch, time, input_size)``, every step's input projection in one
        matrix product; outputs ``(batch, time, hidden)`` and the last ``(h, c)``."""
        projected = torch.addmm(
            self.bias_ih + self.bias_hh, x.reshape(-1, x.shape[-1]), self.weight_ih.T
        ).view(x.shape[0], x.shape[1], -1)
        (h, c), outputs = state, []
        for step in projected.unbind(1):  # unbind: one gradient buffer, not one per step
            h, c = self.gates(torch.addmm(step, h, self.weight_hh.T), c)
            outputs.append(h)
        return torch.stack(outputs, dim=1), (h, c)


CELL = ReferenceLSTMCell
