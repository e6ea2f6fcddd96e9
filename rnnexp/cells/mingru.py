"""minGRU (Feng et al., 2024): a GRU whose gates read the input only, trained by a parallel scan."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from rnnexp.models.log_scan import g, log_g, log_space_scan


class MinGRU(nn.Module):
    """Feng, Tung, Ahmed, Bengio & Hajimirsadeghi (2024), "Were RNNs all we needed?", arXiv 2410.01201,
    the log-space minGRU (their algorithm with the activation ``g``):

    ``z_t = σ(W_z x_t + b_z)``, ``h̃_t = g(W_h x_t + b_h)``, ``h_t = (1 − z_t) ⊙ h_{t-1} + z_t ⊙ h̃_t``,
    ``g(v) = v + 0.5`` for ``v ≥ 0``, else ``σ(v)``.

    Neither gate reads ``h_{t-1}``, so the recurrence is linear in ``h`` and ``sequence`` computes every step
    at once (``rnnexp.models.log_scan``, chunks of ``scan_chunk`` steps); ``forward`` is one step, for
    decoding, generation and carried state. State: ``h (batch, hidden_size)``.
    """

    def __init__(self, input_size: int, hidden_size: int, scan_chunk: int = 64):
        super().__init__()
        if isinstance(scan_chunk, bool) or not isinstance(scan_chunk, int) or scan_chunk <= 0:
            raise ValueError(f"scan_chunk={scan_chunk!r} must be a positive integer")
        self.hidden_size, self.scan_chunk = hidden_size, scan_chunk
        self.linear = nn.Linear(input_size, 2 * hidden_size)  # [W_z; W_h]

    def forward(self, x_t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        k, candidate = self.linear(x_t).chunk(2, dim=-1)
        z = torch.sigmoid(k)
        return (1 - z) * h + z * g(candidate)

    def sequence(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x (batch, time, input_size)`` → all states ``(batch, time, hidden)`` and the last one."""
        k, candidate = self.linear(x).chunk(2, dim=-1)
        log_a = -F.softplus(k)  # log(1 - z)
        log_b = -F.softplus(-k) + log_g(candidate)  # log(z * h̃)
        states = log_space_scan(log_a, log_b, h, self.scan_chunk)
        return states, states[:, -1]


CELL = MinGRU
