"""The training job: compose objects from the config, fit, test the best checkpoint, write results.json."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
import torch
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf

from rnnexp.checkpoints import check_fits
from rnnexp.config.checks import check_causality, check_config
from rnnexp.distributed import ReportProgress, fit_progress, in_multirun, strategy_for_launch
from rnnexp.errors import RnnexpError
from rnnexp.lifecycle.run_end import ValidateAtRunEnd, validated_at_step
from rnnexp.network import RecurrentSpec
from rnnexp.resume import config_changes, continue_csv_logs, resolve_ckpt_path

log = logging.getLogger(__name__)


def instantiate(node: Any, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate`` that surfaces rnnexp's own errors instead of Hydra's wrapper."""
    try:
        return hydra.utils.instantiate(node, **kwargs)
    except InstantiationException as err:
        cause = err.__cause__
        if isinstance(cause, RnnexpError):
            raise cause from None
        raise


def instantiate_group(group: DictConfig | None) -> list[Any]:
    """Every entry of a group like ``callbacks`` or ``logger`` that has a ``_target_``."""
    if not group:
        return []
    return [
        instantiate(node) for node in group.values() if isinstance(node, DictConfig) and "_target_" in node
    ]


def build_task(
    cfg: DictConfig, spec: RecurrentSpec, datamodule: pl.LightningDataModule
) -> pl.LightningModule:
    """The task's network takes its sizes from the datamodule, never from the user."""
    task_class = hydra.utils.get_class(cfg.task._target_)
    net = task_class.build_net(spec, datamodule, **task_class.net_options(cfg.task))
    optimizer, scheduler = instantiate(cfg.optimizer), instantiate(cfg.get("scheduler"))
    return instantiate(cfg.task, net=net, optimizer=optimizer, scheduler=scheduler)


def scalar_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    return {
        key: float(value) for key, value in sorted(metrics.items()) if torch.as_tensor(value).numel() == 1
    }


def supported_precision(requested: str, accelerator: str, bf16_supported: bool) -> str:
    """``trainer=gpu`` asks for bf16 autocast; a GPU without bf16 (before Ampere) gets fp16 autocast instead."""
    if requested.startswith("bf16") and accelerator in ("gpu", "cuda") and not bf16_supported:
        fallback = requested.replace("bf16", "16")
        log.warning("This GPU has no bf16 support: trainer.precision=%s becomes %s.", requested, fallback)
        return fallback
    return requested


def train(cfg: DictConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run one experiment; return ``(results, objects)``. ``results`` is also written to results.json."""
    started = time.time()
    check_config(cfg)  # every value a user typed, before anything is built or read
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    if cfg.get("seed") is not None:
        pl.seed_everything(cfg.seed, workers=True)

    # Validate and build the cheap objects first: a bad model.* value fails before any data is read.
    spec: RecurrentSpec = instantiate(cfg.model)
    resume_from = resolve_ckpt_path(cfg.get("ckpt_path"), output_dir, in_multirun())
    datamodule: pl.LightningDataModule = instantiate(cfg.datamodule)
    check_causality(spec, datamodule)
    callbacks = [*instantiate_group(cfg.get("callbacks")), ReportProgress(), ValidateAtRunEnd()]
    loggers = instantiate_group(cfg.get("logger"))
    strategy = strategy_for_launch(cfg.trainer.get("strategy", "auto"), in_multirun())
    bf16_supported = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    precision = supported_precision(str(cfg.trainer.precision), str(cfg.trainer.accelerator), bf16_supported)
    trainer: pl.Trainer = instantiate(
        cfg.trainer, callbacks=callbacks, logger=loggers or False, strategy=strategy, precision=precision
    )
    task = build_task(cfg, spec, datamodule)
    if resume_from is not None:
        checkpoint = check_fits(resume_from, task)
        log.info(
            "Resuming from %s (epoch %d, global step %d)",
            resume_from,
            checkpoint["epoch"],
            checkpoint["global_step"],
        )
        if trainer.is_global_zero:
            if changes := config_changes(output_dir / "config.yaml", cfg):
                log.warning("Resuming %s with a changed config: %s", output_dir, "; ".join(changes))
            continue_csv_logs(trainer.loggers, checkpoint["global_step"])

    if trainer.is_global_zero:
        OmegaConf.save(cfg, output_dir / "config.yaml", resolve=True)
    for logger in trainer.loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))

    trainer.fit(task, datamodule=datamodule, ckpt_path=resume_from, weights_only=True)
    epochs, global_step = fit_progress(trainer)
    if validated_at_step(trainer) != global_step:
        # The run ended where no validation could run (e.g. check_val_every_n_epoch skipped the last epoch):
        # validate once now, so the val metrics and optimized_metric describe the final weights.
        log.info("No validation ran at the end of training (step %d); validating once now.", global_step)
        trainer.validate(task, datamodule=datamodule, weights_only=True)
    fit_metrics = scalar_metrics(trainer.callback_metrics)
    best_ckpt = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""

    test_metrics: dict[str, float] = {}
    if cfg.get("test"):
        if not best_ckpt:
            log.warning("No best checkpoint was saved; testing the weights as they are after training.")
        trainer.test(task, datamodule=datamodule, ckpt_path=best_ckpt or None, weights_only=True)
        test_metrics = {
            k: v for k, v in scalar_metrics(trainer.callback_metrics).items() if k.startswith("test/")
        }

    all_metrics = {**fit_metrics, **test_metrics}
    objective_name = cfg.get("optimized_metric")
    if objective_name and objective_name not in all_metrics:
        raise RnnexpError(
            f"optimized_metric={objective_name!r} was not logged; logged metrics are {sorted(all_metrics)}."
        )
    results: dict[str, Any] = {
        "run_dir": str(output_dir),
        "optimized_metric": objective_name,
        "objective": all_metrics.get(objective_name) if objective_name else None,
        "train": {k: v for k, v in fit_metrics.items() if k.startswith("train/")},
        "val": {k: v for k, v in fit_metrics.items() if k.startswith("val/")},
        "test": test_metrics,
        "best_ckpt_path": best_ckpt,
        "epochs": epochs,
        "global_step": global_step,
        "duration_s": round(time.time() - started, 2),
    }
    confusion = getattr(task, "test_confusion", None)
    if confusion is not None:
        results["test_confusion_matrix"] = confusion.cpu().tolist()
    if trainer.is_global_zero:  # under DDP every rank gets here with the same (synced) metrics
        (output_dir / "results.json").write_text(json.dumps(results, indent=2))
    return results, {"cfg": cfg, "datamodule": datamodule, "task": task, "trainer": trainer}
