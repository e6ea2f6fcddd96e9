"""The log-space parallel scan of minGRU/minLSTM (Feng et al., 2024, "Were RNNs all we needed?", arXiv
2410.01201, section 3 and appendix B): every ``h_t = a_t ⊙ h_{t-1} + b_t`` of a sequence at once, for gates
``a_t`` in (0, 1) and positive ``b_t`` given by their logarithms.

``h_t = A_t h_0 + A_t Σ_{k≤t} b_k / A_k`` with ``A_t = Π_{j≤t} a_j``: in logs, ``log A`` is a cumulative sum
and the sum over k a ``logcumsumexp``. Two things the paper's listing leaves to the reader:

- the initial state may be negative (a carried or learned state), so it is not taken to log space: its term
  ``A_t h_0`` is added in linear space;
- ``log A_t`` grows like ``t``, and ``log A_t + logcumsumexp(log b − log A)`` cancels two large numbers: in
  float32 the error grows with the sequence (about ``|log A_t| · 6e-8``, relative). The scan therefore runs
  over chunks of ``chunk`` steps, each starting from the previous chunk's last state, which bounds the
  cancellation by the chunk's length at the cost of ``T / chunk`` sequential steps. Half-precision inputs
  (mixed-precision training) are scanned in float32.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def g(x: torch.Tensor) -> torch.Tensor:
    """The paper's positive activation for candidate states: ``x + 0.5`` for ``x ≥ 0``, else ``σ(x)``."""
    return torch.where(x >= 0, x + 0.5, torch.sigmoid(x))


def log_g(x: torch.Tensor) -> torch.Tensor:
    """``log g(x)``, computed without taking the log of a small sigmoid."""
    return torch.where(x >= 0, (F.relu(x) + 0.5).log(), -F.softplus(-x))


def log_space_scan(log_a: torch.Tensor, log_b: torch.Tensor, h0: torch.Tensor, chunk: int) -> torch.Tensor:
    """All states ``(batch, time, hidden)`` of ``h_t = exp(log_a_t) h_{t-1} + exp(log_b_t)`` from ``h0
    (batch, hidden)`` (any sign); ``log_a``, ``log_b`` are ``(batch, time, hidden)``."""
    dtype = torch.promote_types(log_a.dtype, h0.dtype)  # what stepping ``a * h + b`` would give
    if log_a.dtype in (
        torch.float16,
        torch.bfloat16,
    ):  # mixed precision: exp/log sums need float32's mantissa
        log_a, log_b, h0 = log_a.float(), log_b.float(), h0.float()
    outputs, h = [], h0
    for start in range(0, log_a.shape[1], chunk):
        log_prefix = log_a[:, start : start + chunk].cumsum(dim=1)  # log A_t within the chunk
        log_inputs = torch.logcumsumexp(log_b[:, start : start + chunk] - log_prefix, dim=1)
        states = torch.exp(log_prefix + log_inputs) + torch.exp(log_prefix) * h.unsqueeze(1)
        outputs.append(states)
        h = states[:, -1]
    return torch.cat(outputs, dim=1).to(dtype)
