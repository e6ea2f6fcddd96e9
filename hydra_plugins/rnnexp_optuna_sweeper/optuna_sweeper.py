"""A Hydra sweeper on current Optuna: asks the study for a trial, runs it as its own ``python train.py``
process in ``<sweep dir>/<trial number>``, tells the study how it ended, and keeps ``n_jobs`` trials in
flight (a finished slot is refilled at once).

Why a process per trial: Hydra's basic launcher runs jobs one after another in this process, and a job
changes process-wide state (Hydra's config singleton, logging, torch's thread pool). A child process per
trial keeps each job's run directory, ``.hydra/`` record, ``train.log`` and Hydra callbacks exactly as in a
single run, and lets trials overlap; each keeps the config's ``num_threads``, as a run alone does
(rnnexp.lifecycle.environment.job_threads). The trial reaches the job as
``optuna_trial.{storage,study_name,number}`` overrides; the job reopens it through the storage to report
validation values and be pruned (rnnexp.sweeps.pruning).
"""

import atexit
import json
import logging
import math
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from hydra.core.utils import JobReturn
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from hydra_plugins.rnnexp_optuna_sweeper.search_space import draw, override_value, search_space
from rnnexp.config.inert_values import RULES_BY_KEY, neutral_value, unused_keys
from rnnexp.errors import ConfigError, explained_exit
from rnnexp.lifecycle.environment import job_threads
from rnnexp.sweeps.job_processes import (
    JobProcess,
    job_context,
    preload_modules,
    record_exit,
    run_command,
    send_more_modules,
    start_job,
    target_modules,
)
from rnnexp.sweeps.storage import open_storage

log = logging.getLogger("rnnexp.sweeper")
TrialState = optuna.trial.TrialState


@dataclass
class RunningTrial:
    trial: optuna.trial.Trial
    process: subprocess.Popen | JobProcess
    job_dir: Path
    started: float


def trial_outcome(job_dir: Path, returncode: int) -> tuple[TrialState, float | None]:
    """How a finished trial's job ended, from what it left on disk: results.json (completed, or pruned with
    its last reported value) or nothing usable (FAIL)."""
    results_file = job_dir / "results.json"
    if returncode != 0 or not results_file.is_file():
        return TrialState.FAIL, None
    results = json.loads(results_file.read_text())
    if results.get("status") == "pruned":
        return TrialState.PRUNED, None  # Optuna keeps the last reported value as the trial's value
    objective = results.get("objective")
    if objective is None or not math.isfinite(objective):
        return TrialState.FAIL, None
    return TrialState.COMPLETE, float(objective)


def failure_message(job_dir: Path) -> str:
    failure = job_dir / "failure.json"
    if failure.is_file():
        return json.loads(failure.read_text()).get("message", "")
    output = job_dir / "output.log"
    lines = output.read_text(errors="replace").strip().splitlines() if output.is_file() else []
    return lines[-1] if lines else "no output"


def create_study_at(storage: str | None, **options: Any) -> optuna.Study:
    """``optuna.create_study`` on ``storage``; a URL that names no usable storage (a typo'd scheme, a folder
    that does not exist or cannot be written, a study of another direction) is a ConfigError naming it."""
    try:
        return optuna.create_study(storage=open_storage(storage), **options)
    except Exception as err:
        raise ConfigError(
            f"hydra.sweeper.storage={storage!r} cannot hold the study ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else 'no detail'}). Use sqlite:///<writable folder>/optuna.db, "
            "journal:///<writable file>, or a database URL that this machine can reach."
        ) from None


