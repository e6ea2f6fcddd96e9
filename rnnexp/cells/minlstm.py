"""minLSTM (Feng et al., 2024): an LSTM whose gates read the input only, trained by a parallel scan."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from rnnexp.models.log_scan import g, log_g, log_space_scan


class MinLSTM(nn.Module):
    """Feng, Tung, Ahmed, Bengio & Hajimirsadeghi (2024), "Were RNNs all we needed?", arXiv 2410.01201,
    the log-space minLSTM (time-independent output: no output gate, no separate cell state):

    ``f_t = σ(W_f x_t + b_f)``, ``i_t = σ(W_i x_t + b_i)``, ``h̃_t = g(W_h x_t + b_h)``,
    ``f'_t = f_t / (f_t + i_t)``, ``i'_t = i_t / (f_t + i_t)``, ``h_t = f'_t ⊙ h_{t-1} + i'_t ⊙ h̃_t``.

    In logs, with ``d = softplus(−k_f) − softplus(−k_i)``: ``log f' = −softplus(d)``, ``log i' =
    −softplus(−d)``; the step uses the same normalised gates (``f' = σ(−d)``, ``i' = σ(d)``), so stepping
    and the scan compute one function. State: ``h (batch, hidden_size)``.
    """

    def __init__(self, input_size: int, hidden_size: int, scan_chunk: int = 64):
        super().__init__()
        if isinstance(scan_chunk, bool) or not isinstance(scan_chunk, int) or scan_chunk <= 0:
            raise ValueError(f"scan_chunk={scan_chunk!r} must be a positive integer")
        self.hidden_size, self.scan_chunk = hidden_size, scan_chunk
        self.linear = nn.Linear(input_size, 3 * hidden_size)  # [W_f; W_i; W_h]

    def gate_difference(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``d`` and the candidate's pre-activation, for ``x (..., input_size)``."""
        k_f, k_i, candidate = self.linear(x).chunk(3, dim=-1)
        return F.softplus(-k_f) - F.softplus(-k_i), candidate

    def forward(self, x_t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        d, candidate = self.gate_difference(x_t)
        return torch.sigmoid(-d) * h + torch.sigmoid(d) * g(candidate)

    def sequence(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x (batch, time, input_size)`` → all states ``(batch, time, hidden)`` and the last one."""
        d, candidate = self.gate_difference(x)
        states = log_space_scan(-F.softplus(d), -F.softplus(-d) + log_g(candidate), h, self.scan_chunk)
        return states, states[:, -1]


CELL = MinLSTM
