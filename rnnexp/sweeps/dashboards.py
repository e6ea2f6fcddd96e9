"""What the dashboards show of a sweep's jobs: TensorBoard run names that say which job is which, the
HParams tab's hyperparameters *with* final metrics, and wandb's mark on pruned trials."""

from __future__ import annotations

import sys
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning.loggers import TensorBoardLogger

from rnnexp.sweeps.jobs import SweepJob, sweep_job

# Config sections whose values are the hyperparameters of a run (paths, loggers and hydra are not).
HPARAM_SECTIONS = ("model", "datamodule", "task", "optimizer", "scheduler", "trainer", "seed")


def name_tensorboard_run(cfg: DictConfig, job: SweepJob | None) -> None:
    """A sweep job's TensorBoard events go to ``<sweep dir>/tensorboard/<job>-<overrides>/``, so
    ``tensorboard --logdir <sweep dir>`` lists runs like ``tensorboard/3-model=gru,lr=0.003``."""
    node = (cfg.get("logger") or {}).get("tensorboard")
    if job is None or not isinstance(node, DictConfig):
        return
    with open_dict(node):
        node.save_dir = str(job.sweep_dir / "tensorboard")
        node.name = ""
        node.version = job.label


def flat_hparams(cfg: DictConfig) -> dict[str, Any]:
    """The run's hyperparameters as ``{"model.hidden_size": 32, ...}`` (scalars; None and lists as text)."""
    values = OmegaConf.to_container(cfg, resolve=True)
    flat: dict[str, Any] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if not str(key).startswith("_"):
                    walk(f"{prefix}.{key}" if prefix else str(key), value)
        else:
            flat[prefix] = node if isinstance(node, bool | int | float | str) else str(node)

    for section in HPARAM_SECTIONS:
        if section in values:
            walk(section, values[section])
    return flat


def log_hparams_with_metrics(loggers: list[Any], cfg: DictConfig, results: dict[str, Any]) -> None:
    """Write TensorBoard's HParams record: hyperparameters, the trial state and the final metrics (whose
    values TensorBoard reads from the run's own scalars). Lightning writes it only without metrics."""
    metrics = {**results["val"], **results["test"]}
    writers = [logger for logger in loggers if isinstance(logger, TensorBoardLogger)]
    if not metrics or not writers:  # not importing TensorBoard (~0.4 s) for a run that does not log to it
        return
    from torch.utils.tensorboard.summary import hparams

    environment = {f"environment.{k}": v for k, v in (results.get("environment") or {}).items()}
    params = {
        **flat_hparams(cfg),
        **{k: v if isinstance(v, bool | int | float | str) else str(v) for k, v in environment.items()},
        "trial_state": results.get("status", "completed"),
    }
    if (job := sweep_job(cfg)) is not None:  # replicates share a group: sort or filter the HParams rows by it
        params["group"] = job.group(list(cfg.get("replicate_keys") or ["seed"]))
    for logger in writers:
        writer = logger.experiment._get_file_writer()
        for summary in hparams(params, metrics):
            writer.add_summary(summary)
        writer.flush()


def mark_pruned_in_wandb() -> None:
    """Tag the open wandb run ``pruned`` (and ``trial_state`` in its summary) before it is finished."""
    wandb = sys.modules.get("wandb")
    run = getattr(wandb, "run", None) if wandb is not None else None
    if run is not None:
        run.tags = (*run.tags, "pruned")
        run.summary["trial_state"] = "pruned"
