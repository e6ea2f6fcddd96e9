"""The validation clock's config side: every setting that would make a consumer of validation results (the
LR scheduler, early stopping, the best checkpoint, pruning, the text sample) act on another clock than the
validations Lightning runs, or leave it with no validation at all, is refused here, before any data is read.

The trainer keys that move validations (``check_val_every_n_epoch``, ``val_check_interval``,
``num_sanity_val_steps``, ``max_epochs``/``max_steps``/``max_time``) are accepted in every combination
``check_trainer`` lets through: the consumers follow them (``rnnexp.lifecycle.validation_clock``).
"""

from __future__ import annotations

from typing import Any

import hydra
from omegaconf import DictConfig

from rnnexp.errors import ConfigError

MODEL_CHECKPOINT = "pytorch_lightning.callbacks.ModelCheckpoint"
EARLY_STOPPING = "pytorch_lightning.callbacks.EarlyStopping"


def check_validation_consumers(cfg: DictConfig) -> None:
    """Refuse a config whose validation results would not reach their consumers once per validation."""
    limit = cfg.trainer.get("limit_val_batches", 1.0)
    if limit == 0:
        raise ConfigError(
            f"trainer.limit_val_batches={limit} turns validation off, but the run is judged by it: the best "
            "checkpoint, early stopping, the LR scheduler, pruning, the objective in results.json and the "
            "test of the best checkpoint all need validation values. Give a fraction of the validation "
            "split (e.g. trainer.limit_val_batches=0.25) or a number of batches (e.g. 8)."
        )
    for name, node in (cfg.get("callbacks") or {}).items():
        if not isinstance(node, DictConfig) or "_target_" not in node:
            continue
        cls = target_class(node)
        if cls is not None and is_subclass(cls, MODEL_CHECKPOINT):
            check_model_checkpoint(f"callbacks.{name}", node)
        elif (
            cls is not None
            and is_subclass(cls, EARLY_STOPPING)
            and node.get("check_on_train_epoch_end") is not False
        ):
            raise ConfigError(
                f"callbacks.{name}.check_on_train_epoch_end={node.get('check_on_train_epoch_end')!r}: "
                "early stopping must count at each validation, not at epoch ends (an epoch without a "
                "validation would be counted on a stale or missing value, and a step cadence several "
                f"times per epoch would count once). Set callbacks.{name}.check_on_train_epoch_end=false."
            )


def check_model_checkpoint(key: str, node: DictConfig) -> None:
    if node.get("save_last"):
        raise ConfigError(
            f"{key}.save_last={node.save_last!r}: Lightning's save_last rewrites last.ckpt only when this "
            "callback also saves a top-k file, so last.ckpt would not be the newest state. rnnexp writes "
            f"checkpoints/last.ckpt itself (callbacks.last_checkpoint); set {key}.save_last=false."
        )
    if not node.get("monitor"):
        return  # a periodic checkpoint (step_checkpoint): its own clock is the point
    clocks = {
        "every_n_train_steps": node.get("every_n_train_steps") in (None, 0),
        "train_time_interval": node.get("train_time_interval") is None,
        "every_n_epochs": node.get("every_n_epochs") in (None, 1),
        "save_on_train_epoch_end": node.get("save_on_train_epoch_end") is False,
    }
    for option, ok in clocks.items():
        if not ok:
            needs = "false" if option == "save_on_train_epoch_end" else "null"
            raise ConfigError(
                f"{key}.{option}={node.get(option)!r}: the best checkpoint by {key}.monitor is decided at "
                f"each validation, on that validation's value; {option} would decide on another clock (on a "
                f"stale value, or skipping validations). Set {key}.{option}={needs}; for periodic "
                "checkpoints use callbacks.step_checkpoint (every_n_train_steps)."
            )


def target_class(node: DictConfig) -> type | None:
    try:
        cls = hydra.utils.get_class(node._target_)
    except Exception:
        return None  # check_node names an unimportable _target_
    return cls


def is_subclass(cls: Any, path: str) -> bool:
    return isinstance(cls, type) and issubclass(cls, hydra.utils.get_class(path))
