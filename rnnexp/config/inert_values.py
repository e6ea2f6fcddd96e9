"""Values that have no effect: "key K acts only when <condition on other keys>", as one table of rules.

A value the run would ignore (``model.dropout=0.5`` with one layer: torch applies dropout between stacked
layers only) must not be recorded as if it acted, in config.yaml, the checkpoint or a sweep's tables. A single
run (train.py, a grid job) is refused before any data is read (``check_inert_values``, called by
``check_config``); rnnexp's Optuna sweeper asks ``unused_keys`` after drawing a trial's other keys and does not
draw a key that could not act: the trial runs with the key's neutral value and records it as not drawn.

Each rule's condition reads the composed config only (values and class attributes of the configured
``_target_``), never the data. A key whose value is its rule's ``neutral`` value (dropout 0, nonlinearity
null) is always accepted: the group files set it for every choice.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from rnnexp.errors import ConfigError

MISSING = object()


def select(cfg: DictConfig, key: str, default: Any = MISSING) -> Any:
    """The value at ``key`` (None-safe; an unresolvable interpolation reads as missing)."""
    return OmegaConf.select(cfg, key, default=default, throw_on_resolution_failure=False)


def class_attribute(cfg: DictConfig, key: str, name: str) -> Any:
    """A class-level attribute of the class ``<key>._target_`` names (None when unknown or not a class)."""
    target = select(cfg, f"{key}._target_", None)
    try:
        cls = hydra.utils.get_class(target) if isinstance(target, str) else None
    except Exception:
        return None  # check_node names an unimportable _target_
    return getattr(cls, name, None) if cls is not None else None


def optimizer_class(cfg: DictConfig) -> str:
    return str(select(cfg, "optimizer._target_", "")).rsplit(".", 1)[-1]


@dataclass(frozen=True)
class Rule:
    """``key`` acts only when ``acts(cfg)``; ``neutral`` values (what the key means when it is "off") are
    accepted anywhere. ``why`` finishes "<key>=<value> has no effect here: ..."; ``fix`` is the one-line
    remedy."""

    key: str
    neutral: tuple[Any, ...]
    acts: Callable[[DictConfig], bool]
    why: str
    fix: str

    def applies(self, cfg: DictConfig) -> bool:
        """The key is in the config (its group is chosen) and could act."""
        return select(cfg, self.key) is MISSING or self.acts(cfg)

    def is_inert(self, cfg: DictConfig) -> bool:
        value = select(cfg, self.key)
        return value is not MISSING and not is_neutral(value, self.neutral) and not self.acts(cfg)


def is_neutral(value: Any, neutral: tuple[Any, ...]) -> bool:
    return any((value == n and type(value) is not bool) or value is n for n in neutral)


def momentum_on(cfg: DictConfig) -> bool:
    momentum = select(cfg, "optimizer.momentum", 0)
    return optimizer_class(cfg) != "SGD" or (momentum is not None and momentum != 0)


def sampling(cfg: DictConfig) -> bool:
    length = select(cfg, "task.sample_length", None)
    return not isinstance(length, int) or length > 0  # a bad length is the task's to name


def on_cuda(cfg: DictConfig) -> bool:
    accelerator = select(cfg, "trainer.accelerator", "auto")
    return accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())


# Every precision but fp16 autocast, which Lightning turns into bf16-mixed on a CPU without saying so.
NOT_FP16_MIXED = ("32-true", "32", 32, "64-true", "64", 64, "bf16-mixed", "bf16", "16-true", "bf16-true")

RULES: tuple[Rule, ...] = (
    Rule(
        "model.dropout",
        (0, 0.0),
        lambda cfg: (
            not isinstance(select(cfg, "model.num_layers", 1), int) or select(cfg, "model.num_layers") >= 2
        ),
        "dropout is applied between stacked recurrent layers only, and model.num_layers is {model.num_layers}",
        "set model.num_layers>=2, or model.dropout=0",
    ),
    Rule(
        "model.nonlinearity",
        (None,),
        lambda cfg: select(cfg, "model.cell") == "rnn",
        "only torch's fused rnn cell takes a nonlinearity, and model.cell is {model.cell} (other cells take "
        "theirs in model.cell_options, or have none)",
        "use model=rnn, or model.nonlinearity=null",
    ),
    Rule(
        "model.pooling",
        ("last",),
        lambda cfg: class_attribute(cfg, "datamodule", "per_step") is not True,
        "pooling reads one vector out of a whole sequence, but the datamodule ({datamodule._target_}) asks for "
        "an output at every step, so nothing is pooled",
        "model.pooling=last, or a datamodule with one target per sequence",
    ),
    Rule(
        "trainer.gradient_clip_algorithm",
        ("norm",),
        lambda cfg: select(cfg, "trainer.gradient_clip_val", None) not in (None, 0, 0.0),
        "it says how gradients are clipped, and trainer.gradient_clip_val is {trainer.gradient_clip_val} "
        "(no clipping)",
        "set trainer.gradient_clip_val (e.g. 0.5), or trainer.gradient_clip_algorithm=norm",
    ),
    Rule(
        "trainer.precision",
        NOT_FP16_MIXED,
        on_cuda,
        "fp16 autocast runs on a CUDA GPU only; on this run's device (trainer.accelerator="
        "{trainer.accelerator}, no CUDA GPU) Lightning runs bf16-mixed instead",
        "trainer.precision=bf16-mixed (what the CPU runs) or 32-true, or run on a GPU (trainer=gpu)",
    ),
    Rule(
        "optimizer.dampening",
        (0, 0.0),
        momentum_on,
        "dampening scales SGD's momentum buffer, and optimizer.momentum is {optimizer.momentum}",
        "set optimizer.momentum>0, or optimizer.dampening=0",
    ),
    Rule(
        "optimizer.nesterov",
        (False,),
        momentum_on,
        "Nesterov's look-ahead is a form of momentum, and optimizer.momentum is {optimizer.momentum}",
        "set optimizer.momentum>0, or optimizer.nesterov=false",
    ),
    Rule(
        "scheduler.step_size",
        (1,),
        lambda cfg: select(cfg, "scheduler.gamma", 1.0) != 1,
        "StepLR multiplies the learning rate by scheduler.gamma every step_size validations, and "
        "scheduler.gamma is {scheduler.gamma} (a constant rate)",
        "set scheduler.gamma<1 (e.g. 0.5), or scheduler.step_size=1",
    ),
    Rule(
        "task.sample_top_k",
        (None,),
        sampling,
        "it shapes the text sampled after each validation, and task.sample_length is {task.sample_length} "
        "(no sample)",
        "set task.sample_length>0, or task.sample_top_k=null",
    ),
    Rule(
        "task.sample_prompt",
        (None,),
        sampling,
        "it starts the text sampled after each validation, and task.sample_length is {task.sample_length} "
        "(no sample)",
        "set task.sample_length>0, or task.sample_prompt=null",
    ),
)
RULES_BY_KEY = {rule.key: rule for rule in RULES}


def inert_keys(cfg: DictConfig) -> list[Rule]:
    """The rules whose key holds a (non-neutral) value that would have no effect in ``cfg``."""
    return [rule for rule in RULES if rule.is_inert(cfg)]


def unused_keys(cfg: DictConfig, keys: list[str]) -> list[str]:
    """Of ``keys`` (a search's keys), those that could not act in ``cfg`` whatever their value: a sweeper
    does not draw them, and runs the trial with ``neutral_value``."""
    return [key for key in keys if key in RULES_BY_KEY and not RULES_BY_KEY[key].applies(cfg)]


def neutral_value(key: str) -> Any:
    return RULES_BY_KEY[key].neutral[-1] if key in RULES_BY_KEY else None


def describe(rule: Rule, cfg: DictConfig) -> str:
    """One paragraph: the key, its value, why it has no effect (``{key}`` in ``rule.why`` reads the config),
    the fix."""

    def value_of(match: re.Match) -> str:
        value = select(cfg, match.group(1), None)
        return "null" if value is None else str(value)

    why = re.sub(r"\{([\w.]+)\}", value_of, rule.why)
    return (
        f"{rule.key}={select(cfg, rule.key)!r} has no effect here: {why}; the run would record the value as "
        f"if it acted. Fix: {rule.fix}."
    )


def check_inert_values(cfg: DictConfig) -> None:
    """Refuse the first value that would have no effect (one paragraph: key, value, why, fix)."""
    for rule in inert_keys(cfg):
        raise ConfigError(describe(rule, cfg))
