"""Forecasts that learn nothing, scored on the same windows as the model so a user sees whether it beats
them: persistence (the last observed value, repeated) and seasonal-naive (the value one season earlier)."""

from __future__ import annotations

import torch


def persistence_forecast(context: torch.Tensor, horizon: int) -> torch.Tensor:
    """The naive forecast: the last observed value repeated, ``(batch, horizon, features)``."""
    return context[:, -1:].expand(-1, horizon, -1).contiguous()


def seasonal_naive_forecast(context: torch.Tensor, horizon: int, season: int) -> torch.Tensor:
    """Step ``h`` (1-based) after a context ``(batch, seq_len, features)`` ending at time ``t`` is forecast as
    the value at ``t + h - season * ceil(h / season)``: the context's last season, repeated.
    ``(batch, horizon, features)``; needs ``season <= seq_len``."""
    seq_len = context.shape[1]
    if not 1 <= season <= seq_len:
        raise ValueError(f"season {season} must be in [1, seq_len={seq_len}]")
    index = seq_len - season + torch.arange(horizon, device=context.device) % season
    return context[:, index]
