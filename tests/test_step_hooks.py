"""A run's callbacks are dispatched only the per-batch hooks they act in (rnnexp.lifecycle.step_hooks)."""

from __future__ import annotations

import pytorch_lightning as pl
from pytorch_lightning.callbacks import EarlyStopping, LambdaCallback, LearningRateMonitor, ModelCheckpoint

from rnnexp.lifecycle.interrupts import InterruptCheckpoint
from rnnexp.lifecycle.launch import ReportProgress
from rnnexp.lifecycle.non_finite import NonFiniteLossGuard
from rnnexp.lifecycle.resume_state import ResumeState
from rnnexp.lifecycle.run_end import ValidateAtRunEnd
from rnnexp.lifecycle.step_hooks import PER_BATCH_HOOKS, dispatched_batch_hooks, skip_unused_batch_hooks
from rnnexp.sweeps.pruning import OptunaPruning
from rnnexp.training import build_experiment, instantiate_group


def test_each_callback_is_dispatched_only_the_batch_hooks_it_uses(tmp_path):
    assert dispatched_batch_hooks(InterruptCheckpoint(str(tmp_path))) == []
    assert dispatched_batch_hooks(ResumeState()) == []
    assert dispatched_batch_hooks(OptunaPruning({"number": None}, "val/loss")) == []
    assert dispatched_batch_hooks(ReportProgress()) == []
    assert dispatched_batch_hooks(ValidateAtRunEnd()) == ["on_train_batch_end"]
    assert dispatched_batch_hooks(NonFiniteLossGuard("stop")) == ["on_before_backward"]
    assert dispatched_batch_hooks(NonFiniteLossGuard("skip")) == [
        "on_before_backward",
        "on_before_optimizer_step",
    ]


def test_a_hook_a_subclass_defines_is_kept_and_the_base_class_is_untouched():
    @skip_unused_batch_hooks
    class Counter(pl.Callback):
        def on_after_backward(self, trainer, pl_module):
            pass

    assert dispatched_batch_hooks(Counter()) == ["on_after_backward"]
    assert dispatched_batch_hooks(pl.Callback()) == list(PER_BATCH_HOOKS)


def defines(callback: pl.Callback, hook: str) -> bool:
    """Whether the callback has a hook of its own: set on the instance (not None), else on its class."""
    if hook in vars(callback):
        return vars(callback)[hook] is not None
    return getattr(type(callback), hook, None) not in (None, getattr(pl.Callback, hook))


def test_every_callback_of_a_run_is_dispatched_only_the_batch_hooks_its_class_defines(make_cfg):
    """Lightning's own callbacks (LearningRateMonitor, ModelCheckpoint, EarlyStopping) and a user's are trimmed
    per instance when the run's Trainer is built; their classes are left as they are, and a hook set on the
    instance (Lightning's LambdaCallback) is kept."""
    calls = []
    lambda_callback = LambdaCallback(on_train_batch_end=lambda *args: calls.append(1))
    user = [*instantiate_group(make_cfg().callbacks), lambda_callback]
    experiment = build_experiment(make_cfg("datamodule.num_sequences=40", "logger=[csv]"), callbacks=user)
    types = {type(callback) for callback in experiment.trainer.callbacks}
    assert {LearningRateMonitor, ModelCheckpoint, EarlyStopping, LambdaCallback} <= types
    for callback in experiment.trainer.callbacks:
        cls = type(callback)
        own = [name for name in PER_BATCH_HOOKS if defines(callback, name)]
        assert dispatched_batch_hooks(callback) == own, cls
    assert dispatched_batch_hooks(next(c for c in user if isinstance(c, LearningRateMonitor))) == [
        "on_train_batch_start"
    ]
    assert dispatched_batch_hooks(LearningRateMonitor()) == list(PER_BATCH_HOOKS)  # the class is untouched
    assert dispatched_batch_hooks(lambda_callback) == ["on_train_batch_end"]
