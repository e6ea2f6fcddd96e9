"""Read a sweep from disk: every job of a multirun or Optuna directory (overrides, status, metrics, time,
the failure reason), the Optuna study and each run's learning curves, as pandas tables for rnnexp.sweeps.report and the notebooks."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf
from omegaconf._utils import get_yaml_loader

from rnnexp.errors import DataError
from rnnexp.lifecycle.environment import differing_keys, environment_differences
from rnnexp.sweeps.jobs import drawn_overrides


@dataclass
class JobRecord:
    """What one job left on disk. ``status``: completed (results.json), pruned (results.json says so: the
    Optuna pruner stopped it), failed (failure.json, or an error in its log) or incomplete (still running, or
    killed)."""

    run_dir: Path
    name: str
    overrides: dict[str, Any]
    status: str
    config: dict[str, Any]
    results: dict[str, Any] | None
    failure: dict[str, Any] | None


def natural_key(path: Path) -> list[Any]:
    """Sort job folders 0, 1, 2, ..., 10 rather than 0, 1, 10, 2."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(path))]


def find_job_dirs(sweep_dir: str | Path) -> list[Path]:
    """Every folder under ``sweep_dir`` that Hydra ran a job in (it holds ``.hydra/overrides.yaml``), or that
    rnnexp's launcher started one in (``launch.json``)."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise DataError(f"Sweep directory {sweep_dir} does not exist; pass the folder a multirun wrote.")
    jobs = [p.parent.parent for p in sweep_dir.rglob("overrides.yaml") if p.parent.name == ".hydra"]
    # A job rnnexp's launcher started but that died before Hydra wrote .hydra/ (killed at start-up).
    jobs += [p.parent for p in sweep_dir.rglob("launch.json") if not (p.parent / ".hydra").is_dir()]
    if not jobs:
        raise DataError(
            f"{sweep_dir} holds no Hydra job folders (none has .hydra/overrides.yaml); pass the folder of a "
            "`python train.py -m ...` run, e.g. logs/train/multiruns/<time>."
        )
    return sorted(jobs, key=natural_key)


def parse_overrides(overrides: list[str]) -> dict[str, Any]:
    """``["model=gru", "optimizer.lr=0.001"]`` → ``{"model": "gru", "optimizer.lr": 0.001}`` (typed by Hydra)."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    values = {}
    for override in parsed:
        value = override.value()
        values[override.get_key_element()] = (
            value if isinstance(value, str | int | float | bool) else str(value)
        )
    return values


class FastYamlLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """OmegaConf's YAML reading rules (its float and no-timestamp resolvers, its constructors) on libyaml's C
    parser: a job's config.yaml reads ~20x faster than with ``OmegaConf.load``, which a sweep's summary
    otherwise spends most of its time in (two files per job). The values are the same (compared on every
    file a sweep writes); OmegaConf's duplicate-key check is left out, as these files are OmegaConf's own
    output."""


FastYamlLoader.yaml_implicit_resolvers = get_yaml_loader().yaml_implicit_resolvers
FastYamlLoader.yaml_constructors = dict(get_yaml_loader().yaml_constructors)


def read_yaml(path: Path) -> Any:
    """A YAML file a run wrote (config.yaml, .hydra/overrides.yaml, multirun.yaml) as plain containers:
    ``OmegaConf.to_container(OmegaConf.load(path))``, faster; an empty file gives ``{}``."""
    with open(path, encoding="utf-8") as file:
        data = yaml.load(file, Loader=FastYamlLoader)
    return {} if data is None else data


def read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


def last_error_line(log_file: Path) -> str | None:
    if not log_file.is_file():
        return None
    errors = [line for line in log_file.read_text(errors="replace").splitlines() if "][ERROR]" in line]
    return errors[-1].split("] - ", 1)[-1] if errors else None


