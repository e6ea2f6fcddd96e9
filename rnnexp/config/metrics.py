"""Metric names a user types (``monitor.metric``, ``optimized_metric``, the scheduler's monitor) are checked
against what the task logs, before training: a typo would otherwise cost an epoch and end in Lightning's
traceback, or a run without results.json."""

from __future__ import annotations

import warnings
from typing import Any

import pytorch_lightning as pl
from omegaconf import DictConfig

from rnnexp.errors import ConfigError

STAGES = ("train", "val", "test")


def logged_names(task: pl.LightningModule) -> set[str]:
    """The names the task's ``log_epoch_metrics`` logs for each stage, plus its best-value tracker: found by
    running that method with ``log`` recording names instead of logging (no trainer, no data)."""
    names: set[str] = set()
    record = lambda name, *args, **kwargs: names.add(name)  # noqa: E731
    original = task.log
    task.log = record  # type: ignore[method-assign]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # computing metrics that saw no update: nothing to warn about
            for stage in STAGES:
                task.log_epoch_metrics(stage)
    finally:
        task.log = original  # type: ignore[method-assign]
    names.add(task.best_tracker()[0])
    return names


def check_metric_names(cfg: DictConfig, task: pl.LightningModule) -> None:
    names = logged_names(task)
    val_names = sorted(n for n in names if n.startswith("val/"))
    keys: list[tuple[str, Any, list[str]]] = [
        ("monitor.metric", (cfg.get("monitor") or {}).get("metric"), val_names)
    ]
    if cfg.get("scheduler") is not None:
        keys.append(("task.scheduler_monitor", cfg.task.get("scheduler_monitor"), val_names))
    keys.append(("optimized_metric", cfg.get("optimized_metric"), sorted(names)))
    for key, value, allowed in keys:
        if value is not None and value not in allowed:
            raise ConfigError(
                f"{key}={value!r} is not a metric this task ({type(task).__name__}) logs"
                + (" at validation" if allowed is val_names else "")
                + f"; it logs {allowed}. Use one of them (e.g. {key}={allowed[0]})."
            )
