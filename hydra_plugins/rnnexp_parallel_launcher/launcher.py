"""A Hydra launcher that keeps ``n_jobs`` jobs of a batch in flight, each in its own process forked from a
forkserver that imported torch and Lightning once (``rnnexp.sweeps.job_processes``).

Each child runs its job exactly as Hydra's basic launcher would in-process (``run_job``: multirun mode, the
job number, ``<sweep dir>/<job number>``, ``.hydra/``, Hydra callbacks), so run directories, results.json,
the sweep summary and review are unchanged. What the separate process adds: a job that crashes or is killed
is recorded as failed (``failure.json`` says how it ended) while the others go on; jobs overlap; each job's
console output goes to ``<job dir>/output.log``.
"""

import atexit
import importlib
import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Sequence
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from rnnexp.errors import ConfigError
from rnnexp.lifecycle.environment import job_threads
from rnnexp.sweeps.job_processes import (
    JobProcess,
    SweepJobSpec,
    job_config,
    job_context,
    preload_modules,
    read_objective,
    record_exit,
    run_sweep_job,
    send_more_modules,
    start_job,
    target_modules,
)

log = logging.getLogger("rnnexp.launcher")
# What the sweep's own process needs when the last job has ended (the summary): imported in the background
# while the forkserver imports torch, so the end of a sweep does not wait for it.
SUMMARY_MODULES = ("rnnexp.sweeps.records", "rnnexp.sweeps.console", "rnnexp.sweeps.comparison")


def import_in_background(modules: Sequence[str]) -> None:
    def run() -> None:
        for module in modules:
            try:
                importlib.import_module(module)
            except Exception:  # the summary imports it again and reports what fails
                return

    threading.Thread(target=run, name="rnnexp-summary-imports", daemon=True).start()


