"""``check_config``: every group a user can set (seed, trainer, optimizer, scheduler, callbacks, logger,
monitor), checked before any data is read; ``check_causality``: a network that may read its targets.

Datamodule, model and task keys are checked by the classes they construct (also before any data is read);
what a key may hold is decided here per key, so a wrong value names itself instead of surfacing later as a
torch or Lightning traceback."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from typing import Any

import hydra
import torch
from omegaconf import DictConfig, ListConfig, OmegaConf

from rnnexp.config.cadence import check_validation_consumers
from rnnexp.config.inert_values import check_inert_values
from rnnexp.config.values import (
    fail,
    is_int,
    is_number,
    require_bool,
    require_choice,
    require_int,
    require_number,
)
from rnnexp.errors import ConfigError

MODES = ("min", "max")
MISSING_KEY = object()
ACCELERATORS = ("auto", "cpu", "gpu", "cuda", "mps", "tpu")
PRECISIONS = (
    "32-true",
    "32",
    32,
    "16-mixed",
    "bf16-mixed",
    "16-true",
    "bf16-true",
    "64-true",
    "64",
    64,
    "16",
    16,
    "bf16",
)
MAX_TIME = re.compile(r"^\d+:\d{1,2}:\d{1,2}:\d{1,2}$")  # DD:HH:MM:SS, as Lightning's Timer reads it

Rule = Callable[[str, Any], None]


def check_config(cfg: DictConfig) -> None:
    """Refuse the first bad value with a ConfigError naming its key; called by ``train`` before anything."""
    require_int("seed", cfg.get("seed"), 0, 42, allow=[None])
    require_int("num_threads", cfg.get("num_threads"), 1, 1, allow=[None])  # torch threads; null: all CPUs
    monitor = cfg.get("monitor")
    if monitor is not None:
        require_choice("monitor.mode", monitor.get("mode"), MODES)
        if not isinstance(monitor.get("metric"), str) or not monitor.metric:
            fail("monitor.metric", monitor.get("metric"), "a logged metric's name", "val/loss")
    check_trainer(cfg.trainer)
    check_node("optimizer", cfg.get("optimizer"), OPTIMIZER_RULES)
    check_node("scheduler", cfg.get("scheduler"), SCHEDULER_RULES)
    for group, rules in (("callbacks", CALLBACK_RULES), ("logger", LOGGER_RULES)):
        for name, node in (cfg.get(group) or {}).items():
            if isinstance(node, DictConfig) and "_target_" in node:
                check_node(f"{group}.{name}", node, rules)
    check_validation_consumers(cfg)
    check_inert_values(cfg)  # a value that would have no effect (rnnexp.config.inert_values)
    for key in ("test", "print_config"):
        require_bool(key, cfg.get(key, False))
    check_replicate_keys(cfg)


def check_replicate_keys(cfg: DictConfig) -> None:
    """``replicate_keys`` (what makes runs replicates of one group in a comparison) must name config keys."""
    keys = cfg.get("replicate_keys")
    if keys is None:
        return
    if not isinstance(keys, ListConfig) or not all(isinstance(k, str) and k for k in keys):
        fail("replicate_keys", keys, "a list of config keys whose values tell replicates apart", "[seed]")
    for key in keys:
        if OmegaConf.select(cfg, key, default=MISSING_KEY) is MISSING_KEY:
            raise ConfigError(
                f"replicate_keys names {key!r}, which is not a key of the config; name keys that exist, e.g. "
                "replicate_keys=[seed] or replicate_keys=[seed,datamodule.seed]."
            )


def check_trainer(trainer: DictConfig) -> None:
    budgets = (trainer.get("max_epochs"), trainer.get("max_steps", -1), trainer.get("max_time"))
    max_epochs, max_steps, max_time = budgets
    if max_epochs == 0:
        raise ConfigError(
            "trainer.max_epochs=0 would train nothing (no step, no validation, no results); give a number of "
            "epochs (e.g. trainer.max_epochs=10), or -1 for no epoch limit with trainer.max_steps or "
            "trainer.max_time as the budget."
        )
    require_int("trainer.max_epochs", max_epochs, 1, 10, allow=[-1, None])
    require_int("trainer.max_steps", max_steps, 1, 1000, allow=[-1])
    check_max_time(max_time)
    if max_epochs == -1 and max_steps == -1 and max_time is None:
        raise ConfigError(
            "trainer.max_epochs=-1 with trainer.max_steps=-1 and trainer.max_time=null would never end; set "
            "one budget (e.g. trainer.max_steps=5000 or trainer.max_time=00:02:00:00)."
        )
    check_cadence(trainer.get("val_check_interval", 1.0), trainer.get("check_val_every_n_epoch", 1))
    limit = trainer.get("limit_val_batches", 1.0)
    if is_int(limit):
        require_int("trainer.limit_val_batches", limit, 0, 32)
    else:
        require_number("trainer.limit_val_batches", limit, 1.0, low=0.0, high=1.0)
    require_number(
        "trainer.gradient_clip_val", trainer.get("gradient_clip_val"), 1.0, low=0.0, allow_none=True
    )
    require_choice(
        "trainer.gradient_clip_algorithm", trainer.get("gradient_clip_algorithm", "norm"), ("norm", "value")
    )
    require_int("trainer.log_every_n_steps", trainer.get("log_every_n_steps", 50), 1, 10)
    require_int("trainer.num_sanity_val_steps", trainer.get("num_sanity_val_steps", 2), -1, 1)
    require_int("trainer.accumulate_grad_batches", trainer.get("accumulate_grad_batches", 1), 1, 2)
    if trainer.get("deterministic") not in (True, False, None, "warn"):
        fail("trainer.deterministic", trainer.deterministic, "true, false or warn", "true")
    fast_dev_run = trainer.get("fast_dev_run", False)
    if not isinstance(fast_dev_run, bool):
        require_int("trainer.fast_dev_run", fast_dev_run, 0, "true")
    check_device(trainer)


def check_max_time(value: Any) -> None:
    if value is None:
        return
    if isinstance(value, str) and MAX_TIME.match(value) and any(int(part) for part in value.split(":")):
        return
    fail(
        "trainer.max_time",
        value,
        'a duration "DD:HH:MM:SS" above zero, or null for no time limit',
        "00:01:30:00",
    )


def check_cadence(interval: Any, every_n_epochs: Any) -> None:
    """An epoch cadence (a fraction of an epoch, every N epochs) or a step cadence (every N steps, counted
    across epoch ends, which needs check_val_every_n_epoch=null)."""
    require_int("trainer.check_val_every_n_epoch", every_n_epochs, 1, 1, allow=[None])
    if is_int(interval):
        require_int("trainer.val_check_interval", interval, 1, 40)
        if every_n_epochs is not None:
            raise ConfigError(
                f"trainer.val_check_interval={interval} (every {interval} training steps) needs "
                f"trainer.check_val_every_n_epoch=null, so that steps are counted across epoch ends (it is "
                f"{every_n_epochs}); or give a fraction of an epoch, e.g. trainer.val_check_interval=0.5."
            )
        return
    require_number("trainer.val_check_interval", interval, 1.0, low=0.0, high=1.0, low_open=True)
    if every_n_epochs is None:
        raise ConfigError(
            f"trainer.val_check_interval={interval} is a fraction of an epoch, so it needs "
            "trainer.check_val_every_n_epoch to be an integer (e.g. 1); or validate every N steps with "
            "trainer.val_check_interval=<integer N> and trainer.check_val_every_n_epoch=null."
        )


def check_device(trainer: DictConfig) -> None:
    accelerator = trainer.get("accelerator", "auto")
    require_choice("trainer.accelerator", accelerator, ACCELERATORS)
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"trainer.accelerator={accelerator} but torch sees no CUDA GPU on this machine; use trainer=cpu "
            "(or trainer.accelerator=auto), or run where a GPU is visible."
        )
    devices = trainer.get("devices", "auto")
    ok = devices == "auto" or (is_int(devices) and (devices == -1 or devices >= 1))
    ok = ok or (isinstance(devices, ListConfig | list) and all(is_int(d) and d >= 0 for d in devices))
    ok = ok or (isinstance(devices, str) and re.fullmatch(r"-1|\d+(,\d*)*", devices) is not None)
    if not ok:
        fail("trainer.devices", devices, "a count >= 1, -1 (all), auto, or a list of device indices", 1)
    if trainer.get("precision", "32-true") not in PRECISIONS:
        require_choice("trainer.precision", trainer.precision, [p for p in PRECISIONS if isinstance(p, str)])


def betas(key: str, value: Any) -> None:
    if not (
        isinstance(value, ListConfig | list | tuple)
        and len(value) == 2
        and all(is_number(b) and 0 <= b < 1 for b in value)
    ):
        fail(key, value, "two numbers in [0, 1), [beta1, beta2]", "[0.9,0.999]")


def positive(example: Any) -> Rule:
    return lambda key, value: require_number(key, value, example, low=0.0, low_open=True)


def non_negative(example: Any) -> Rule:
    return lambda key, value: require_number(key, value, example, low=0.0)


def fraction_open(example: Any) -> Rule:
    return lambda key, value: require_number(
        key, value, example, low=0.0, high=1.0, low_open=True, high_open=True
    )


def integer(minimum: int, example: Any, allow: tuple[Any, ...] = ()) -> Rule:
    return lambda key, value: require_int(key, value, minimum, example, allow=allow)


def choice(*choices: Any) -> Rule:
    return lambda key, value: require_choice(key, value, choices)


def boolean(key: str, value: Any) -> None:
    require_bool(key, value)


OPTIMIZER_RULES: dict[str, Rule] = {
    "lr": positive(1e-3),
    "weight_decay": non_negative(1e-4),
    "momentum": lambda key, value: require_number(key, value, 0.9, low=0.0, high=1.0, high_open=True),
    "dampening": lambda key, value: require_number(key, value, 0.0, low=0.0, high=1.0, high_open=True),
    "betas": betas,
    "eps": positive(1e-8),
    "alpha": fraction_open(0.99),
    "nesterov": boolean,
    "amsgrad": boolean,
}
SCHEDULER_RULES: dict[str, Rule] = {
    "T_max": integer(1, 20, allow=(None,)),  # null: the run's length (rnnexp.tasks.base)
    "eta_min": non_negative(1e-5),
    "mode": choice(*MODES),
    "factor": fraction_open(0.5),
    "patience": integer(0, 2),
    "threshold": non_negative(1e-4),
    "cooldown": integer(0, 0),
    "min_lr": non_negative(0.0),
    "step_size": integer(1, 10),
    "gamma": positive(0.5),
}
CALLBACK_RULES: dict[str, Rule] = {
    "patience": integer(0, 5),  # early stopping: validations without improvement
    "min_delta": non_negative(0.0),
    "mode": choice(*MODES),
    "check_finite": boolean,
    "save_top_k": integer(-1, 1),
    "save_last": boolean,
    "every_n_train_steps": integer(0, 500, allow=(None,)),
    "every_n_epochs": integer(0, 1, allow=(None,)),
    "logging_interval": choice("epoch", "step", None),
    "leave": boolean,
    "max_consecutive_skips": integer(0, 10),
}
LOGGER_RULES: dict[str, Rule] = {
    "save_dir": lambda key, value: (
        None if isinstance(value, str) and value else fail(key, value, "a folder path", "logs")
    ),
    "flush_logs_every_n_steps": integer(1, 100),
    "log_model": choice(False, True, "all"),
    "default_hp_metric": boolean,
}


def check_node(prefix: str, node: DictConfig | None, rules: Mapping[str, Rule]) -> None:
    """The node's class can be imported and takes every key given; each key with a rule obeys it."""
    if node is None:
        return
    target = node.get("_target_")
    try:
        cls = hydra.utils.get_object(target)
    except Exception:
        fail(f"{prefix}._target_", target, "an importable class (check the spelling and the package)", None)
    accepted = accepted_keywords(cls)
    for key, value in node.items():
        if str(key).startswith("_"):
            continue
        if accepted is not None and key not in accepted:
            raise ConfigError(
                f"{prefix}.{key}={value!r} is not an option of {target}; its options are "
                f"{sorted(accepted)}. Remove it (~{prefix}.{key}) or fix its spelling."
            )
        if key in rules:
            rules[key](f"{prefix}.{key}", value)


def accepted_keywords(cls: Any) -> set[str] | None:
    """The keyword arguments a class's constructor takes; None when it takes any (``**kwargs``)."""
    try:
        parameters = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return {p.name for p in parameters}


def check_causality(spec: Any, datamodule: Any) -> None:
    """A bidirectional network reads every input of a sequence before it predicts any step; when a step's
    target is a later input of the same sequence (the datamodule says so), it would read its answer."""
    if getattr(spec, "bidirectional", False) and getattr(datamodule, "targets_are_future_inputs", False):
        what = getattr(
            datamodule, "target_description", "each step's target is a later input of the same sequence"
        )
        raise ConfigError(
            f"model.bidirectional=true cannot be used here: {what}, and the backward direction reads the "
            "sequence from its end, so it would see the value it must predict and report an error far below "
            f"what a causal model can reach. Use model.bidirectional=false"
            f"{getattr(datamodule, 'causal_alternative', '')}."
        )
