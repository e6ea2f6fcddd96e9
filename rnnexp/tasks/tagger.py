"""Sequence labelling: one tag per token (part of speech), every token's tag predicted from the sentence."""

from __future__ import annotations

import torch
from torch.nn import functional as F
from torchmetrics import MaxMetric, Metric
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from rnnexp.data.tagging import Tagging
from rnnexp.models.token_net import TokenRecurrentNet
from rnnexp.tasks.base import OptimizerFactory, SchedulerFactory, SequenceTask
from rnnexp.tasks.step_metrics import accumulate
from rnnexp.tasks.token_task import TokenTask

IGNORE = -100  # the tag of a padded position: F.cross_entropy and the metrics skip it


class TokenTagger(TokenTask, SequenceTask):
    """Per-token cross-entropy over logits ``(batch, time, tags)`` against tags ``(batch, time)`` with
    ``-100`` at padded positions, which neither the loss nor any metric reads. Logs ``<stage>/acc`` (token
    accuracy), ``<stage>/f1`` (macro-F1 over tags) and, on the test split, ``test/f1/<tag>`` per tag
    (``test_tag_f1`` for results). The loss is averaged per real token.

    A bidirectional network is allowed: a tag is not a later input, so reading the sentence from its end
    tells the model nothing it must predict.
    """

    datamodule_class, datamodule_config, task_config, per_token = Tagging, "tagging", "tagger", True

    def __init__(
        self,
        net: TokenRecurrentNet,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        scheduler_monitor: str | None = None,
        log_figures: bool = True,
        embedding_dim: int = 64,
    ):
        super().__init__(net, optimizer, scheduler, scheduler_monitor, log_figures)
        if not net.per_step:
            raise ValueError("TokenTagger needs a per-token network (per_step=True)")
        tags = net.output_size
        accuracy = MulticlassAccuracy(tags, average="micro", ignore_index=IGNORE, validate_args=False)
        f1 = MulticlassF1Score(tags, average="macro", ignore_index=IGNORE, validate_args=False)
        self.train_acc, self.val_acc, self.test_acc = accuracy.clone(), accuracy.clone(), accuracy.clone()
        self.train_f1, self.val_f1, self.test_f1 = f1.clone(), f1.clone(), f1.clone()
        self.test_tag_f1 = MulticlassF1Score(tags, average="none", ignore_index=IGNORE, validate_args=False)
        self.val_acc_best = MaxMetric()

    def loss(self, preds: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(preds.reshape(-1, preds.shape[-1]), targets.reshape(-1), ignore_index=IGNORE)

    def model_step(self, batch: tuple[torch.Tensor, ...], stage: str) -> dict[str, torch.Tensor]:
        ids, tags, lengths = batch
        preds = self(ids, lengths)
        loss = self.loss(preds, tags)
        # Weighted by real tokens, so the epoch's loss is the mean over tokens, not over batches.
        accumulate(getattr(self, f"{stage}_loss"), loss.detach(), weight=(tags != IGNORE).sum())
        self.update_metrics(stage, preds.detach(), tags)
        return {"loss": loss, "preds": preds.detach()}

    def update_metrics(self, stage: str, preds: torch.Tensor, targets: torch.Tensor) -> None:
        flat_preds, flat_targets = preds.reshape(-1, preds.shape[-1]), targets.reshape(-1)
        accumulate(getattr(self, f"{stage}_acc"), flat_preds, flat_targets)
        accumulate(getattr(self, f"{stage}_f1"), flat_preds, flat_targets)
        if stage == "test":
            accumulate(self.test_tag_f1, flat_preds, flat_targets)

    def log_epoch_metrics(self, stage: str) -> None:
        super().log_epoch_metrics(stage)
        self.log(f"{stage}/acc", getattr(self, f"{stage}_acc"), prog_bar=True)
        self.log(f"{stage}/f1", getattr(self, f"{stage}_f1"))

    def best_tracker(self) -> tuple[str, Metric, Metric]:
        return "val/acc_best", self.val_acc_best, self.val_acc

    def on_test_epoch_start(self) -> None:
        self.test_tag_f1.reset()

    def on_test_epoch_end(self) -> None:
        super().on_test_epoch_end()
        per_tag = self.test_tag_f1.compute()
        for name, value in zip(self.class_names, per_tag, strict=True):
            self.log(f"test/f1/{name}", value)
