"""A run's callbacks are dispatched only the per-batch hooks they act in (rnnexp.lifecycle.step_hooks)."""

from __future__ import annotations

import pytorch_lightning as pl
from pytorch_lightning.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint

from rnnexp.lifecycle.interrupts import InterruptCheckpoint
from rnnexp.lifecycle.launch import ReportProgress
from rnnexp.lifecycle.non_finite import NonFiniteLossGuard
from rnnexp.lifecycle.resume_state import ResumeState
from rnnexp.lifecycle.run_end import ValidateAtRunEnd
from rnnexp.lifecycle.step_hooks import PER_BATCH_HOOKS, dispatched_batch_hooks, skip_unused_batch_hooks
from rnnexp.sweeps.pruning import OptunaPruning
from rnnexp.training import build_experiment


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


def test_every_callback_of_a_run_is_dispatched_only_the_batch_hooks_its_class_defines(make_cfg):
    """Lightning's own callbacks (LearningRateMonitor, ModelCheckpoint, EarlyStopping, the progress bar) and
    a user's are trimmed per instance when the run's Trainer is built; their classes are left as they are."""
    experiment = build_experiment(make_cfg("datamodule.num_sequences=40", "logger=[csv]"))
    callbacks = {type(callback): callback for callback in experiment.trainer.callbacks}
    assert {LearningRateMonitor, ModelCheckpoint, EarlyStopping} <= set(callbacks)
    for cls, callback in callbacks.items():
        defined = [
            name for name in PER_BATCH_HOOKS if getattr(cls, name, None) is not getattr(pl.Callback, name)
        ]
        assert set(dispatched_batch_hooks(callback)) <= set(defined), cls  # no inherited empty hook
    assert dispatched_batch_hooks(callbacks[LearningRateMonitor]) == ["on_train_batch_start"]
    assert dispatched_batch_hooks(LearningRateMonitor()) == list(PER_BATCH_HOOKS)  # the class is untouched
