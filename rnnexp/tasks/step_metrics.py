"""Metric updates cheap enough for every step: the same accumulator arithmetic as torchmetrics' ``update``,
without the wrapper's per-call Python (argument checks, NaN scans that turn a tensor into a Python bool, and
on a GPU wait for the device, attribute bookkeeping through ``nn.Module.__setattr__``).

``accumulate(metric, *args)`` leaves a metric in the state ``metric.update(*args)`` would: the logged epoch
values, the checkpointed accumulators (``ResumeState``) and ``compute()`` are unchanged
(``tests/test_step_metrics.py`` compares the states bit for bit; ``tests/test_step_logging.py`` the logged
rows of every task). Measured on one CPU thread: ``MeanMetric.update`` about 75 µs, ``MulticlassAccuracy``
about 90 µs a call; here about 15 µs each.

The classification metrics (``MulticlassAccuracy``, ``MulticlassF1Score``: torchmetrics' ``MulticlassStatScores``
family) keep integer counts (tp, fp, tn, fn), so any arithmetic giving the same integers leaves the same state:
their top-1 counts are taken in a few tensor operations, with ``ignore_index`` masked rather than indexed (no
device sync), and written without the four ``__setattr__`` calls.
"""

from __future__ import annotations

import math

import torch
from torchmetrics import MeanMetric, Metric, MetricCollection
from torchmetrics.classification import MulticlassStatScores
from torchmetrics.functional.classification.stat_scores import (
    _multiclass_stat_scores_format,
    _multiclass_stat_scores_update,
)
from torchmetrics.utilities.data import _bincount


def accumulate(metric: Metric | MetricCollection, *args: torch.Tensor, **kwargs) -> None:
    """Add one batch to ``metric`` as its ``update`` would (inputs detached, on the metric's device)."""
    if isinstance(metric, MetricCollection):
        if any(len(group) > 1 for group in getattr(metric, "_groups", {}).values()):
            metric.update(*args, **kwargs)  # shared states of a compute group: the collection's own path
            return
        for member in metric.values():
            accumulate(member, *args, **kwargs)
        return
    if type(metric) is MeanMetric and metric.nan_strategy in ("warn", "ignore"):
        add_to_mean(metric, *args, **kwargs)
    elif isinstance(metric, MulticlassStatScores) and counts_directly(metric) and not kwargs:
        add_to_counts(metric, *args)
    else:
        type(metric).update(metric, *args, **kwargs)  # the metric's own update, without the wrapper
    # What the wrapper does besides calling update. Plain attributes, written to the instance's __dict__
    # directly: through Metric's and nn.Module's __setattr__ each write costs several microseconds.
    attributes = vars(metric)
    attributes["_computed"] = None
    attributes["_update_count"] += 1


def add_to_mean(metric: MeanMetric, value: torch.Tensor, weight: float | torch.Tensor | None = None) -> None:
    """``MeanMetric.update(value, weight)``: NaN values (and their weights) are left out, as its ``warn`` and
    ``ignore`` strategies do, by masking instead of a data-dependent branch (no warning is printed)."""
    dtype = metric.mean_value.dtype
    value = value.to(dtype)
    scale = None if isinstance(weight, torch.Tensor) else 1.0 if weight is None else float(weight)
    # A step's loss: five operations, not ten. Only where the result is the general path's to the bit (a 16-bit
    # state rounds the product differently; an infinite weight would give 0 * inf).
    if (
        value.dim() == 0
        and scale is not None
        and math.isfinite(scale)
        and dtype in (torch.float32, torch.float64)
    ):
        keep = ~torch.isnan(value)
        metric.mean_value.add_(torch.where(keep, value * scale, 0.0))
        metric.weight.add_(torch.where(keep, scale, 0.0).to(dtype))
        return
    if weight is None:
        weight = torch.ones_like(value)
    elif isinstance(weight, torch.Tensor):
        weight = weight.to(dtype)
        if weight.shape != value.shape:
            weight = torch.broadcast_to(weight, value.shape)
    else:
        weight = torch.full_like(value, float(weight))
    keep = ~torch.isnan(value)
    added, weights = torch.where(keep, value * weight, 0.0), torch.where(keep, weight, 0.0)
    if value.dim() > 0:  # a step's loss weighted by a count (characters, tokens) is its own sum
        added, weights = added.sum(), weights.sum()
    metric.mean_value.add_(added)
    metric.weight.add_(weights)


def counts_directly(metric: MulticlassStatScores) -> bool:
    """Whether ``add_to_counts`` does what ``metric.update`` does: counts summed over the whole epoch
    (``multidim_average="global"``), inputs not validated (``validate_args=False``, as every rnnexp task
    builds them), and ``update`` not overridden below ``MulticlassStatScores``."""
    return (
        metric.multidim_average == "global"
        and not metric.validate_args
        and type(metric).update is MulticlassStatScores.update
    )


def add_to_counts(metric: MulticlassStatScores, preds: torch.Tensor, target: torch.Tensor) -> None:
    """``MulticlassStatScores.update(preds, target)``: preds ``(batch, classes, ...)`` scores or ``(batch, ...)``
    labels, target ``(batch, ...)`` labels. The states are integer counts, so the result is exact.

    Top-1 counts are taken here (torchmetrics' formulas: micro tp = right, fp = fn = wrong, tn = (C - 2) n + tp;
    per class from the confusion matrix) with ``ignore_index`` masked instead of the targets indexed by a
    boolean mask, which on a GPU waits for the device every step; top-k counts go through torchmetrics' own
    functions."""
    num_classes = metric.num_classes if metric.num_classes is not None else 1
    labels = preds.argmax(dim=1) if preds.ndim == target.ndim + 1 else preds
    if metric.top_k == 1 and labels.shape == target.shape:
        counts = top1_counts(labels.flatten().long(), target.flatten().long(), num_classes, metric)
    else:
        preds, target = _multiclass_stat_scores_format(preds, target, metric.top_k)
        counts = _multiclass_stat_scores_update(
            preds, target, num_classes, metric.top_k, metric.average, "global", metric.ignore_index
        )
    states = vars(metric)
    for name, count in zip(("tp", "fp", "tn", "fn"), counts, strict=True):
        states[name] = states[name] + count


def top1_counts(
    labels: torch.Tensor, target: torch.Tensor, num_classes: int, metric: MulticlassStatScores
) -> tuple[torch.Tensor, ...]:
    """(tp, fp, tn, fn) of flat top-1 ``labels`` against ``target``, as ``_multiclass_stat_scores_update``
    counts them over the targets that are not ``ignore_index``: totals for the micro average, per class else."""
    keep = None if metric.ignore_index is None else target != metric.ignore_index
    if metric.average == "micro":
        right = labels == target
        n = target.numel() if keep is None else keep.sum()
        tp = (right if keep is None else right & keep).sum()
        wrong = n - tp
        return tp, wrong, (num_classes - 2) * n + tp, wrong
    cells = target * num_classes + labels  # the confusion matrix's cell of each target, row-major
    if keep is not None:  # ignored targets go to one extra bin, cut off below
        cells = torch.where(keep, cells, num_classes**2)
    bins = _bincount(cells, minlength=num_classes**2 + 1)[: num_classes**2]
    confusion = bins.reshape(num_classes, num_classes)
    tp = confusion.diag()
    fp = confusion.sum(0) - tp
    fn = confusion.sum(1) - tp
    return tp, fp, confusion.sum() - (fp + fn + tp), fn
