"""A user's own time series (CSV or Parquet; one series or many): windows for forecasting, per-step
regression and next-step prediction, split by time with no leakage, scaled with train-only statistics.

Layout (``datamodule=series`` / ``datamodule=series_forecast``): value columns are ``target`` (one column or
a list) then ``features``. Each series is cut by time into train (first ``1 - val_fraction - test_fraction``
of its steps), val, then test; windows (every ``stride`` steps) are taken inside one part only, so no window
crosses a boundary and nothing of the val/test period reaches a training window. Scaling (``scale=standard``)
subtracts each column's mean and divides by its std over the train parts of all series only; the statistics
are the datamodule's ``state_dict`` (Lightning stores it in every checkpoint) and ``target_scale`` lets a
task report metrics in the data's own units.

Shapes, ``T`` target columns and ``F`` feature columns:

- ``forecast``: context ``(batch, seq_len, T)`` → the next ``horizon`` values ``(batch, horizon, T)``.
  With ``relative`` every value of a window is taken relative to the context's last value (after scaling;
  the "NLinear" normalisation of Zeng et al., 2023), so a trending series looks alike in every period. An
  error is unchanged by the shift, so every MSE/MAE (model and baselines, scaled and in data units) is the
  error of the level forecast. The encoder-decoder feeds its forecast back as input, so it forecasts every
  column it reads: features are refused; list several columns in ``target`` for a multivariate forecast.
- ``per_step``: features ``(batch, seq_len, F)`` → targets ``(batch, seq_len, T)`` at the same steps.
- ``next_step``: targets and features ``(batch, seq_len, T + F)`` → the targets one step later
  ``(batch, seq_len, T)``.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from rnnexp.config.values import require_bool, require_choice, require_int, require_number
from rnnexp.data.data_paths import resolve_data_path
from rnnexp.data.series_table import DUPLICATES, MISSING, UNSORTED, load_series_table
from rnnexp.data.series_windows import WindowDataset, window_starts
from rnnexp.data.tensor_datamodule import TensorDataModule
from rnnexp.errors import ConfigError, DataError

log = logging.getLogger(__name__)

TASKS = ("per_step", "next_step", "forecast")
SPLITS = ("train", "val", "test")
SCALES = ("standard", "none")


def part_bounds(steps: int, val_fraction: float, test_fraction: float) -> tuple[int, int]:
    """``(train_end, val_end)``: a series of ``steps`` rows is train ``[0, a)``, val ``[a, b)``, test ``[b, steps)``."""
    val_end = steps - round(steps * test_fraction)
    return val_end - round(steps * val_fraction), val_end


def seasonal_check(season: int | None, seq_len: int) -> None:
    if season is not None and season > seq_len:
        raise ConfigError(
            f"datamodule.season={season} is longer than the context datamodule.seq_len={seq_len}: the "
            "seasonal-naive forecast repeats the context's last season; raise seq_len or lower season."
        )


class TimeSeries(TensorDataModule):
    """Windows of a user's series table as tensors in memory (see the module docstring for shapes)."""

    def __init__(
        self,
        path: str,
        target: str | list[str],
        features: list[str] | None = None,
        time: str | None = None,
        series_id: str | None = None,
        task: str = "per_step",
        seq_len: int = 48,
        horizon: int = 12,
        stride: int = 1,
        season: int | None = None,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        scale: str = "standard",
        relative: bool = False,
        missing: str = "error",
        unsorted: str = "error",
        duplicates: str = "error",
        batch_size: int = 64,
    ):
        super().__init__(batch_size)
        require_choice("datamodule.task", task, TASKS)
        require_choice("datamodule.scale", scale, SCALES)
        require_bool("datamodule.relative", relative)
        if relative and task != "forecast":
            raise ConfigError(
                f"datamodule.relative=true applies to forecasting (datamodule=series_forecast); "
                f"datamodule.task={task} reads absolute values: set datamodule.relative=false."
            )
        require_choice("datamodule.missing", missing, MISSING)
        require_choice("datamodule.unsorted", unsorted, UNSORTED)
        require_choice("datamodule.duplicates", duplicates, DUPLICATES)
        for key, value in (
            ("seq_len", seq_len),
            ("horizon", horizon),
            ("stride", stride),
            ("batch_size", batch_size),
        ):
            require_int(f"datamodule.{key}", value, 1, 24)
        require_int("datamodule.season", season, 1, 12, allow=[None])
        for key, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
            require_number(f"datamodule.{key}", value, 0.15, low=0.0, high=1.0, low_open=True, high_open=True)
        if val_fraction + test_fraction >= 1.0:
            raise ConfigError(
                f"datamodule.val_fraction={val_fraction} + datamodule.test_fraction={test_fraction} leave no "
                "training period; their sum must be below 1."
            )
        targets = [target] if isinstance(target, str) else list(target or [])
        features = list(features or [])
        if not targets or not all(isinstance(t, str) and t for t in targets):
            raise ConfigError(f"datamodule.target={target!r} must name a column (or a list of columns).")
        if task == "forecast" and features:
            raise ConfigError(
                f"datamodule.features={features} cannot be read by datamodule.task=forecast: the encoder-decoder "
                "feeds its forecast back as its next input, so it forecasts every column it reads. List them "
                "in datamodule.target for a multivariate forecast, or use datamodule=series with "
                "datamodule.task=per_step or next_step to predict a target from features."
            )
        if task == "per_step" and not features:
            raise ConfigError(
                "datamodule.task=per_step predicts the target at every step from the features at that step, but "
                "datamodule.features is empty; name feature columns (e.g. datamodule.features=[temp,hour]) or "
                "use datamodule.task=next_step."
            )
        if task == "forecast":
            seasonal_check(season, seq_len)
        # Plain lists, not Hydra's ListConfig: checkpoints store these and are loaded weights-only.
        target = targets[0] if isinstance(target, str) else targets
        self.save_hyperparameters(logger=False)
        self.task = task
        self.target_columns, self.feature_columns = targets, features
        self.stats: dict[str, torch.Tensor] = {}  # scaling: "mean", "std" per column (float64), train only

    @property
    def input_size(self) -> int:
        t, f = len(self.target_columns), len(self.feature_columns)
        return {"forecast": t, "per_step": f, "next_step": t + f}[self.task]

    @property
    def output_size(self) -> int:
        return len(self.target_columns)

    per_step = True

    @property
    def horizon(self) -> int | None:
        return self.hparams.horizon if self.task == "forecast" else None

    @property
    def season(self) -> int | None:
        return self.hparams.season

    @property
    def targets_are_future_inputs(self) -> bool:
        return self.task == "next_step"

    target_description = "datamodule.task=next_step predicts each step's next target value"
    causal_alternative = ", or datamodule.task=per_step, whose targets are not inputs"
    forecast_config = "series_forecast"

    @property
    def window_size(self) -> int:
        hp = self.hparams
        return hp.seq_len + {"forecast": hp.horizon, "next_step": 1, "per_step": 0}[self.task]

    @property
    def target_scale(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """``(mean, std)`` ``(T,)`` float32 of the target columns: data units = scaled * std + mean."""
        if not self.stats:
            return None
        count = len(self.target_columns)
        return self.stats["mean"][:count].float(), self.stats["std"][:count].float()

    def load_parts(self) -> dict[str, list[torch.Tensor]]:
        """Each split's per-series parts ``(steps, columns)`` float64, unscaled, in time order."""
        hp = self.hparams
        columns = [*self.target_columns, *self.feature_columns]
        keys = ["datamodule.target"] * len(self.target_columns) + ["datamodule.features"] * len(
            self.feature_columns
        )
        table = load_series_table(
            resolve_data_path(hp.path, "datamodule.path"),
            columns,
            keys,
            hp.time,
            hp.series_id,
            hp.missing,
            hp.unsorted,
            hp.duplicates,
        )
        parts: dict[str, list[torch.Tensor]] = {name: [] for name in SPLITS}
        for series_id, values in zip(table.ids, table.values, strict=True):
            a, b = part_bounds(len(values), hp.val_fraction, hp.test_fraction)
            if a < self.window_size:
                raise DataError(
                    f"datamodule.path: series {series_id!r} of {hp.path} has {len(values)} steps, so its "
                    f"training period ({a} steps) is shorter than one window ({self.window_size} steps = "
                    "seq_len"
                    + (
                        " + horizon"
                        if self.task == "forecast"
                        else " + 1"
                        if self.task == "next_step"
                        else ""
                    )
                    + "); lower datamodule.seq_len, or give it more of the series (lower the val/test fractions)."
                )
            tensor = torch.from_numpy(
                np.array(values)
            )  # a writable copy: pandas may hand out read-only views
            for name, piece in zip(SPLITS, (tensor[:a], tensor[a:b], tensor[b:]), strict=True):
                parts[name].append(piece)
        return parts

    def fit_scaler(self, train_parts: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """Per-column mean and std over every training row of every series (a constant column keeps std 1)."""
        rows = torch.cat(train_parts)
        columns = rows.shape[1]
        if self.hparams.scale == "none":
            return {
                "mean": torch.zeros(columns, dtype=torch.float64),
                "std": torch.ones(columns, dtype=torch.float64),
            }
        mean, std = rows.mean(0), rows.std(0, correction=0)
        return {"mean": mean, "std": torch.where(std > 0, std, torch.ones_like(std))}

    def cut(self, windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Windows ``(batch, window_size, columns)`` → the task's ``(inputs, targets)``."""
        hp, t = self.hparams, len(self.target_columns)
        if self.task == "forecast":
            if hp.relative:  # each window relative to its context's last value (errors are shift-invariant)
                windows = windows - windows[:, hp.seq_len - 1 : hp.seq_len]
            return windows[:, : hp.seq_len], windows[:, hp.seq_len :]
        if self.task == "next_step":
            return windows[:, :-1], windows[:, 1:, :t]
        return windows[:, :, t:], windows[:, :, :t]

    def make_windows(self, parts: list[torch.Tensor]) -> WindowDataset:
        """A split's windows: its parts' rows scaled with ``self.stats`` (float32, one tensor) and the first
        row of every ``stride``-th window that fits inside one part."""
        mean, std = self.stats["mean"], self.stats["std"]
        rows = torch.cat([(p - mean) / std for p in parts]).float()
        starts = window_starts([p.shape[0] for p in parts], self.window_size, self.hparams.stride)
        return WindowDataset(rows, starts, self.window_size, self.cut)

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        parts = self.load_parts()
        self.stats = self.fit_scaler(parts["train"])
        for name in SPLITS:
            dataset = self.make_windows(parts[name])
            if len(dataset) == 0:
                longest = max(p.shape[0] for p in parts[name])
                raise DataError(
                    f"datamodule.path: the {name} period of {self.hparams.path} is at most {longest} steps per "
                    f"series, shorter than one window ({self.window_size} steps); raise datamodule."
                    f"{name}_fraction or lower datamodule.seq_len."
                )
            self.datasets[name] = dataset

    def state_dict(self) -> dict[str, Any]:
        """The scaling statistics, stored by Lightning in every checkpoint (plain tensors: weights-only safe)."""
        return {"columns": [*self.target_columns, *self.feature_columns], **self.stats}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """A checkpoint's statistics must be the ones this data gives: else the file changed since training."""
        stored = {k: state[k] for k in ("mean", "std") if k in state}
        if self.stats and stored:
            if state.get("columns") != [*self.target_columns, *self.feature_columns] or not all(
                torch.allclose(self.stats[k], stored[k].to(self.stats[k]), rtol=1e-9, atol=1e-12)
                for k in stored
            ):
                raise DataError(
                    f"The checkpoint was trained with scaling statistics {describe_stats(state)} but "
                    f"{self.hparams.path} now gives {describe_stats(self.state_dict())} (training period, "
                    "columns): the data changed since the checkpoint was written; resume with the same file."
                )
        elif stored:
            self.stats = {k: v.double() for k, v in stored.items()}


def describe_stats(state: dict[str, Any]) -> str:
    mean, std = state.get("mean"), state.get("std")
    cols = state.get("columns")
    if mean is None:
        return "(none)"
    return f"columns={cols} mean={np.round(mean.numpy(), 6).tolist()} std={np.round(std.numpy(), 6).tolist()}"
