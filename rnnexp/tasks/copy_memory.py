"""The copy memory task's scoring: a class per step, cross-entropy over every step (as Arjovsky et al. 2016
report it) beside the memoryless baseline, and how many of the symbols to recall come out right."""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F
from torchmetrics import MeanMetric, Metric, MinMetric

from rnnexp.models.recurrent import RecurrentNet
from rnnexp.tasks.base import OptimizerFactory, SchedulerFactory, SequenceTask
from rnnexp.tasks.step_metrics import accumulate

BLANK = 0  # the target class of every step but the recall steps (rnnexp.data.copy_memory)


class CopyMemoryClassifier(SequenceTask):
    """Logits ``(batch, time, classes)`` against target ids ``(batch, time)``, class 0 blank and classes
    ``1..classes-1`` the symbols. Per stage:

    - ``loss``: cross-entropy per step, averaged over all steps (nats);
    - ``baseline_loss``: the same for a network without memory, which outputs blank wherever the target is
      blank and a uniform guess over the symbols where it is a symbol: ``recall steps x ln(symbols) / steps``;
    - ``recall_loss``, ``recall_acc``: cross-entropy and accuracy on the recall steps only (chance:
      ``ln(symbols)`` and ``1 / symbols``);

    and the best validation loss.
    """

    def __init__(
        self,
        net: RecurrentNet,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        scheduler_monitor: str | None = None,
        log_figures: bool = True,
    ):
        super().__init__(net, optimizer, scheduler, scheduler_monitor, log_figures)
        if not net.per_step:
            raise ValueError("CopyMemoryClassifier needs a network with an output per step (per_step=True)")
        self.log_symbols = math.log(net.output_size - 1) if net.output_size > 2 else 0.0
        for stage in ("train", "val", "test"):
            for name in ("baseline", "recall_loss", "recall_acc"):
                setattr(self, f"{stage}_{name}", MeanMetric())
        self.val_loss_best = MinMetric()

    def loss(self, preds: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy over every step. The per-step values are kept (detached) for
        ``update_metrics``' recall loss: one cross-entropy over ``(batch, time, classes)`` a batch, not two
        (the second was ~3 % of a tanh-RNN step). Its gradient is the fused mean's (1 / steps per value)."""
        per_step = F.cross_entropy(preds.flatten(0, 1), targets.flatten(), reduction="none")
        vars(self)["step_losses"] = per_step.detach().view_as(targets)
        return per_step.mean()

    def update_metrics(self, stage: str, preds: torch.Tensor, targets: torch.Tensor) -> None:
        recall = targets != BLANK  # (batch, time); every sequence has recall steps, so never empty
        count = recall.sum()  # a tensor: no device sync per step
        accumulate(
            getattr(self, f"{stage}_baseline"), count * self.log_symbols / targets.numel(), targets.numel()
        )
        # The per-step losses ``loss`` kept for this batch (model_step calls it first), taken once; computed
        # here when update_metrics is called on its own.
        per_step = vars(self).pop("step_losses", None)
        # 16/bf16-true precision: the kept values are half precision; the metric sums in float32, as before.
        if per_step is None or per_step.shape != targets.shape or per_step.dtype != torch.float32:
            per_step = F.cross_entropy(preds.float().flatten(0, 1), targets.flatten(), reduction="none")
        recall_loss = (per_step.view_as(targets) * recall).sum() / count
        correct = ((preds.argmax(dim=-1) == targets) & recall).sum() / count
        accumulate(getattr(self, f"{stage}_recall_loss"), recall_loss, weight=count)
        accumulate(getattr(self, f"{stage}_recall_acc"), correct, weight=count)

    def log_epoch_metrics(self, stage: str) -> None:
        super().log_epoch_metrics(stage)
        self.log(f"{stage}/baseline_loss", getattr(self, f"{stage}_baseline"))
        self.log(f"{stage}/recall_loss", getattr(self, f"{stage}_recall_loss"))
        self.log(f"{stage}/recall_acc", getattr(self, f"{stage}_recall_acc"), prog_bar=True)

    def best_tracker(self) -> tuple[str, Metric, Metric]:
        return "val/loss_best", self.val_loss_best, self.val_loss
