"""Encoder-decoder forecasting: read a context window, predict the next ``horizon`` values, and compare with
the persistence forecast (repeat the last observed value) and, given a season, the seasonal-naive forecast
on the same windows; in the data's own units too when the datamodule scales its values."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from matplotlib.figure import Figure
from torch.nn import functional as F
from torchmetrics import MeanAbsoluteError, MeanSquaredError, Metric, MetricCollection, MinMetric

from rnnexp.errors import ConfigError
from rnnexp.models.recurrent import RecurrentSpec
from rnnexp.models.seq2seq import EncoderDecoder
from rnnexp.tasks.base import OptimizerFactory, SchedulerFactory, SequenceTask
from rnnexp.tasks.data_units import target_scale, to_data_units
from rnnexp.tasks.figures import publish_figure
from rnnexp.tasks.forecast_baselines import persistence_forecast, seasonal_naive_forecast
from rnnexp.tasks.step_metrics import accumulate


class StepwiseMSE(Metric):
    """Mean squared error at each forecast step over all windows and features: ``(horizon,)``."""

    def __init__(self, horizon: int):
        super().__init__()
        self.add_state("sum_squares", default=torch.zeros(horizon), dist_reduce_fx="sum")
        self.add_state("count", default=torch.zeros(()), dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, targets: torch.Tensor) -> None:
        self.sum_squares += (preds - targets).pow(2).sum(dim=(0, 2))
        self.count += preds.shape[0] * preds.shape[2]

    def compute(self) -> torch.Tensor:
        return self.sum_squares / self.count


class Forecaster(SequenceTask):
    """MSE over the forecast; per stage ``<stage>/mse`` and ``<stage>/mae``, for val/test also the persistence
    baseline ``<stage>/naive_mse``, and the best val MSE. With ``season`` (the datamodule's, e.g.
    ``datamodule.season=12``) also the seasonal-naive baseline ``<stage>/snaive_mse``. When the datamodule
    scales its values (``target_scale``), each of these is logged in the data's own units as well
    (``<stage>/mse_data``, ``mae_data``, ``naive_mse_data``, ``snaive_mse_data``).

    Teacher forcing (training only): at epoch e each decoder step reads the true previous value with
    probability ``teacher_forcing + (teacher_forcing_end - teacher_forcing) * min(e / teacher_forcing_epochs,
    1)`` (a linear schedule; equal ends give a fixed ratio), else its own prediction. Validation and test are
    always free-running. Each validation epoch draws context, truth, forecast and the teacher-forced
    prediction of a few windows; each test pass writes the MSE per forecast step, model and baseline, to
    ``horizon_mse.csv`` and a figure (data-unit and seasonal-naive columns when they apply).
    """

    # The encoder reads only the past (the context), so a bidirectional encoder is legal here; the
    # decoder is unidirectional whatever the model spec says.
    allows_bidirectional_model = True

    def __init__(
        self,
        net: EncoderDecoder,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        scheduler_monitor: str | None = None,
        log_figures: bool = True,
        teacher_forcing: float = 1.0,
        teacher_forcing_end: float = 0.0,
        teacher_forcing_epochs: int = 10,
        season: int | None = None,
    ):
        super().__init__(net, optimizer, scheduler, scheduler_monitor, log_figures)
        for key, value in (
            ("teacher_forcing", teacher_forcing),
            ("teacher_forcing_end", teacher_forcing_end),
        ):
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"task.{key}={value!r} is a probability; it must be in [0, 1].")
        if isinstance(teacher_forcing_epochs, bool) or not isinstance(teacher_forcing_epochs, int):
            raise ConfigError(f"task.teacher_forcing_epochs={teacher_forcing_epochs!r} must be an integer.")
        if teacher_forcing_epochs < 1:
            raise ConfigError(f"task.teacher_forcing_epochs={teacher_forcing_epochs} must be at least 1.")
        metrics = MetricCollection({"mse": MeanSquaredError(), "mae": MeanAbsoluteError()})
        self.train_metrics, self.val_metrics, self.test_metrics = (metrics.clone() for _ in range(3))
        if season is not None and (isinstance(season, bool) or not isinstance(season, int) or season < 1):
            raise ConfigError(f"task.season={season!r} must be a positive integer or null.")
        self.season = season
        self.val_naive_mse, self.test_naive_mse = MeanSquaredError(), MeanSquaredError()
        self.val_snaive_mse, self.test_snaive_mse = MeanSquaredError(), MeanSquaredError()
        self.train_metrics_data, self.val_metrics_data, self.test_metrics_data = (
            metrics.clone() for _ in range(3)
        )
        self.val_naive_mse_data, self.test_naive_mse_data = MeanSquaredError(), MeanSquaredError()
        self.val_snaive_mse_data, self.test_snaive_mse_data = MeanSquaredError(), MeanSquaredError()
        self.test_step_mse, self.test_step_naive_mse = StepwiseMSE(net.horizon), StepwiseMSE(net.horizon)
        self.test_step_snaive_mse = StepwiseMSE(net.horizon)
        self.test_step_mse_data = StepwiseMSE(net.horizon)
        self.test_step_naive_mse_data = StepwiseMSE(net.horizon)
        self.test_step_snaive_mse_data = StepwiseMSE(net.horizon)
        self.has_data_units = False
        self.val_mse_best = MinMetric()
        self.first_val_batch: tuple[torch.Tensor, ...] | None = None

    @classmethod
    def build_net(cls, spec: RecurrentSpec, datamodule: pl.LightningDataModule) -> EncoderDecoder:
        horizon = getattr(datamodule, "horizon", None)
        if horizon is None:
            raise ConfigError(
                f"task=forecaster needs a datamodule that serves forecast windows (context, next values), got "
                f"{type(datamodule).__name__}; use datamodule=sine_forecast."
            )
        return EncoderDecoder(spec, datamodule.input_size, datamodule.output_size, horizon)

    def teacher_forcing_ratio(self, epoch: int) -> float:
        hp = self.hparams
        progress = min(epoch / hp.teacher_forcing_epochs, 1.0)
        return hp.teacher_forcing + (hp.teacher_forcing_end - hp.teacher_forcing) * progress

    def loss(self, preds: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(preds, targets)

    def model_step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> dict[str, torch.Tensor]:
        context, future = batch  # (batch, seq_len, features), (batch, horizon, features)
        if stage == "train":
            # A private generator seeded by the step: the draws do not shift other random numbers, and a
            # resumed run draws the same ones.
            generator = torch.Generator(device=context.device)
            generator.manual_seed((torch.initial_seed() + self.global_step) % 2**63)
            ratio = self.teacher_forcing_ratio(self.current_epoch)
            preds = self.net(context, future, teacher_forcing=ratio, generator=generator)
        else:
            preds = self.net(context)  # free-running: the truth is never passed in
        loss = self.loss(preds, future)
        accumulate(getattr(self, f"{stage}_loss"), loss.detach(), weight=context.shape[0])
        self.update_forecast_metrics(stage, context, preds.detach(), future)
        return {"loss": loss, "preds": preds.detach()}

    def baselines(self, context: torch.Tensor, horizon: int) -> dict[str, torch.Tensor]:
        """``{"naive": persistence, "snaive": seasonal-naive (with a season)}``, each like the forecast."""
        out = {"naive": persistence_forecast(context, horizon)}
        if self.season is not None:
            out["snaive"] = seasonal_naive_forecast(context, horizon, self.season)
        return out

    def update_forecast_metrics(
        self, stage: str, context: torch.Tensor, preds: torch.Tensor, future: torch.Tensor
    ) -> None:
        """The model's and the baselines' errors, scaled and (when the datamodule scales) in data units."""
        scale = target_scale(self, future.device)
        self.has_data_units = scale is not None
        accumulate(getattr(self, f"{stage}_metrics"), preds, future)
        if scale is not None:
            accumulate(
                getattr(self, f"{stage}_metrics_data"),
                to_data_units(preds, scale),
                to_data_units(future, scale),
            )
        if stage == "train":
            return
        forecasts = {"": preds, **self.baselines(context, future.shape[1])}
        for name, forecast in forecasts.items():
            units = [("", forecast, future)]
            if scale is not None:
                units.append(("_data", to_data_units(forecast, scale), to_data_units(future, scale)))
            for suffix, value, truth in units:
                if name:
                    accumulate(getattr(self, f"{stage}_{name}_mse{suffix}"), value, truth)
                if stage == "test":
                    accumulate(
                        getattr(self, f"test_step_{name + '_' if name else ''}mse{suffix}"), value, truth
                    )

    def log_epoch_metrics(self, stage: str) -> None:
        super().log_epoch_metrics(stage)
        metrics = getattr(self, f"{stage}_metrics")
        self.log(f"{stage}/mse", metrics["mse"])
        self.log(f"{stage}/mae", metrics["mae"])
        if self.has_data_units:
            data = getattr(self, f"{stage}_metrics_data")
            self.log(f"{stage}/mse_data", data["mse"])
            self.log(f"{stage}/mae_data", data["mae"])
        if stage == "train":
            self.log("train/teacher_forcing", self.teacher_forcing_ratio(self.current_epoch))
            return
        baselines = ["naive", *(["snaive"] if self.season is not None else [])]
        for name in baselines:
            self.log(f"{stage}/{name}_mse", getattr(self, f"{stage}_{name}_mse"))
            if self.has_data_units:
                self.log(f"{stage}/{name}_mse_data", getattr(self, f"{stage}_{name}_mse_data"))

    def validation_step(self, batch, batch_idx: int) -> dict[str, torch.Tensor]:
        out = super().validation_step(batch, batch_idx)
        if batch_idx == 0:
            self.first_val_batch = (batch[0][:4], batch[1][:4], out["preds"][:4])
        return out

    def best_tracker(self) -> tuple[str, Metric, Metric]:
        return "val/mse_best", self.val_mse_best, self.val_metrics["mse"]

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        if self.trainer.sanity_checking or not self.hparams.log_figures or self.first_val_batch is None:
            return
        context, future, preds = self.first_val_batch
        with torch.no_grad():
            forced = self.net(context, future, teacher_forcing=1.0)
        title = f"validation forecasts, epoch {self.current_epoch}"
        baselines = self.baselines(context, future.shape[1])
        fig = plot_forecasts(context, future, preds, forced, title, baselines=baselines)
        publish_figure(self.trainer, "val/forecasts", fig)

    def on_test_epoch_end(self) -> None:
        super().on_test_epoch_end()
        names = ["mse", "naive_mse", *(["snaive_mse"] if self.season is not None else [])]
        if self.has_data_units:
            names += [f"{name}_data" for name in names]
        columns = {}
        for name in names:
            metric = getattr(self, f"test_step_{name}")
            columns[name] = metric.compute().cpu()
        for name in ("mse", "naive_mse", "snaive_mse"):
            for suffix in ("", "_data"):
                getattr(self, f"test_step_{name}{suffix}").reset()
        if self.trainer.is_global_zero:
            write_horizon_csv(Path(self.trainer.default_root_dir) / "horizon_mse.csv", **columns)
            if self.hparams.log_figures:
                suffix = "_data" if self.has_data_units else ""
                fig = plot_horizon_mse(
                    columns[f"mse{suffix}"],
                    columns[f"naive_mse{suffix}"],
                    f"test MSE per forecast step{' (data units)' if suffix else ''}",
                    seasonal=columns.get(f"snaive_mse{suffix}"),
                )
                publish_figure(self.trainer, "test/horizon_mse", fig, per_epoch=False)


def write_horizon_csv(path: Path, mse: torch.Tensor, naive_mse: torch.Tensor, **more: torch.Tensor) -> Path:
    """``step,mse,naive_mse[,...]`` per forecast step (1 = the first value after the context); ``more`` adds
    columns in order (``snaive_mse``, and the ``*_data`` columns in the data's own units)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = {"mse": mse, "naive_mse": naive_mse, **more}
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["step", *columns])
        rows = zip(*(c.tolist() for c in columns.values()), strict=True)
        for step, values in enumerate(rows, start=1):
            writer.writerow([step, *values])
    return path


