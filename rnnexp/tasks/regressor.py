"""Regression on sequences, typically a value per step (many-to-many), e.g. sin(x) → cos(x)."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch.nn import functional as F
from torchmetrics import MeanAbsoluteError, MeanSquaredError, Metric, MetricCollection, MinMetric

from rnnexp.errors import ConfigError
from rnnexp.models.recurrent import RecurrentNet, RecurrentSpec
from rnnexp.tasks.base import OptimizerFactory, SchedulerFactory, SequenceTask
from rnnexp.tasks.carried_state import CarriesHiddenState
from rnnexp.tasks.figures import plot_sequences, publish_figure


class SequenceRegressor(CarriesHiddenState, SequenceTask):
    """MSE loss; MSE and MAE per stage, the best val MSE, and a figure of predicted vs true curves for the
    first validation batch at the end of every validation epoch.

    With ``carry_hidden`` (truncated BPTT over the datamodule's ordered streams, ``datamodule.tbptt=true``)
    each batch starts from the previous batch's detached final state (see ``CarriesHiddenState``), and the
    figure joins the first ``figure_batches`` validation batches of a few streams, batch boundaries marked.
    """

    def __init__(
        self,
        net: RecurrentNet,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        scheduler_monitor: str | None = None,
        log_figures: bool = True,
        carry_hidden: bool = False,
        figure_batches: int = 4,
    ):
        super().__init__(net, optimizer, scheduler, scheduler_monitor, log_figures)
        self.init_carried_state(carry_hidden)
        metrics = MetricCollection({"mse": MeanSquaredError(), "mae": MeanAbsoluteError()})
        self.train_metrics, self.val_metrics, self.test_metrics = (metrics.clone() for _ in range(3))
        self.val_mse_best = MinMetric()
        self.figure_batches: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    @classmethod
    def build_net(cls, spec: RecurrentSpec, datamodule: pl.LightningDataModule) -> RecurrentNet:
        if getattr(datamodule, "horizon", None) is not None:
            raise ConfigError(
                "datamodule.task=forecast needs the encoder-decoder forecaster, which datamodule=sine does "
                "not select; use datamodule=sine_forecast (e.g. python train.py datamodule=sine_forecast "
                "datamodule.horizon=20)."
            )
        if getattr(datamodule, "tbptt", False) and spec.bidirectional:
            raise ConfigError(
                "model.bidirectional=true cannot carry its state across batches (datamodule.tbptt=true): the "
                "backward direction's final state belongs to the start of a window, not to the next one. Use "
                "model.bidirectional=false, or datamodule.tbptt=false."
            )
        return super().build_net(spec, datamodule)

    def batch_predictions(
        self, inputs: torch.Tensor, stage: str, lengths: torch.Tensor | None = None
    ) -> torch.Tensor:
        preds, hidden = self.net.forward_with_state(inputs, self.carried_start(stage), lengths)
        self.carry(stage, hidden)
        return preds

    def loss(self, preds: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(preds, targets)

    def update_metrics(self, stage: str, preds: torch.Tensor, targets: torch.Tensor) -> None:
        getattr(self, f"{stage}_metrics").update(preds, targets)

    def log_epoch_metrics(self, stage: str) -> None:
        super().log_epoch_metrics(stage)
        metrics = getattr(self, f"{stage}_metrics")
        self.log(f"{stage}/mse", metrics["mse"])
        self.log(f"{stage}/mae", metrics["mae"])

    def validation_step(self, batch, batch_idx: int) -> dict[str, torch.Tensor]:
        out = super().validation_step(batch, batch_idx)
        if batch_idx == 0:
            self.figure_batches = []
        if batch_idx < (self.hparams.figure_batches if self.carry_enabled else 1):
            self.figure_batches.append((batch[0][:4], batch[1][:4], out["preds"][:4]))
        return out

    def best_tracker(self) -> tuple[str, Metric, Metric]:
        return "val/mse_best", self.val_mse_best, self.val_metrics["mse"]

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        if self.trainer.sanity_checking:
            return
        if self.hparams.log_figures and self.figure_batches:
            inputs, targets, preds = (
                torch.cat(parts, dim=1) for parts in zip(*self.figure_batches, strict=True)
            )
            lengths = [batch[0].shape[1] for batch in self.figure_batches]
            boundaries = torch.tensor(lengths).cumsum(0)[:-1].tolist()
            title = (
                f"validation {'streams' if self.carry_enabled else 'sequences'}, epoch {self.current_epoch}"
            )
            fig = plot_sequences(inputs, targets, preds, title, boundaries=boundaries)
            publish_figure(self.trainer, "val/predictions", fig)