class ParallelLauncher(Launcher):
    """``hydra/launcher=parallel`` (or ``rnnexp_parallel``); options in ``ParallelLauncherConf``."""

    def __init__(self, n_jobs: int = 2, preload: bool = True, threads_per_job: int | None = None) -> None:
        if n_jobs < 1:
            raise ConfigError(f"hydra.launcher.n_jobs={n_jobs}: keep at least 1 job in flight.")
        self.n_jobs = n_jobs
        self.preload = preload
        self.threads_per_job = threads_per_job
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.task_function: TaskFunction | None = None
        self.context: Any = None
        self.more_modules: Path | None = None  # where the forkserver waits for the batch's modules
        self.modules_sent = False

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        """Also starts the forkserver, so that its imports of torch and Lightning (seconds) overlap Hydra's
        composing and checking every job's config before the batch is launched."""
        self.config = config
        self.hydra_context = hydra_context
        self.task_function = task_function
        if self.preload:
            self.more_modules = Path(tempfile.mkdtemp(prefix="rnnexp-forkserver-")) / "modules"
            atexit.register(shutil.rmtree, self.more_modules.parent, ignore_errors=True)
        self.context = job_context(self.preload, preload_modules(), self.more_modules)

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        assert self.config is not None
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        sweep_dir = Path(str(self.config.hydra.sweep.dir)).absolute()
        sweep_dir.mkdir(parents=True, exist_ok=True)
        # The config's num_threads, as for a run alone (issue 23); threads_per_job, when set, is the user's own.
        num_threads = self.threads_per_job or OmegaConf.select(self.config, "num_threads")
        threads = job_threads(num_threads, self.n_jobs)
        context = self.context
        if self.more_modules is not None and not self.modules_sent:  # the first batch
            send_more_modules(self.more_modules, self.batch_modules(job_overrides))
            self.modules_sent = True
        import_in_background(SUMMARY_MODULES)
        log.info(
            "Launching %d jobs, %d at a time (%s start, %d CPU threads each); each job's console output is in "
            "<job dir>/output.log",
            len(job_overrides), self.n_jobs, context.get_start_method(), threads,
        )  # fmt: skip
        pending = list(enumerate(job_overrides, start=initial_job_idx))
        running: dict[int, tuple[JobProcess, list[str]]] = {}
        returns: dict[int, JobReturn] = {}
        while pending or running:
            while pending and len(running) < self.n_jobs:
                number, overrides = pending.pop(0)
                running[number] = self.start(context, number, list(overrides), sweep_dir, threads)
            wait([job.process.sentinel for job, _ in running.values()], timeout=1.0)  # until one ends
            for number in [n for n, (job, _) in running.items() if job.poll() is not None]:
                job, overrides = running.pop(number)
                returns[number] = self.finish(number, job, overrides, left=len(pending) + len(running))
        return [returns[number] for number in sorted(returns)]

    def batch_modules(self, job_overrides: Sequence[Sequence[str]]) -> list[str]:
        """What the forkserver imports for this batch: ``target_modules`` of one composed config per distinct
        choice of config groups and ``_target_`` overrides (``model=rnn,lstm,gru seed=1,...,5``: three), so
        every job's datamodule, task, model, callbacks and loggers are imported once."""
        assert self.config is not None and self.hydra_context is not None
        loader = self.hydra_context.config_loader
        groups: dict[str, bool] = {}

        def chooses(override: str) -> bool:
            key = override.split("=", 1)[0].lstrip("+~").split("@")[0]
            if key not in groups:
                parent, _, name = key.rpartition("/")
                try:
                    groups[key] = key.endswith("_target_") or name in loader.list_groups(parent)
                except Exception:  # not a group path Hydra can list: a value override
                    groups[key] = False
            return groups[key]

        distinct = {tuple(o for o in overrides if chooses(o)): list(overrides) for overrides in job_overrides}
        configs = [loader.load_sweep_config(self.config, list(o)) for o in distinct.values()]
        return list(dict.fromkeys(m for config in [self.config, *configs] for m in target_modules(config)))

    def start(
        self, context: Any, number: int, overrides: list[str], sweep_dir: Path, threads: int
    ) -> tuple[JobProcess, list[str]]:
        """Start job ``number``; return its process and its overrides (with the thread count)."""
        assert self.config is not None and self.hydra_context is not None and self.task_function is not None
        log.info("\t#%d : %s", number, " ".join(filter_overrides(overrides)))
        overrides = [*overrides, f"num_threads={threads}"]
        config, subdir = None, self.plain_subdir(number)
        if subdir is None:  # the job's folder depends on its config: compose it here to name the folder
            config = job_config(self.hydra_context, self.config, overrides, number, str(sweep_dir))
            subdir = str(config.hydra.sweep.subdir)
        job_dir = sweep_dir / subdir
        spec = SweepJobSpec(
            primary=self.config,
            overrides=overrides,
            number=number,
            sweep_dir=str(sweep_dir),
            config=config,
            hydra_context=self.hydra_context,
            singleton_instances=Singleton.get_state()["instances"],
            task_module=self.task_function.__module__,
            task_name=self.task_function.__name__,
            output=job_dir / "output.log",
            env={"OMP_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"},
        )
        return start_job(context, run_sweep_job, (spec,), job_dir, overrides), overrides

    def plain_subdir(self, number: int) -> str | None:
        """The job's folder name when ``hydra.sweep.subdir`` is Hydra's default, the job number (None for a
        subdir that depends on the job's config, e.g. ``${hydra.job.override_dirname}``)."""
        assert self.config is not None
        raw = self.config.hydra.sweep._get_node("subdir")._value()
        return str(number) if raw == "${hydra.job.num}" else None

    def finish(self, number: int, job: JobProcess, overrides: list[str], left: int) -> JobReturn:
        """The job's JobReturn from what it left on disk (its config is the job's own, on disk in
        ``.hydra/``; the return carries the sweep's), and a line saying how it ended."""
        assert self.config is not None
        took = time.time() - job.started
        result = JobReturn(
            overrides=overrides,
            cfg=self.config,
            hydra_cfg=self.config,
            working_dir=str(job.job_dir),
            task_name=self.config.hydra.job.name,
        )
        if job.returncode == 0:
            result.status, result._return_value = JobStatus.COMPLETED, read_objective(job.job_dir)
            log.info(
                "job %d completed in %.0fs (objective %s); %d jobs left",
                number,
                took,
                result._return_value,
                left,
            )
        else:
            message = record_exit(job.job_dir, job.returncode or 1, took)
            # Handed back as a failed job of the in-process grid is (rnnexp.run returns None): the failure is
            # on disk (failure.json), and a FAILED JobReturn would make Hydra's sweeper end the sweep with a
            # traceback before SweepSummary prints the jobs table and sets the exit status.
            result.status, result._return_value = JobStatus.COMPLETED, None
            log.error("job %d FAILED in %.0fs: %s; %d jobs left", number, took, message, left)
        return result