class OptunaSweeper(Sweeper):
    """``hydra/sweeper=rnnexp_optuna``; its options are ``OptunaSweeperConf`` (config.py)."""

    def __init__(
        self,
        sampler: Any,
        pruner: Any,
        direction: str,
        study_name: str | None,
        storage: str | None,
        n_trials: int,
        n_jobs: int,
        max_study_trials: int | None,
        params: dict[str, str] | None,
        preload: bool = True,
    ) -> None:
        self.sampler = instantiate(sampler) if isinstance(sampler, DictConfig) else sampler
        self.pruner = instantiate(pruner) if isinstance(pruner, DictConfig) else pruner
        self.direction = direction
        self.study_name = study_name
        self.storage = storage
        self.n_trials = n_trials
        self.n_jobs = n_jobs
        self.max_study_trials = max_study_trials
        self.params = dict(params) if params else None
        self.preload = preload
        self.context: Any = None  # started in setup, when the config is known
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.hydra_context = hydra_context
        with explained_exit():
            self.check_options(config)
        if self.preload:  # the forkserver imports torch & co., then the modules of the config's `_target_`s
            more_modules = Path(tempfile.mkdtemp(prefix="rnnexp-forkserver-")) / "modules"
            atexit.register(shutil.rmtree, more_modules.parent, ignore_errors=True)
            self.context = job_context(True, preload_modules(), more_modules)
            send_more_modules(more_modules, target_modules(config))

    def check_options(self, config: DictConfig) -> None:
        if self.direction not in ("minimize", "maximize"):
            raise ConfigError(f"hydra.sweeper.direction={self.direction!r}: use minimize or maximize.")
        mode = OmegaConf.select(config, "monitor.mode")
        if mode in ("min", "max") and self.direction != f"{mode}imize":
            raise ConfigError(
                f"hydra.sweeper.direction={self.direction} but the monitored metric "
                f"{OmegaConf.select(config, 'monitor.metric')} is best at its {mode}imum "
                f"(optimized_metric={OmegaConf.select(config, 'optimized_metric')}); set "
                f"hydra.sweeper.direction={mode}imize."
            )
        if self.n_jobs < 1 or self.n_trials < 0:
            raise ConfigError(
                f"hydra.sweeper.n_jobs={self.n_jobs}, n_trials={self.n_trials}: n_jobs must be at least 1 "
                "and n_trials at least 0."
            )

    def threads(self) -> int:
        """Every trial's torch threads: the config's ``num_threads``, as for a run alone (warns when the
        trials in flight need more threads than the CPUs)."""
        assert self.config is not None
        return job_threads(OmegaConf.select(self.config, "num_threads"), self.n_jobs)

    def sweep(self, arguments: list[str]) -> list[JobReturn]:
        with explained_exit():
            return self.run_study(arguments)

    def run_study(self, arguments: list[str]) -> list[JobReturn]:
        assert self.config is not None
        sweep_dir = Path(self.config.hydra.sweep.dir).absolute()
        sweep_dir.mkdir(parents=True, exist_ok=True)
        with open_dict(self.config):
            self.config.hydra.sweep.dir = str(sweep_dir)  # the storage URL below points into it
        storage = self.config.hydra.sweeper.storage  # resolved now that the sweep dir is absolute
        self.save_multirun_config(sweep_dir, storage)
        space, fixed = search_space(self.params, arguments)
        study = create_study_at(
            storage,
            study_name=self.study_name,
            sampler=self.sampler,
            pruner=self.pruner,
            direction=self.direction,
            load_if_exists=True,
        )
        threads = self.threads()
        log.info(
            "Optuna study %r (%s): %d trials, %d at a time, %d CPU threads each, pruner %s",
            study.study_name, storage or "in memory", self.n_trials, self.n_jobs, threads,
            type(self.pruner).__name__,
        )  # fmt: skip
        running: list[RunningTrial] = []
        started = finished = 0
        while (started < self.n_trials and not self.study_full(study)) or running:
            while len(running) < self.n_jobs and started < self.n_trials and not self.study_full(study):
                running.append(self.start(study, space, fixed, storage, sweep_dir, threads))
                started += 1
            time.sleep(0.2)
            for job in [j for j in running if j.process.poll() is not None]:
                running.remove(job)
                finished += 1
                self.finish(study, job)
                self.print_progress(study, job, left=self.n_trials - finished)
        self.save_results(study, sweep_dir)
        return []

    def study_full(self, study: optuna.Study) -> bool:
        return (
            self.max_study_trials is not None
            and len(study.get_trials(deepcopy=False)) >= self.max_study_trials
        )

    def start(
        self,
        study: optuna.Study,
        space: dict,
        fixed: list[str],
        storage: str | None,
        sweep_dir: Path,
        threads: int,
    ) -> RunningTrial:
        """Ask for a trial and start its job: ``python <script> <fixed> <sampled> optuna_trial=...``; the
        job keeps the config's ``num_threads`` (``threads``, also its ``OMP_NUM_THREADS``)."""
        assert self.config is not None
        trial = study.ask()
        sampled, not_drawn = self.draw_trial(trial, space, fixed)
        job_dir = sweep_dir / str(trial.number)
        job_dir.mkdir(parents=True, exist_ok=True)
        plumbing = [f"optuna_trial.number={trial.number}"]
        if not_drawn:
            plumbing.append(f"optuna_trial.not_drawn=[{','.join(not_drawn)}]")
        if storage:
            plumbing += [
                f"optuna_trial.storage='{storage}'",
                f"optuna_trial.study_name='{study.study_name}'",
                f"optuna_trial.pruner={self.pruner_override()}",
            ]
        hydra_overrides = [o for o in self.config.hydra.overrides.hydra if not o.startswith("hydra.mode=")]
        command = [
            sys.executable,
            str(Path(sys.argv[0]).absolute()),
            f"--config-name={self.config.hydra.job.config_name}",
            *fixed,
            *sampled,
            *plumbing,
            *hydra_overrides,
            f"hydra.run.dir={job_dir}",
        ]
        (job_dir / "command.txt").write_text(shlex.join(command) + "\n")
        env = {"OMP_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
        if self.context is not None:  # forked from the forkserver that imported torch and Lightning once
            args = (command[1:], job_dir / "output.log", env)
            process = start_job(self.context, run_command, args, job_dir, [*fixed, *sampled, *plumbing])
        else:  # a fresh interpreter: pays the imports again
            with open(job_dir / "output.log", "wb") as output:
                process = subprocess.Popen(
                    command, stdout=output, stderr=subprocess.STDOUT, env={**os.environ, **env}
                )
        return RunningTrial(trial, process, job_dir, time.time())

    def draw_trial(self, trial: optuna.Trial, space: dict, fixed: list[str]) -> tuple[list[str], list[str]]:
        """Define-by-run: draw every key that acts whatever the others hold, compose the trial's config,
        then draw each key a rule of rnnexp.config.inert_values may silence only where it would act. A key
        that could not act (model.dropout with one layer) is not drawn: the trial runs with its neutral value
        (an override) and names it in ``optuna_trial.not_drawn``, so its params and the sweep's tables show
        it blank rather than as a number that did nothing. Returns (overrides, keys not drawn)."""
        values = {key: draw(trial, key, dist) for key, dist in space.items() if key not in RULES_BY_KEY}
        sampled = [f"{key}={override_value(value)}" for key, value in values.items()]
        conditional = [key for key in space if key in RULES_BY_KEY]
        if not conditional:
            return sampled, []
        assert self.hydra_context is not None and self.config is not None
        trial_config = self.hydra_context.config_loader.load_sweep_config(self.config, [*fixed, *sampled])
        not_drawn = unused_keys(trial_config, conditional)
        for key in conditional:
            value = neutral_value(key) if key in not_drawn else draw(trial, key, space[key])
            sampled.append(f"{key}={override_value(value)}")
        return sampled, not_drawn

    def pruner_override(self) -> str:
        """The pruner's config as a Hydra dict override: the job decides ``should_prune`` with the same
        pruner (a study loaded from storage gets Optuna's default pruner otherwise)."""
        assert self.config is not None
        node = OmegaConf.to_container(self.config.hydra.sweeper.pruner, resolve=True)
        items = [
            f"{key}:'{value}'" if isinstance(value, str) else f"{key}:{value}" for key, value in node.items()
        ]
        return "{" + ",".join(items) + "}"

    def finish(self, study: optuna.Study, job: RunningTrial) -> None:
        if job.process.returncode != 0:  # killed or crashed: failure.json says how, for the review
            record_exit(job.job_dir, job.process.returncode, time.time() - job.started)
        state, value = trial_outcome(job.job_dir, job.process.returncode)
        if state == TrialState.COMPLETE:
            study.tell(job.trial, value)
        else:
            study.tell(job.trial, state=state)

    def print_progress(self, study: optuna.Study, job: RunningTrial, left: int) -> None:
        """One line per finished trial: number, state, value, best so far, what is left."""
        trial = study._storage.get_trial(job.trial._trial_id)
        value = "" if trial.value is None else f" value={trial.value:.5g}"
        try:
            best = f"best={study.best_value:.5g} (trial {study.best_trial.number})"
        except ValueError:
            best = "best=none yet"
        reason = f" ({failure_message(job.job_dir)})" if trial.state == TrialState.FAIL else ""
        log.info(
            "trial %d %s%s in %.0fs; %s; %d trials left%s",
            trial.number, trial.state.name, value, time.time() - job.started, best, left, reason,
        )  # fmt: skip

    def save_multirun_config(self, sweep_dir: Path, storage: str | None) -> None:
        """multirun.yaml with the sweep dir and storage as they were for this sweep (no `${now:...}` left)."""
        assert self.config is not None
        config = OmegaConf.to_container(self.config, resolve=False)
        config["hydra"]["sweep"]["dir"] = str(sweep_dir)
        config["hydra"]["sweeper"]["storage"] = storage
        OmegaConf.save(OmegaConf.create(config), sweep_dir / "multirun.yaml")

    def save_results(self, study: optuna.Study, sweep_dir: Path) -> None:
        """optimization_results.yaml: the study's best parameters and value (or why there are none)."""
        results: dict[str, Any] = {"name": study.study_name, "direction": self.direction}
        try:
            results.update(best_params=study.best_params, best_value=study.best_value)
            log.info("Best parameters: %s; best value: %s", study.best_params, study.best_value)
        except ValueError:
            results["best_value"] = None
            log.warning("No trial of study %r completed; no best parameters.", study.study_name)
        OmegaConf.save(OmegaConf.create(results), sweep_dir / "optimization_results.yaml")