def load_job(run_dir: Path, sweep_dir: Path, prefix: str = "") -> JobRecord:
    """One job's record; its name is its folder relative to the sweep (``prefix`` tells sweeps apart)."""
    results = read_json(run_dir / "results.json")
    failure = read_json(run_dir / "failure.json")
    if results is None and failure is None:
        # A job that failed outside rnnexp's wrapper leaves at most a line in its log.
        messages = [m for m in map(last_error_line, run_dir.glob("*.log")) if m]
        failure = {"status": "failed", "message": messages[0]} if messages else None
    if results is not None:
        status = results.get("status", "completed")
    else:
        status = "failed" if failure is not None else "incomplete"
    config_file = run_dir / "config.yaml"  # resolved by rnnexp; .hydra/config.yaml always exists
    if not config_file.is_file():
        config_file = run_dir / ".hydra" / "config.yaml"
    config = read_yaml(config_file) if config_file.is_file() else {}
    overrides_file = run_dir / ".hydra" / "overrides.yaml"
    if overrides_file.is_file():
        overrides = read_yaml(overrides_file)
    else:  # killed before Hydra set the job up: the launcher's record of it
        overrides = (read_json(run_dir / "launch.json") or {}).get("overrides", [])
    return JobRecord(
        run_dir=run_dir,
        name=prefix + (str(run_dir.relative_to(sweep_dir)) if run_dir != sweep_dir else run_dir.name),
        overrides=parse_overrides(drawn_overrides(overrides)),
        status=status,
        config=config,
        results=results,
        failure=failure,
    )


def load_jobs(*sweep_dirs: str | Path) -> list[JobRecord]:
    """Every job of one or more sweep directories (an Optuna study resumed into a second folder); with
    several, each job's name starts with its sweep folder's name."""
    several = len(sweep_dirs) > 1
    return [
        load_job(job, Path(d), f"{Path(d).name}/" if several else "")
        for d in sweep_dirs
        for job in find_job_dirs(d)
    ]


def sweep_direction(sweep_dir: Path, jobs: list[JobRecord]) -> str:
    """``max`` or ``min`` for the objective: the Optuna direction when there is one, else the monitor mode."""
    multirun = sweep_dir / "multirun.yaml"
    if multirun.is_file():
        direction = OmegaConf.select(
            OmegaConf.create(read_yaml(multirun)), "hydra.sweeper.direction", default=None
        )
        if isinstance(direction, str):
            return "max" if direction.startswith("max") else "min"
    modes = [job.config.get("monitor", {}).get("mode") for job in jobs if job.config]
    return "max" if modes and modes[0] == "max" else "min"


def job_environments(jobs: list[JobRecord]) -> dict[str, dict[str, Any] | None]:
    """Each job with results: its ``results.json["environment"]`` (None when it recorded none)."""
    return {job.name: job.results.get("environment") for job in jobs if job.results is not None}


def runs_table(jobs: list[JobRecord]) -> pd.DataFrame:
    """One row per job: job, status, its overrides, objective, duration, epochs, every final metric, error,
    and ``environment.<key>`` for each environment value that differs between jobs. ``attrs``:
    optimized_metric, overrides, environment_differences (lines to print beside the table)."""
    environments = job_environments(jobs)
    differing = differing_keys(environments)
    rows = []
    for job in jobs:
        results, failure = job.results or {}, job.failure or {}
        environment = results.get("environment") or {}
        rows.append(
            {
                "job": job.name,
                "status": job.status,
                **job.overrides,
                **{f"environment.{key}": environment.get(key) for key in differing},
                "objective": results.get("objective"),
                "duration_s": results.get("duration_s", failure.get("duration_s")),
                "epochs": results.get("epochs"),
                **results.get("val", {}),
                **results.get("test", {}),
                "error": failure.get("message"),
                "run_dir": str(job.run_dir),
                # What changes the numbers (threads, device, versions), as text: comparison flags differences.
                "environment": json.dumps(results["environment"], sort_keys=True)
                if "environment" in results
                else None,
            }
        )
    table = pd.DataFrame(rows)
    names = {(job.results or {}).get("optimized_metric") for job in jobs} - {None}
    table.attrs["optimized_metric"] = names.pop() if len(names) == 1 else "objective"
    table.attrs["overrides"] = list(dict.fromkeys(key for job in jobs for key in job.overrides))
    table.attrs["environment_differences"] = environment_differences(environments)
    return table


