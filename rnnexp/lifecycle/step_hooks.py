"""Callbacks that do nothing per batch should cost nothing per batch.

Lightning dispatches every per-batch hook (six per training step) to every callback, and for each it reads
the callback's ``state_key`` and opens a profiler context before calling even ``pl.Callback``'s empty
method: a few microseconds per callback and hook, over a hundred per step for rnnexp's default callbacks. Its
dispatch skips an attribute that is not callable (``if callable(fn)`` in ``trainer/call.py``), so a hook a
callback does not use is set to None on its class (rnnexp's callbacks: ``skip_unused_batch_hooks``) or on the
instance (every callback a run's Trainer holds, Lightning's and a user's too: ``skip_unused_batch_hooks_of``),
and that callback then costs nothing in that hook.
"""

from __future__ import annotations

import pytorch_lightning as pl

PER_BATCH_HOOKS = (
    "on_train_batch_start",
    "on_train_batch_end",
    "on_before_backward",
    "on_after_backward",
    "on_before_optimizer_step",
    "on_before_zero_grad",
    "on_validation_batch_start",
    "on_validation_batch_end",
    "on_test_batch_start",
    "on_test_batch_end",
    "on_predict_batch_start",
    "on_predict_batch_end",
)


def unused_batch_hooks(cls: type) -> list[str]:
    """The per-batch hooks ``cls`` inherits unchanged from ``pl.Callback`` (empty methods)."""
    return [name for name in PER_BATCH_HOOKS if getattr(cls, name, None) is getattr(pl.Callback, name)]


def skip_unused_batch_hooks(cls: type[pl.Callback]) -> type[pl.Callback]:
    """Class decorator: each per-batch hook ``cls`` inherits unchanged from ``pl.Callback`` becomes None."""
    for name in unused_batch_hooks(cls):
        setattr(cls, name, None)
    return cls


def skip_unused_batch_hooks_of(callback: pl.Callback) -> pl.Callback:
    """The same for one instance of any callback class (e.g. Lightning's ``LearningRateMonitor``, which acts
    in one per-batch hook and inherits the other five training hooks): the instance's attribute shadows the
    class's empty method; the class, and every other instance of it, are untouched."""
    bound = vars(callback) if hasattr(callback, "__dict__") else {}
    for name in unused_batch_hooks(type(callback)):
        if name in bound:  # set on the instance (Lightning's LambdaCallback, a hook bound in __init__): kept
            continue
        try:
            setattr(callback, name, None)
        except (AttributeError, TypeError):  # a frozen or slotted callback: dispatched as before
            return callback
    return callback


def dispatched_batch_hooks(callback: pl.Callback) -> list[str]:
    """The per-batch hooks Lightning calls on ``callback`` (those that are callable)."""
    return [name for name in PER_BATCH_HOOKS if callable(getattr(callback, name, None))]
