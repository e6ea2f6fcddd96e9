"""Many-to-one classification: one label per sequence (e.g. an MNIST digit read row by row)."""

from __future__ import annotations

import torch
from torch.nn import functional as F
from torchmetrics import MaxMetric, Metric
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

from rnnexp.models.recurrent import RecurrentNet
from rnnexp.tasks.base import OptimizerFactory, SchedulerFactory, SequenceTask
from rnnexp.tasks.figures import plot_confusion_matrix, publish_figure
from rnnexp.tasks.step_metrics import accumulate


class SequenceClassifier(SequenceTask):
    """Cross-entropy on logits ``(batch, classes)``; accuracy per stage, best val accuracy, and a
    confusion matrix on the test split (figure + ``test_confusion`` for results.json)."""

    def __init__(
        self,
        net: RecurrentNet,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        scheduler_monitor: str | None = None,
        log_figures: bool = True,
    ):
        super().__init__(net, optimizer, scheduler, scheduler_monitor, log_figures)
        if net.per_step:
            raise ValueError("SequenceClassifier needs a many-to-one network (per_step=False)")
        classes = net.output_size
        # validate_args=False: torchmetrics' per-batch input checks cost more than the metric itself, and
        # cross_entropy has already refused out-of-range labels by the time a metric sees them.
        accuracy = MulticlassAccuracy(classes, average="micro", validate_args=False)
        self.train_acc, self.val_acc, self.test_acc = accuracy.clone(), accuracy.clone(), accuracy.clone()
        self.val_acc_best = MaxMetric()
        self.confusion = MulticlassConfusionMatrix(classes, validate_args=False)
        self.test_confusion: torch.Tensor | None = None

    def loss(self, preds: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(preds, targets)

    def update_metrics(self, stage: str, preds: torch.Tensor, targets: torch.Tensor) -> None:
        accumulate(getattr(self, f"{stage}_acc"), preds, targets)
        if stage == "test":
            accumulate(self.confusion, preds, targets)

    def log_epoch_metrics(self, stage: str) -> None:
        super().log_epoch_metrics(stage)
        self.log(f"{stage}/acc", getattr(self, f"{stage}_acc"), prog_bar=True)

    def best_tracker(self) -> tuple[str, Metric, Metric]:
        return "val/acc_best", self.val_acc_best, self.val_acc

    def on_test_epoch_start(self) -> None:
        self.confusion.reset()

    def on_test_epoch_end(self) -> None:
        super().on_test_epoch_end()
        self.test_confusion = self.confusion.compute()
        if self.hparams.log_figures:
            names = getattr(self.trainer.datamodule, "class_names", None) or [
                str(i) for i in range(self.net.output_size)
            ]
            fig = plot_confusion_matrix(self.test_confusion, names, "test confusion matrix")
            publish_figure(self.trainer, "test/confusion_matrix", fig, per_epoch=False)
