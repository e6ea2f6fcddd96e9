"""IndRNN (Li et al., 2018): each hidden unit recurs only on itself, with a bounded recurrent weight."""

from __future__ import annotations

import math

import torch
from torch import nn

NONLINEARITIES = {"relu": torch.relu, "tanh": torch.tanh}


class IndRNNCell(nn.Module):
    """Li, Li, Cook, Zhu & Gao (2018), "Independently recurrent neural network (IndRNN): building a longer and
    deeper RNN", CVPR, equation 2: ``h_t = σ(W x_t + u ⊙ h_{t-1} + b)`` with ``σ`` = ReLU by default.

    The recurrent weight ``u (hidden_size,)`` is element-wise. Its published constraint (section 3.1): for
    long-term memory without explosion ``|u_n| ≤ γ^{1/T}`` (γ the largest gradient growth allowed over T
    steps); it is applied here as ``u`` clamped to ``[−recurrent_max, recurrent_max]`` in every step (the
    paper clips after each update; a clamp in the forward pass computes the same values and stops the
    gradient of clipped units). ``u`` starts uniform in ``[0, recurrent_max]`` as in the paper's
    experiments. State: ``h (batch, hidden_size)``.
    """

    def __init__(
        self, input_size: int, hidden_size: int, nonlinearity: str = "relu", recurrent_max: float = 1.0
    ):
        super().__init__()
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(
                f"nonlinearity={nonlinearity!r} is unknown; choose one of {list(NONLINEARITIES)}"
            )
        if (
            isinstance(recurrent_max, bool)
            or not isinstance(recurrent_max, int | float)
            or recurrent_max <= 0
        ):
            raise ValueError(f"recurrent_max={recurrent_max!r} must be a positive number")
        self.hidden_size, self.recurrent_max = hidden_size, float(recurrent_max)
        self.activation = NONLINEARITIES[nonlinearity]
        self.input_weight = nn.Linear(input_size, hidden_size)
        self.recurrent_weight = nn.Parameter(torch.empty(hidden_size).uniform_(0.0, self.recurrent_max))
        bound = 1.0 / math.sqrt(input_size)
        nn.init.uniform_(self.input_weight.weight, -bound, bound)
        nn.init.zeros_(self.input_weight.bias)

    def bounded_recurrent_weight(self) -> torch.Tensor:
        return self.recurrent_weight.clamp(-self.recurrent_max, self.recurrent_max)

    def forward(self, x_t: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return self.activation(self.input_weight(x_t) + self.bounded_recurrent_weight() * h)

    def sequence(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The same equation over ``x (batch, time, input_size)`` with the input projection of every step in
        one matrix product; outputs ``(batch, time, hidden)`` and the last state."""
        projected, u = self.input_weight(x), self.bounded_recurrent_weight()
        outputs = []
        for step in projected.unbind(1):  # unbind: one gradient buffer, not one per step
            h = self.activation(step + u * h)
            outputs.append(h)
        return torch.stack(outputs, dim=1), h


CELL = IndRNNCell