def plot_forecasts(
    context: torch.Tensor,
    future: torch.Tensor,
    preds: torch.Tensor,
    forced: torch.Tensor | None,
    title: str,
    max_sequences: int = 4,
    baselines: dict[str, torch.Tensor] | None = None,
) -> Figure:
    """Context, truth and free-running forecast (and the teacher-forced prediction, dashed; the baselines,
    dotted) of a few windows, first feature; each tensor ``(batch, time, features)``."""
    count = min(max_sequences, context.shape[0])
    fig = Figure(figsize=(10, 2.2 * count), layout="constrained")
    axes = fig.subplots(count, 1, sharex=True, squeeze=False)[:, 0]
    seen, ahead = np.arange(context.shape[1]), context.shape[1] + np.arange(future.shape[1])
    for i, ax in enumerate(axes):
        ax.plot(seen, context[i, :, 0].detach().cpu().float().numpy(), color="0.6", lw=1, label="context")
        ax.plot(ahead, future[i, :, 0].detach().cpu().float().numpy(), color="C0", lw=2, label="truth")
        ax.plot(ahead, preds[i, :, 0].detach().cpu().float().numpy(), color="C1", lw=1.5, label="forecast")
        if forced is not None:
            values = forced[i, :, 0].detach().cpu().float().numpy()
            ax.plot(ahead, values, color="C2", lw=1, ls="--", label="teacher-forced")
        for (name, baseline), color in zip((baselines or {}).items(), ("0.3", "C4"), strict=False):
            label = BASELINE_LABELS.get(name, name)
            ax.plot(
                ahead,
                baseline[i, :, 0].detach().cpu().float().numpy(),
                color=color,
                lw=1,
                ls=":",
                label=label,
            )
        ax.axvline(context.shape[1] - 0.5, color="0.4", lw=0.8, ls=":")
        ax.set_ylabel(f"window {i}")
    axes[0].legend(loc="upper left", ncols=6, fontsize="small")
    axes[0].set_title(title)
    axes[-1].set_xlabel("time step")
    return fig


BASELINE_LABELS = {"naive": "persistence", "snaive": "seasonal-naive"}


def plot_horizon_mse(
    model: torch.Tensor, naive: torch.Tensor, title: str, seasonal: torch.Tensor | None = None
) -> Figure:
    """MSE against forecast step, the model's beside the persistence (and seasonal-naive) baseline's."""
    fig = Figure(figsize=(6, 3.5), layout="constrained")
    ax = fig.subplots()
    steps = np.arange(1, model.numel() + 1)
    ax.plot(steps, model.numpy(), marker="o", ms=3, label="model")
    ax.plot(steps, naive.numpy(), marker="o", ms=3, color="0.5", label="persistence (last value)")
    if seasonal is not None:
        ax.plot(steps, seasonal.numpy(), marker="o", ms=3, color="C4", label="seasonal-naive")
    ax.set_xlabel("forecast step")
    ax.set_ylabel("MSE")
    ax.set_yscale("log")
    ax.legend()
    ax.set_title(title)
    return fig
