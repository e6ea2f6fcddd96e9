"""Regression on sequences, typically a value per step (many-to-many), e.g. sin(x) → cos(x)."""

from __future__ import annotations

import torch
from torch.nn import functional as F
from torchmetrics import MeanAbsoluteError, MeanSquaredError, Metric, MetricCollection, MinMetric

from rnnexp.models.recurrent import RecurrentNet
from rnnexp.tasks.base import OptimizerFactory, SchedulerFactory, SequenceTask
from rnnexp.tasks.figures import plot_sequences, publish_figure


class SequenceRegressor(SequenceTask):
    """MSE loss; MSE and MAE per stage, the best val MSE, and a figure of predicted vs true curves for the
    first validation batch at the end of every validation epoch."""

    def __init__(
        self,
        net: RecurrentNet,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        scheduler_monitor: str | None = None,
        log_figures: bool = True,
    ):
        super().__init__(net, optimizer, scheduler, scheduler_monitor, log_figures)
        metrics = MetricCollection({"mse": MeanSquaredError(), "mae": MeanAbsoluteError()})
        self.train_metrics, self.val_metrics, self.test_metrics = (metrics.clone() for _ in range(3))
        self.val_mse_best = MinMetric()
        self.first_val_batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

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
            self.first_val_batch = (batch[0], batch[1], out["preds"])
        return out

    def best_tracker(self) -> tuple[str, Metric, Metric]:
        return "val/mse_best", self.val_mse_best, self.val_metrics["mse"]

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        if self.trainer.sanity_checking:
            return
        if self.hparams.log_figures and self.first_val_batch is not None:
            inputs, targets, preds = self.first_val_batch
            title = f"validation sequences, epoch {self.current_epoch}"
            publish_figure(self.trainer, "val/predictions", plot_sequences(inputs, targets, preds, title))