def load_sweep(*sweep_dirs: str | Path) -> pd.DataFrame:
    """``runs_table`` of the sweep(s), with ``attrs``: optimized_metric, mode (max|min), overrides,
    replicate_keys (the jobs' ``replicate_keys`` config, None when they have none)."""
    jobs = load_jobs(*sweep_dirs)
    table = runs_table(jobs)
    table.attrs["mode"] = sweep_direction(Path(sweep_dirs[0]), jobs)
    configured = [job.config.get("replicate_keys") for job in jobs if job.config.get("replicate_keys")]
    table.attrs["replicate_keys"] = list(configured[0]) if configured else None
    return table


def swept_parameters(runs: pd.DataFrame) -> list[str]:
    """The overrides that take more than one value across the jobs."""
    return [key for key in runs.attrs.get("overrides", []) if runs[key].astype(str).nunique() > 1]


def best_run(runs: pd.DataFrame) -> pd.Series:
    """The completed job with the best objective (largest for mode max, smallest for min)."""
    done = runs[(runs["status"] == "completed") & runs["objective"].notna()]
    if done.empty:
        raise DataError("No job of this sweep completed with an objective; see the `error` column for why.")
    objective = done["objective"].astype(float)
    return done.loc[objective.idxmax() if runs.attrs.get("mode") == "max" else objective.idxmin()]


def optimization_results(sweep_dir: str | Path) -> dict[str, Any] | None:
    """The Optuna sweeper's ``optimization_results.yaml`` (best parameters and value), if it wrote one."""
    path = Path(sweep_dir) / "optimization_results.yaml"
    return OmegaConf.to_container(OmegaConf.load(path)) if path.is_file() else None


def optuna_study(sweep_dir: str | Path):  # -> optuna.Study | None
    """The Optuna study an Optuna sweep kept in its storage (``hydra.sweeper.storage`` of multirun.yaml),
    or None for a grid, an in-memory study, or a storage that is gone."""
    multirun = Path(sweep_dir) / "multirun.yaml"
    if not multirun.is_file():
        return None
    sweeper = OmegaConf.load(multirun).hydra.get("sweeper", {})
    storage = OmegaConf.select(sweeper, "storage", throw_on_resolution_failure=False)
    if not isinstance(storage, str) or not sweeper.get("study_name"):
        return None
    if storage.startswith("sqlite:///") and not Path(storage.removeprefix("sqlite:///")).is_file():
        return None  # sqlite would create an empty database instead of saying it is missing
    from rnnexp.sweeps.storage import load_study  # optuna: only for Optuna sweeps

    return load_study(sweeper.study_name, storage)


def optuna_trials(sweep_dir: str | Path) -> pd.DataFrame | None:
    """The sweep's Optuna study as a table (number, state, value, params), if it has one."""
    study = optuna_study(sweep_dir)
    return None if study is None else study.trials_dataframe()


def learning_curves(run_dir: str | Path) -> pd.DataFrame:
    """Per-epoch metrics of one run from the CSV logger's metrics.csv (empty when the run had no CSV logger)."""
    files = sorted(Path(run_dir).glob("**/metrics.csv"))
    if not files:
        return pd.DataFrame()
    metrics = pd.read_csv(files[0])
    if "epoch" not in metrics:
        return pd.DataFrame()
    # Lightning writes step rows and epoch rows; the last value logged in each epoch is the epoch's value.
    # Test metrics are one row after fit, not a curve.
    columns = [c for c in metrics.columns if c not in ("step", "epoch") and not c.startswith("test/")]
    curves = metrics.dropna(subset=["epoch"]).groupby("epoch")[columns].last().dropna(how="all")
    curves.index = curves.index.astype(int)
    return curves


def latest_sweep_dir(root: str | Path = "logs") -> Path:
    """The most recently started multirun directory under ``root`` (each holds multirun.yaml)."""
    candidates = sorted(Path(root).glob("**/multirun.yaml"), key=lambda p: p.stat().st_mtime)
    if not candidates:
        raise DataError(
            f"No multirun directory under {root}; run `python train.py -m ...` first or pass its path."
        )
    return candidates[-1].parent


def curve_metrics(runs: pd.DataFrame) -> list[str]:
    """Training and validation loss, plus the metric behind the objective (val/acc for val/acc_best)."""
    objective = runs.attrs.get("optimized_metric", "").removesuffix("_best")
    return list(
        dict.fromkeys(m for m in ("train/loss", "val/loss", objective) if m.startswith(("train", "val")))
    )
