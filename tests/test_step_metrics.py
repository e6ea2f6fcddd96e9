"""``accumulate`` leaves every metric the tasks use in exactly the state its own ``update`` would, and clipping
with the norm the task already took equals Lightning's ``clip_grad_norm_``."""

from __future__ import annotations

import pytest
import torch
from torchmetrics import MeanAbsoluteError, MeanMetric, MeanSquaredError, MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix, MulticlassF1Score

from rnnexp.tasks.forecaster import StepwiseMSE
from rnnexp.tasks.step_metrics import accumulate
from rnnexp.training import train


def states(metric) -> dict[str, torch.Tensor]:
    return {**metric.metric_state, "_update_count": torch.tensor(metric._update_count)}


def assert_same_states(fast, reference) -> None:
    got, want = states(fast), states(reference)
    assert got.keys() == want.keys()
    for key in want:
        assert torch.equal(got[key], want[key]), key  # bit for bit
    assert torch.equal(fast.compute(), reference.compute())


def batches(kind: str, count: int = 5, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    for i in range(count):
        if kind == "classes":
            yield torch.randn(17, 10, generator=gen), torch.randint(0, 10, (17,), generator=gen)
        elif kind == "values":
            yield torch.randn(8, 12, 3, generator=gen), torch.randn(8, 12, 3, generator=gen)
        elif kind == "loss":  # a scalar loss and the batch size it averages, as the tasks pass them
            yield torch.rand((), generator=gen) * 3, 16 + i
        elif kind == "weighted":  # the translator's characters: a tensor weight
            yield torch.rand((), generator=gen), torch.tensor(40 + i)
        else:  # a vector of per-sequence values, unweighted (exact match)
            yield (torch.rand(9, generator=gen) > 0.5).float(), None


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (lambda: MulticlassAccuracy(10, average="micro", validate_args=False), "classes"),
        (lambda: MulticlassConfusionMatrix(10, validate_args=False), "classes"),
        (MeanSquaredError, "values"),
        (MeanAbsoluteError, "values"),
        (lambda: StepwiseMSE(12), "values"),
        (MeanMetric, "loss"),
        (MeanMetric, "weighted"),
        (lambda: MeanMetric(nan_strategy="ignore"), "vector"),
    ],
)
def test_accumulate_leaves_the_state_update_would(make, kind):
    fast, reference = make(), make()
    for args in batches(kind):
        args = tuple(a for a in args if a is not None)
        accumulate(fast, *args) if kind not in ("loss", "weighted") else accumulate(
            fast, args[0], weight=args[1]
        )
        reference.update(*args) if kind not in ("loss", "weighted") else reference.update(
            args[0], weight=args[1]
        )
    assert_same_states(fast, reference)


STAT_SCORES_INPUTS = {
    "scores": lambda gen: (torch.randn(17, 6, generator=gen), torch.randint(0, 6, (17,), generator=gen)),
    "labels": lambda gen: (
        torch.randint(0, 6, (17,), generator=gen),
        torch.randint(0, 6, (17,), generator=gen),
    ),
    # a label per step (the tagger): scores (batch, classes, time), targets (batch, time) with padding 0
    "per_step": lambda gen: (torch.randn(5, 6, 9, generator=gen), torch.randint(0, 6, (5, 9), generator=gen)),
}


@pytest.mark.parametrize("average", ["micro", "macro", "weighted", "none"])
@pytest.mark.parametrize("ignore_index", [None, 0, -100])
@pytest.mark.parametrize("inputs", sorted(STAT_SCORES_INPUTS))
@pytest.mark.parametrize("metric_class", [MulticlassAccuracy, MulticlassF1Score])
def test_the_classification_counts_are_the_ones_update_counts(average, ignore_index, inputs, metric_class):
    """Accuracy and F1 (counts tp, fp, tn, fn) in every averaging, with and without an ignored label, from
    scores, from labels and per step: the same integers as torchmetrics' own ``update``, and the same value."""
    make = lambda: metric_class(6, average=average, ignore_index=ignore_index, validate_args=False)  # noqa: E731
    fast, reference = make(), make()
    gen = torch.Generator().manual_seed(len(inputs) + (ignore_index or 0))
    for _ in range(4):
        preds, target = STAT_SCORES_INPUTS[inputs](gen)
        if ignore_index == -100:
            target[0] = -100  # the padding label outside the classes, as the tagger pads
        accumulate(fast, preds, target)
        reference.update(preds, target)
    assert_same_states(fast, reference)


