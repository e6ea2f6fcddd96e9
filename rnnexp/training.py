"""The training job: compose objects from the config, fit, test the best checkpoint, write results.json."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning.callbacks import ModelCheckpoint

from rnnexp.config.checks import check_causality, check_config
from rnnexp.config.metrics import check_metric_names
from rnnexp.errors import RnnexpError
from rnnexp.lifecycle.checkpoint import check_fits
from rnnexp.lifecycle.environment import apply_threads, run_environment
from rnnexp.lifecycle.launch import ReportProgress, fit_progress, in_multirun, strategy_for_launch
from rnnexp.lifecycle.output_dir import make_writable_dir
from rnnexp.lifecycle.resume import config_changes, continue_csv_logs, resolve_ckpt_path
from rnnexp.lifecycle.run_end import ValidateAtRunEnd, validated_at_step
from rnnexp.lifecycle.step_hooks import skip_unused_batch_hooks_of
from rnnexp.lifecycle.validation_size import CheckValidationBatches
from rnnexp.models.recurrent import RecurrentSpec
from rnnexp.sweeps.dashboards import log_hparams_with_metrics
from rnnexp.sweeps.pruning import pruned_at

log = logging.getLogger(__name__)

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"  # the repository's configs, as train.py uses them


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


def best_checkpoint_path(trainer: pl.Trainer) -> str:
    """The file of the best validation by the monitor ("" when no such checkpoint callback or file)."""
    for callback in trainer.checkpoint_callbacks:
        if isinstance(callback, ModelCheckpoint) and callback.monitor:
            return callback.best_model_path
    return ""


@dataclass
class Experiment:
    """The objects one run is made of, composed from its config."""

    spec: RecurrentSpec
    datamodule: pl.LightningDataModule
    trainer: pl.Trainer
    task: pl.LightningModule


def build_experiment(cfg: DictConfig, callbacks: list[pl.Callback] | None = None) -> Experiment:
    """Compose the run's objects as ``train`` does (the benchmarks measure exactly this path). The cheap,
    validated objects come first: a bad ``model.*`` value fails before any data is read. ``callbacks``
    replaces the configured ones (a benchmark keeps only those that act every step)."""
    spec: RecurrentSpec = instantiate(cfg.model)
    datamodule: pl.LightningDataModule = instantiate(cfg.datamodule)
    check_causality(spec, datamodule)
    if callbacks is None:
        callbacks = instantiate_group(cfg.get("callbacks"))
    loggers = instantiate_group(cfg.get("logger"))
    strategy = strategy_for_launch(cfg.trainer.get("strategy", "auto"), in_multirun())
    bf16_supported = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    precision = supported_precision(str(cfg.trainer.precision), str(cfg.trainer.accelerator), bf16_supported)
    trainer: pl.Trainer = instantiate(
        cfg.trainer,
        callbacks=[*callbacks, ReportProgress(), ValidateAtRunEnd(), CheckValidationBatches()],
        logger=loggers or False,
        strategy=strategy,
        precision=precision,
    )
    for callback in trainer.callbacks:  # Lightning's and a user's callbacks too, not only rnnexp's
        skip_unused_batch_hooks_of(callback)
    return Experiment(spec, datamodule, trainer, build_task(cfg, spec, datamodule))


def compose_config(overrides: list[str], output_dir: str | Path) -> DictConfig:
    """The config ``python train.py <overrides>`` would get, with every output under ``output_dir``: for
    notebooks, benchmarks and tests that run ``train``/``build_experiment`` in-process."""
    output_dir = Path(output_dir)
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.paths.root_dir = str(output_dir)
        cfg.paths.output_dir = str(output_dir)
        cfg.paths.log_dir = str(output_dir / "logs")
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.print_config = False
    HydraConfig.instance().set_config(cfg)  # lets `${hydra:...}` resolve outside a real Hydra run
    with open_dict(cfg):
        del cfg.hydra  # a real run's job config has no `hydra` node either
    return cfg


def train(cfg: DictConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run one experiment; return ``(results, objects)``. ``results`` is also written to results.json."""
    started = time.time()
    check_config(cfg)  # every value a user typed, before anything is built or read
    output_dir = make_writable_dir(cfg.paths.output_dir, "paths.output_dir")
    if cfg.get("seed") is not None:
        pl.seed_everything(cfg.seed, workers=True)
    apply_threads(cfg.get("num_threads"))  # the config's count, however the run was launched

    resume_from = resolve_ckpt_path(cfg.get("ckpt_path"), output_dir, in_multirun())
    experiment = build_experiment(cfg)
    datamodule, trainer, task = experiment.datamodule, experiment.trainer, experiment.task
    check_metric_names(cfg, task)  # before any training
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
    environment = run_environment(trainer)  # what besides config and seed changes the numbers
    for logger in trainer.loggers:
        logger.log_hyperparams({**OmegaConf.to_container(cfg, resolve=True), "environment": environment})

    trainer.fit(task, datamodule=datamodule, ckpt_path=resume_from, weights_only=True)
    epochs, global_step = fit_progress(trainer)
    if validated_at_step(trainer) != global_step:
        # The run ended where no validation could run (e.g. check_val_every_n_epoch skipped the last epoch):
        # validate once now, so the val metrics and optimized_metric describe the final weights.
        log.info("No validation ran at the end of training (step %d); validating once now.", global_step)
        trainer.validate(task, datamodule=datamodule, weights_only=True)
    fit_metrics = scalar_metrics(trainer.callback_metrics)
    best_ckpt = best_checkpoint_path(trainer)
    pruned_at_validation = pruned_at(trainer)

    test_metrics: dict[str, float] = {}
    if cfg.get("test") and pruned_at_validation is None:  # a pruned trial is not worth a test pass
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
        "status": "completed" if pruned_at_validation is None else "pruned",
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
        "environment": environment,
    }
    if pruned_at_validation is not None:
        results["pruned_at_validation"] = pruned_at_validation
    confusion = getattr(task, "test_confusion", None)
    if confusion is not None:
        results["test_confusion_matrix"] = confusion.cpu().tolist()
        if names := getattr(task, "class_names", None):  # rows and columns, in order (text classification)
            results["test_confusion_classes"] = list(names)
    if trainer.is_global_zero:  # under DDP every rank gets here with the same (synced) metrics
        (output_dir / "results.json").write_text(json.dumps(results, indent=2))
        log_hparams_with_metrics(trainer.loggers, cfg, results)
    return results, {"cfg": cfg, "datamodule": datamodule, "task": task, "trainer": trainer}
