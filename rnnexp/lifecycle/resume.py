"""Resuming an interrupted run in its own run directory.

The whole recipe is Hydra's own: run the same command again with ``ckpt_path=last`` and
``hydra.run.dir=<the interrupted run's directory>`` (``hydra.sweep.dir=<sweep dir>`` for a multirun, whose job
directories are numbered the same way again). ``last`` means the newest checkpoint in that directory's
``checkpoints/``; the run then writes into the same directory and its CSV log continues.
"""

from __future__ import annotations

import csv
import logging
import shlex
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.loggers import CSVLogger, Logger

from rnnexp.errors import ConfigError
from rnnexp.lifecycle.checkpoint import CHECKPOINT_FOLDER, flatten, newest_file, newest_in_run

log = logging.getLogger(__name__)

# Keys that differ between an interrupted run and its resumption by design.
RESUME_KEYS = ("ckpt_path", "print_config")


def resolve_ckpt_path(ckpt_path: Any, run_dir: Path, multirun: bool = False) -> Path | None:
    """The checkpoint that ``ckpt_path`` names: ``last`` (this run directory's newest), a run directory
    (its newest), or a file."""
    if ckpt_path is None:
        return None
    if str(ckpt_path) == "last":
        found = newest_file(run_dir / CHECKPOINT_FOLDER)
        if found is None and multirun:
            log.info("ckpt_path=last: %s has no checkpoint yet, so this job starts from scratch.", run_dir)
        elif found is None:
            raise ConfigError(
                f"ckpt_path=last, but the run directory {run_dir} has no checkpoint in {CHECKPOINT_FOLDER}/. To "
                "resume, also pass the interrupted run's directory: hydra.run.dir=<logs/.../runs/<time>>; "
                "to start afresh, leave ckpt_path out."
            )
        return found
    path = Path(str(ckpt_path)).expanduser()
    if path.is_dir():
        found = newest_in_run(path)
        if found is None:
            raise ConfigError(
                f"ckpt_path={ckpt_path} is a directory without any .ckpt file (nor {CHECKPOINT_FOLDER}/)."
            )
        return found
    if not path.is_file():
        raise ConfigError(
            f"ckpt_path={ckpt_path} does not exist; pass a .ckpt file, a run directory, or `last` (with "
            "hydra.run.dir=<the run's directory>)."
        )
    return path


def config_changes(previous_config: Path, cfg: DictConfig) -> list[str]:
    """``key: old -> new`` for every value that differs from the config the run directory was started with."""
    if not previous_config.is_file():
        return []
    old = flatten(OmegaConf.to_container(OmegaConf.load(previous_config), resolve=True))
    new = flatten(OmegaConf.to_container(cfg, resolve=True))
    return [
        f"{key}: {old.get(key, '<unset>')!r} -> {new.get(key, '<unset>')!r}"
        for key in sorted(set(old) | set(new))
        if old.get(key) != new.get(key) and key.split(".")[0] not in RESUME_KEYS
    ]


def continue_csv_logs(loggers: list[Logger], resumed_step: int) -> None:
    """Keep the interrupted run's ``metrics.csv`` rows up to the checkpoint (later ones are logged again).

    Lightning's CSV logger deletes an existing ``metrics.csv`` when it starts, expecting a fresh directory;
    the rows are read first and written back under the same header, which the logger then appends to.
    """
    for logger in loggers:
        if not isinstance(logger, CSVLogger):
            continue
        path = Path(logger.log_dir) / "metrics.csv"
        header, rows = [], []
        if path.is_file():
            with path.open(newline="") as file:
                reader = csv.DictReader(file)
                header = list(reader.fieldnames or [])
                rows = [row for row in reader if int(float(row["step"])) < resumed_step]
        writer = logger.experiment  # creating it deletes metrics.csv
        if not header:
            continue
        with path.open("w", newline="") as file:
            out = csv.DictWriter(file, fieldnames=header)
            out.writeheader()
            out.writerows(rows)
        writer.metrics_keys = header  # the logger extends this header when new keys appear
        log.info("Continuing %s after step %d (%d earlier rows kept).", path, resumed_step - 1, len(rows))


def run_resume_command(run_dir: Path) -> str:
    """The command line that resumes ``run_dir``: this job's overrides plus ``ckpt_path=last`` and the
    directory (in a multirun, the job is resumed as a single run in its own job directory)."""
    overrides: list[str] = []
    if HydraConfig.initialized():
        skip = ("ckpt_path=", "hydra.run.dir=", "hydra.sweep.dir=", "hydra/launcher=", "hydra.launcher.")
        overrides = [o for o in HydraConfig.get().overrides.task if not o.startswith(skip)]
    words = ["python", "train.py", *overrides, "ckpt_path=last", f"hydra.run.dir={run_dir}"]
    return " ".join(shlex.quote(word) for word in words)