@pytest.mark.parametrize("average", ["micro", "macro"])
@pytest.mark.parametrize("inputs", ["scores", "per_step"])
def test_top_k_classification_counts_take_torchmetrics_count_functions(average, inputs):
    """Top-2 counts (a score's two best classes) are not the top-1 arithmetic: they go through torchmetrics'
    own count functions and match ``update``."""
    make = lambda: MulticlassAccuracy(6, average=average, top_k=2, validate_args=False)  # noqa: E731
    fast, reference = make(), make()
    gen = torch.Generator().manual_seed(3)
    for _ in range(3):
        preds, target = STAT_SCORES_INPUTS[inputs](gen)
        accumulate(fast, preds, target)
        reference.update(preds, target)
    assert_same_states(fast, reference)


def test_per_sample_classification_counts_take_the_metrics_own_update():
    """Only what ``add_to_counts`` reproduces takes it: per-sample counts (``multidim_average="samplewise"``,
    lists of counts) go through torchmetrics' own ``update`` and match it."""
    fast, reference = (
        MulticlassAccuracy(6, multidim_average="samplewise", validate_args=False) for _ in range(2)
    )
    preds, target = STAT_SCORES_INPUTS["per_step"](torch.Generator().manual_seed(1))
    accumulate(fast, preds, target)
    reference.update(preds, target)
    assert all(torch.equal(a, b) for a, b in zip(fast.tp, reference.tp, strict=True))
    assert torch.equal(fast.compute(), reference.compute())


def test_a_metric_collection_updates_each_member():
    make = lambda: MetricCollection({"mse": MeanSquaredError(), "mae": MeanAbsoluteError()})  # noqa: E731
    fast, reference = make(), make()
    for preds, targets in batches("values"):
        accumulate(fast, preds, targets)
        reference.update(preds, targets)
    for name in ("mse", "mae"):
        assert_same_states(fast[name], reference[name])


def test_a_nan_loss_is_left_out_of_the_mean_as_torchmetrics_leaves_it_out():
    fast, reference = MeanMetric(), MeanMetric()
    for value, weight in ((1.5, 10), (float("nan"), 20), (0.5, 30)):
        accumulate(fast, torch.tensor(value), weight=weight)
        with pytest.warns(UserWarning) if value != value else _no_warning():
            reference.update(torch.tensor(value), weight=weight)
    assert_same_states(fast, reference)
    assert fast.compute().item() == pytest.approx((1.5 * 10 + 0.5 * 30) / 40)


class _no_warning:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_a_task_clips_with_the_norm_it_logged_and_lightning_does_not_take_it_again(make_cfg, monkeypatch):
    """The run's values equal Lightning's own clipping (tests/test_step_logging.py); here: the second norm is
    gone for norm clipping, and value clipping still goes through Lightning."""
    calls = {"norm": 0, "value": 0}
    norm, value = torch.nn.utils.clip_grad_norm_, torch.nn.utils.clip_grad_value_

    def count(kind, clip):
        def counted(*args, **kwargs):
            calls[kind] += 1
            return clip(*args, **kwargs)

        return counted

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", count("norm", norm))
    monkeypatch.setattr(torch.nn.utils, "clip_grad_value_", count("value", value))
    small = ["datamodule.num_sequences=40", "datamodule.batch_size=8", "model.hidden_size=4", "trainer.max_epochs=1",
             "callbacks=none", "logger=[]", "test=false", "task.log_figures=false", "trainer.gradient_clip_val=0.5"]  # fmt: skip
    results, _ = train(make_cfg(*small))
    assert results["global_step"] == 4 and calls == {"norm": 0, "value": 0}
    results, _ = train(make_cfg(*small, "trainer.gradient_clip_algorithm=value"))
    assert calls == {"norm": 0, "value": 4}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize(
    ("value", "weight"),
    [
        (0.3, 257),
        (float("nan"), float("inf")),
        (1.5, True),
        (0.7, 3.25),
        # a tensor weight, as the text tasks weigh a batch by its characters or tokens
        (0.3, torch.tensor(257)),
        (0.7, torch.tensor(3.25, dtype=torch.float64)),
        (float("nan"), torch.tensor(5)),
    ],
)
def test_a_scalar_loss_enters_its_mean_as_update_would_for_any_state_dtype_and_weight(dtype, value, weight):
    """The scalar fast path stays bit-identical: 16-bit states and infinite weights take the general path."""
    fast, reference = MeanMetric().to(dtype), MeanMetric().to(dtype)
    accumulate(fast, torch.tensor(value), weight=weight)
    with pytest.warns(UserWarning) if value != value else _no_warning():
        reference.update(torch.tensor(value), weight=weight)
    got, want = states(fast), states(reference)
    assert all(torch.equal(got[key], want[key]) for key in want), (
        got,
        want,
    )  # bit for bit (0/0 computes NaN)
