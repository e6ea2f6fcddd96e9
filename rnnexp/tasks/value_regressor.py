"""Many-to-one regression: one value per sequence (e.g. the adding problem's sum), scored beside the MSE of
a constant prediction, so a reader sees at once whether the network learned anything."""

from __future__ import annotations

import torch
from torch.nn import functional as F
from torchmetrics import MeanMetric, MeanSquaredError, Metric, MinMetric

from rnnexp.errors import ConfigError
from rnnexp.models.recurrent import RecurrentNet
from rnnexp.tasks.base import OptimizerFactory, SchedulerFactory, SequenceTask
from rnnexp.tasks.step_metrics import accumulate


class ValueRegressor(SequenceTask):
    """MSE on predictions ``(batch, outputs)`` against targets of the same shape; per stage ``mse`` and
    ``baseline_mse`` (the MSE of always predicting ``baseline_prediction``, on the same examples), and the
    best validation MSE. The adding problem's baseline predicts 1, the sum's mean (MSE 1/6)."""

    def __init__(
        self,
        net: RecurrentNet,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        scheduler_monitor: str | None = None,
        log_figures: bool = True,
        baseline_prediction: float = 0.0,
    ):
        super().__init__(net, optimizer, scheduler, scheduler_monitor, log_figures)
        if net.per_step:
            raise ValueError("ValueRegressor needs a many-to-one network (per_step=False)")
        if isinstance(baseline_prediction, bool) or not isinstance(baseline_prediction, int | float):
            raise ConfigError(
                f"task.baseline_prediction={baseline_prediction!r} must be a number: the constant whose MSE is "
                "logged beside the network's (e.g. task.baseline_prediction=1.0)."
            )
        self.baseline_prediction = float(baseline_prediction)
        self.train_mse, self.val_mse, self.test_mse = (MeanSquaredError() for _ in range(3))
        self.train_baseline, self.val_baseline, self.test_baseline = (MeanMetric() for _ in range(3))
        self.val_mse_best = MinMetric()

    def loss(self, preds: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(preds, targets)

    def update_metrics(self, stage: str, preds: torch.Tensor, targets: torch.Tensor) -> None:
        accumulate(getattr(self, f"{stage}_mse"), preds.float(), targets)
        baseline = (targets - self.baseline_prediction).pow(2).mean()
        accumulate(getattr(self, f"{stage}_baseline"), baseline, weight=targets.numel())

    def log_epoch_metrics(self, stage: str) -> None:
        super().log_epoch_metrics(stage)
        self.log(f"{stage}/mse", getattr(self, f"{stage}_mse"), prog_bar=True)
        self.log(f"{stage}/baseline_mse", getattr(self, f"{stage}_baseline"))

    def best_tracker(self) -> tuple[str, Metric, Metric]:
        return "val/mse_best", self.val_mse_best, self.val_mse
