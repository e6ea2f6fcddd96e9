"""Start each sweep job as its own process without paying for torch and Lightning again: a forkserver that
imported them once forks every job (Python's ``multiprocessing`` "forkserver" with a preload list).

A forked job is a separate process, as ``python train.py ...`` was: a job that crashes, exits or is killed
(SIGKILL) takes only itself down, and the sweep sees its exit code (negative: the signal). The forkserver
itself imports modules but runs nothing, so every job starts from the same clean state (no Hydra singleton,
no torch thread pool, no logging set up). ``preload=False`` starts each job in a fresh interpreter instead
("spawn"): the start-up cost of a plain subprocess, kept for comparison and for platforms without fork.

Two child entries: ``run_command`` runs a script's command line (the Optuna sweeper's trials: a single run
with its own ``hydra.run.dir``), ``run_sweep_job`` runs one job of a Hydra launcher's batch exactly as Hydra's
basic launcher would in-process (``hydra.core.utils.run_job``: multirun mode, job number, sweep subdir).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import runpy
import signal
import sys
import time
import traceback
from dataclasses import dataclass, field
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import Any

# Imported once by the forkserver: what every job needs before its first step (~4 s on one core).
PRELOAD = ("torch", "pytorch_lightning", "torchmetrics", "rnnexp.run", "rnnexp.training")


def job_context(preload: bool) -> BaseContext:
    """The multiprocessing context jobs start from: a forkserver with ``PRELOAD`` imported, or spawn."""
    if not preload or "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(PRELOAD))
    return context


def send_output_to(path: Path) -> None:
    """Point this process's stdout and stderr (the file descriptors, so C code and children follow) at
    ``path``, line-buffered: a killed job's log ends at its last line."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(line_buffering=True)


def prepare_child(output: Path, env: dict[str, str]) -> None:
    send_output_to(output)
    os.environ.update(env)
    # The forkserver ignores SIGINT for its children's sake; a job must stop on Ctrl-C like a single run.
    signal.signal(signal.SIGINT, signal.default_int_handler)


def run_command(argv: list[str], output: Path, env: dict[str, str]) -> None:
    """Child entry: run ``argv[0]`` (a script such as train.py) as ``__main__`` with ``argv`` as its command
    line. Its exit status is the job's (Hydra exits 1 on an error)."""
    prepare_child(output, env)
    sys.argv = list(argv)
    runpy.run_path(argv[0], run_name="__main__")


@dataclass
class SweepJobSpec:
    """What a child needs to run one job of a Hydra launcher's batch (all picklable)."""

    config: Any  # the job's sweep config (job number, overrides and absolute sweep dir set)
    hydra_context: Any
    singleton_instances: dict[Any, Any]  # Hydra's singletons (ConfigStore, JobRuntime, ...) of the sweep
    task_module: str  # where the (hydra.main-decorated) task function lives, e.g. __main__
    task_name: str
    output: Path
    env: dict[str, str] = field(default_factory=dict)


def task_function(module: str, name: str) -> Any:
    """The undecorated task function: ``@hydra.main`` keeps it as ``__wrapped__``."""
    function = getattr(sys.modules[module], name)
    return getattr(function, "__wrapped__", function)


def run_sweep_job(spec: SweepJobSpec) -> None:
    """Child entry: run one multirun job as Hydra's basic launcher does, then exit 0 if it completed, 1 (with
    the traceback in its output) if the task raised."""
    from hydra.core.singleton import Singleton
    from hydra.core.utils import JobStatus, run_job, setup_globals

    prepare_child(spec.output, spec.env)
    setup_globals()  # Hydra's OmegaConf resolvers (now, hydra, ...): closures, so not sent but registered again
    Singleton._instances = spec.singleton_instances
    result = run_job(
        hydra_context=spec.hydra_context,
        task_function=task_function(spec.task_module, spec.task_name),
        config=spec.config,
        job_dir_key="hydra.sweep.dir",
        job_subdir_key="hydra.sweep.subdir",
    )
    if result.status != JobStatus.COMPLETED:
        error = result._return_value
        traceback.print_exception(type(error), error, error.__traceback__)
        sys.exit(1)


class JobProcess:
    """A started job: ``poll()`` and ``returncode`` as ``subprocess.Popen`` has them (None while running;
    negative: killed by that signal)."""

    def __init__(self, process: multiprocessing.process.BaseProcess, job_dir: Path) -> None:
        self.process = process
        self.job_dir = job_dir
        self.started = time.time()

    @property
    def pid(self) -> int | None:
        return self.process.pid

    @property
    def returncode(self) -> int | None:
        return self.process.exitcode

    def poll(self) -> int | None:
        return self.process.exitcode


def start_job(
    context: BaseContext, target: Any, args: tuple[Any, ...], job_dir: Path, overrides: list[str]
) -> JobProcess:
    """Start ``target(*args)`` in a child and record ``launch.json`` (pid, start time, start method, the
    job's overrides) in the job's directory: a review lists a job killed before Hydra wrote ``.hydra/``, the
    start-up benchmark reads the time, and a user finds the pid of a job to stop it."""
    job_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    process = context.Process(target=target, args=args, daemon=False)
    process.start()
    launch = {
        "pid": process.pid,
        "started": started,
        "start_method": context.get_start_method(),
        "overrides": overrides,
    }
    (job_dir / "launch.json").write_text(json.dumps(launch))
    job = JobProcess(process, job_dir)
    job.started = started
    return job


def signal_name(returncode: int) -> str:
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


def record_exit(job_dir: Path, returncode: int, duration_s: float) -> str:
    """Why a job's process ended badly. The job's own ``failure.json`` when it wrote one; otherwise (killed,
    crashed outside rnnexp's wrapper) write one saying how the process ended, so reviews list it as failed."""
    failure_file = job_dir / "failure.json"
    if failure_file.is_file():
        return json.loads(failure_file.read_text()).get("message", "")
    if returncode < 0:
        message = f"the job's process was killed by {signal_name(returncode)} (exit code {returncode})"
    else:
        message = f"the job's process exited with code {returncode}; see {job_dir / 'output.log'}"
    failure = {
        "status": "failed",
        "error_type": "ProcessExit",
        "message": message,
        "duration_s": round(duration_s, 2),
    }
    failure_file.write_text(json.dumps(failure, indent=2))
    return message


def read_objective(job_dir: Path) -> float | None:
    """The objective a completed job wrote to results.json (None when it wrote none)."""
    results = job_dir / "results.json"
    return json.loads(results.read_text()).get("objective") if results.is_file() else None
