"""Encoder-decoder forecasting: read a context window, predict the next ``horizon`` values, and compare with
the persistence forecast (repeat the last observed value) on the same windows."""

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
from rnnexp.tasks.figures import publish_figure
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


def persistence_forecast(context: torch.Tensor, horizon: int) -> torch.Tensor:
    """The naive forecast: the last observed value repeated, ``(batch, horizon, features)``."""
    return context[:, -1:].expand(-1, horizon, -1).contiguous()


class Forecaster(SequenceTask):
    """MSE over the forecast; per stage ``<stage>/mse`` and ``<stage>/mae``, for val/test also the persistence
    baseline ``<stage>/naive_mse``, and the best val MSE.

    Teacher forcing (training only): at epoch e each decoder step reads the true previous value with
    probability ``teacher_forcing + (teacher_forcing_end - teacher_forcing) * min(e / teacher_forcing_epochs,
    1)`` (a linear schedule; equal ends give a fixed ratio), else its own prediction. Validation and test are
    always free-running. Each validation epoch draws context, truth, forecast and the teacher-forced
    prediction of a few windows; each test pass writes the MSE per forecast step, model and baseline, to
    ``horizon_mse.csv`` and a figure.
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
        self.val_naive_mse, self.test_naive_mse = MeanSquaredError(), MeanSquaredError()
        self.test_step_mse, self.test_step_naive_mse = StepwiseMSE(net.horizon), StepwiseMSE(net.horizon)
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
        accumulate(getattr(self, f"{stage}_metrics"), preds.detach(), future)
        if stage != "train":
            naive = persistence_forecast(context, future.shape[1])
            accumulate(getattr(self, f"{stage}_naive_mse"), naive, future)
            if stage == "test":
                accumulate(self.test_step_mse, preds.detach(), future)
                accumulate(self.test_step_naive_mse, naive, future)
        return {"loss": loss, "preds": preds.detach()}

    def log_epoch_metrics(self, stage: str) -> None:
        super().log_epoch_metrics(stage)
        metrics = getattr(self, f"{stage}_metrics")
        self.log(f"{stage}/mse", metrics["mse"])
        self.log(f"{stage}/mae", metrics["mae"])
        if stage == "train":
            self.log("train/teacher_forcing", self.teacher_forcing_ratio(self.current_epoch))
        else:
            self.log(f"{stage}/naive_mse", getattr(self, f"{stage}_naive_mse"))

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
        publish_figure(self.trainer, "val/forecasts", plot_forecasts(context, future, preds, forced, title))

    def on_test_epoch_end(self) -> None:
        super().on_test_epoch_end()
        model, naive = self.test_step_mse.compute().cpu(), self.test_step_naive_mse.compute().cpu()
        self.test_step_mse.reset()
        self.test_step_naive_mse.reset()
        if self.trainer.is_global_zero:
            write_horizon_csv(Path(self.trainer.default_root_dir) / "horizon_mse.csv", model, naive)
            if self.hparams.log_figures:
                fig = plot_horizon_mse(model, naive, "test MSE per forecast step")
                publish_figure(self.trainer, "test/horizon_mse", fig, per_epoch=False)


def write_horizon_csv(path: Path, model: torch.Tensor, naive: torch.Tensor) -> Path:
    """``step,mse,naive_mse`` per forecast step (1 = the first value after the context)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["step", "mse", "naive_mse"])
        for step, (m, n) in enumerate(zip(model.tolist(), naive.tolist(), strict=True), start=1):
            writer.writerow([step, m, n])
    return path


def plot_forecasts(
    context: torch.Tensor,
    future: torch.Tensor,
    preds: torch.Tensor,
    forced: torch.Tensor | None,
    title: str,
    max_sequences: int = 4,
) -> Figure:
    """Context, truth and free-running forecast (and the teacher-forced prediction, dashed) of a few
    windows, first feature; each tensor ``(batch, time, features)``."""
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
        ax.axvline(context.shape[1] - 0.5, color="0.4", lw=0.8, ls=":")
        ax.set_ylabel(f"window {i}")
    axes[0].legend(loc="upper left", ncols=4, fontsize="small")
    axes[0].set_title(title)
    axes[-1].set_xlabel("time step")
    return fig


def plot_horizon_mse(model: torch.Tensor, naive: torch.Tensor, title: str) -> Figure:
    """MSE against forecast step, the model's beside the persistence baseline's."""
    fig = Figure(figsize=(6, 3.5), layout="constrained")
    ax = fig.subplots()
    steps = np.arange(1, model.numel() + 1)
    ax.plot(steps, model.numpy(), marker="o", ms=3, label="model")
    ax.plot(steps, naive.numpy(), marker="o", ms=3, color="0.5", label="persistence (last value)")
    ax.set_xlabel("forecast step")
    ax.set_ylabel("MSE")
    ax.set_yscale("log")
    ax.legend()
    ax.set_title(title)
    return fig
