"""Text classification: a label per text (news topic, sentiment), read by an embedding and a recurrent net."""

from __future__ import annotations

import torch
from torch.nn import functional as F
from torchmetrics.classification import MulticlassF1Score

from rnnexp.data.text_classes import TextClasses
from rnnexp.errors import ConfigError
from rnnexp.models.token_net import TokenRecurrentNet
from rnnexp.tasks.base import OptimizerFactory, SchedulerFactory
from rnnexp.tasks.classifier import SequenceClassifier
from rnnexp.tasks.step_metrics import accumulate
from rnnexp.tasks.token_task import TokenTask

CLASS_WEIGHTS = ("none", "balanced")


def balanced_weights(counts: torch.Tensor) -> torch.Tensor:
    """scikit-learn's ``class_weight="balanced"``: ``rows / (classes * rows of the class)``, so every class
    weighs as much in the loss as a class of the average size."""
    counts = counts.to(torch.float)
    return counts.sum() / (len(counts) * counts.clamp(min=1))


class TextClassifier(TokenTask, SequenceClassifier):
    """``SequenceClassifier`` (cross-entropy, accuracy, test confusion matrix with the class names) on token
    ids, plus macro-F1 per stage (``<stage>/f1``: the mean of the per-class F1, so a rare class counts as
    much as a common one) and, with ``class_weights=balanced``, a loss weighted by the inverse class
    frequency of the training split."""

    datamodule_class, datamodule_config, task_config, per_token = (
        TextClasses,
        "text_classes",
        "text_classifier",
        False,
    )

    def __init__(
        self,
        net: TokenRecurrentNet,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        scheduler_monitor: str | None = None,
        log_figures: bool = True,
        embedding_dim: int = 64,
        class_weights: str = "none",
    ):
        super().__init__(net, optimizer, scheduler, scheduler_monitor, log_figures)
        if class_weights not in CLASS_WEIGHTS:
            raise ConfigError(
                f"task.class_weights={class_weights!r} is unknown; choose one of {list(CLASS_WEIGHTS)}."
            )
        f1 = MulticlassF1Score(net.output_size, average="macro", validate_args=False)
        self.train_f1, self.val_f1, self.test_f1 = f1.clone(), f1.clone(), f1.clone()
        # Filled from the training split's class counts in setup; not saved (the data decides it).
        self.register_buffer("class_weight", torch.ones(net.output_size), persistent=False)

    def setup(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        counts = getattr(datamodule, "class_counts", None)
        if self.hparams.class_weights == "balanced" and counts is not None:
            self.class_weight.copy_(balanced_weights(counts))

    def loss(self, preds: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self.hparams.class_weights == "none":
            return F.cross_entropy(preds, targets)
        return F.cross_entropy(preds, targets, weight=self.class_weight)

    def update_metrics(self, stage: str, preds: torch.Tensor, targets: torch.Tensor) -> None:
        super().update_metrics(stage, preds, targets)
        accumulate(getattr(self, f"{stage}_f1"), preds, targets)

    def log_epoch_metrics(self, stage: str) -> None:
        super().log_epoch_metrics(stage)
        self.log(f"{stage}/f1", getattr(self, f"{stage}_f1"), prog_bar=stage == "val")
