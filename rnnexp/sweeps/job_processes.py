"""Start each sweep job as its own process without paying for torch and Lightning again: a forkserver that
imported them once forks every job (Python's ``multiprocessing`` "forkserver" with a preload list).

A forked job is a separate process, as ``python train.py ...`` was: a job that crashes, exits or is killed
(SIGKILL) takes only itself down, and the sweep sees its exit code (negative: the signal). The forkserver
imports modules and pays a job's first calls once (a tiny fit, ``rnnexp.sweeps.first_calls``) but keeps no
state from it, so every job starts from the same clean state (no Hydra singleton, no torch thread pool, no
logging set up). ``preload=False`` starts each job in a fresh interpreter instead ("spawn"): the start-up
cost of a plain subprocess, kept for comparison and for platforms without fork.

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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import Any

# Imported once by the forkserver, before the modules of the batch's `_target_`s: what every job needs before
# its first step (~4 s on one core), and what a run imports lazily on its way (checkpoint I/O, the figures, the
# results table). `tests/test_grid_launcher.py` checks that a forked job imports none of HEAVY_PACKAGES itself.
PRELOAD = (
    "__main__",  # the sweep's script (train.py) as __mp_main__: each child then finds it imported
    "torch",
    "pytorch_lightning",
    "torchmetrics",
    "rnnexp.run",
    "rnnexp.training",
    "hydra.core.utils",  # run_job, which runs each job
    "matplotlib.pyplot",  # the tasks' figures
    "matplotlib.backends.backend_agg",  # ... drawn to PNG
    "torch.utils.serialization",  # torch.save of the first checkpoint
    "fsspec.implementations.chained",  # Lightning's checkpoint I/O
    "omegaconf._impl",  # OmegaConf.to_container
    "hydra._internal.logging_config",  # the job's logging set-up
    "rich._emoji_codes",  # the results table
    "antlr4.LL1Analyzer",  # Hydra's override parser
    "importlib.resources.readers",
    "resource",  # record_process
)
# Packages a `_target_` imports only when its object first logs (imported for the batch that uses it).
TARGET_IMPORTS = {
    "pytorch_lightning.loggers.TensorBoardLogger": ("torch.utils.tensorboard",),
    "pytorch_lightning.loggers.WandbLogger": (
        "wandb",
        "wandb.wandb_run",
        "wandb.apis.public",
        "wandb.sdk.launch.inputs.internal",  # wandb.init reads its launch inputs
    ),
}
# Imported last: the batch's further modules (MORE_MODULES_ENV), then gc.freeze(), so that forks share the imported
# objects instead of copying them (see the module).
WARM_UP = "rnnexp.sweeps.forkserver_warm_up"
MORE_MODULES_ENV = "RNNEXP_FORKSERVER_MORE_MODULES"
PARENT_ENV = "RNNEXP_FORKSERVER_PARENT"  # the pid whose exit means no batch is coming
# Packages a forked job should find imported (each costs 0.1-4 s): the tests check that a job imports none of
# them itself, nor any rnnexp module (those of its `_target_`s are preloaded).
HEAVY_PACKAGES = ("torch", "pytorch_lightning", "lightning_fabric", "torchmetrics", "numpy", "pandas",
                  "matplotlib", "scipy", "optuna", "tensorboard", "wandb", "rnnexp")  # fmt: skip


def target_modules(config: Any) -> list[str]:
    """The modules of every ``_target_`` in a composed config (``rnnexp.data.sine`` for
    ``rnnexp.data.sine.SineDataModule``; plus ``TARGET_IMPORTS``), in the order met: what instantiating and
    using its objects imports. A target that names a class attribute gives a non-module name; the forkserver
    skips names it cannot import."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    found: dict[str, None] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "_target_" and isinstance(value, str) and "." in value:
                    found[value.rsplit(".", 1)[0]] = None
                    found.update(dict.fromkeys(TARGET_IMPORTS.get(value, ())))
                else:
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    if isinstance(config, DictConfig | ListConfig):
        config = OmegaConf.to_container(config, resolve=False)
    walk(config)
    return list(found)


def preload_modules(configs: Iterable[Any] = ()) -> list[str]:
    """What the forkserver imports, in order: ``PRELOAD``, the modules of every ``_target_`` of ``configs``
    (a batch's composed job configs), then ``WARM_UP``."""
    targets = [module for config in configs for module in target_modules(config)]
    return list(dict.fromkeys([*PRELOAD, *targets, WARM_UP]))


def job_context(
    preload: bool, modules: Sequence[str] | None = None, more_modules_file: Path | None = None
) -> BaseContext:
    """The multiprocessing context jobs start from: a forkserver that imported ``modules``
    (``preload_modules()`` when None) and is started now, so its imports overlap the caller's own work; or
    spawn (a fresh interpreter per job) when ``preload`` is false or the platform has no forkserver.

    ``more_modules_file``: the forkserver, once it has imported ``modules``, waits for this file (written with
    ``send_more_modules`` by the caller when it knows the batch) and imports the modules it lists too, before
    serving the first job. The forkserver is one per sweep process: a second call after it started keeps the
    first one."""
    if not preload or "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(modules if modules is not None else preload_modules()))
    from multiprocessing import forkserver

    if more_modules_file is not None:
        os.environ[MORE_MODULES_ENV] = str(more_modules_file)  # the forkserver reads its environment once
        os.environ[PARENT_ENV] = str(os.getpid())
    try:
        forkserver.ensure_running()
    finally:
        os.environ.pop(MORE_MODULES_ENV, None)
        os.environ.pop(PARENT_ENV, None)
    return context


def send_more_modules(path: Path, modules: Sequence[str]) -> None:
    """Hand the forkserver (waiting in ``WARM_UP``) the further modules to import: one name a line, the file
    appearing whole (written aside, then renamed)."""
    partial = path.with_suffix(".partial")
    partial.write_text("\n".join(modules))
    os.replace(partial, path)


def send_output_to(path: Path) -> None:
    """Point this process's stdout and stderr (the file descriptors, so C code and children follow) at
    ``path``, line-buffered: a killed job's log ends at its last line."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(line_buffering=True)


def record_process(job_dir: Path, preloaded: set[str], entered: float) -> None:
    """Write ``<job dir>/process.json``: when the child began its job (``entered``, epoch seconds; the launcher
    wrote when it started the process in launch.json) and ended, the CPU seconds and minor page faults of the
    process (a fork's start-up and copy-on-write cost show there), and every module the job imported itself
    (none of the heavy packages when the forkserver preloaded what the job needs)."""
    import resource  # Unix only, as the forkserver

    usage = resource.getrusage(resource.RUSAGE_SELF)
    record = {
        "entered": entered,
        "ended": time.time(),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        "minor_page_faults": usage.ru_minflt,
        "preloaded_modules": len(preloaded),
        "imported_modules": sorted(set(sys.modules) - preloaded),
    }
    (job_dir / "process.json").write_text(json.dumps(record, indent=1))


def prepare_child(output: Path, env: dict[str, str]) -> None:
    send_output_to(output)
    os.environ.update(env)
    # The forkserver ignores SIGINT for its children's sake; a job must stop on Ctrl-C like a single run.
    signal.signal(signal.SIGINT, signal.default_int_handler)


def run_command(argv: list[str], output: Path, env: dict[str, str]) -> None:
    """Child entry: run ``argv[0]`` (a script such as train.py) as ``__main__`` with ``argv`` as its command
    line. Its exit status is the job's (Hydra exits 1 on an error)."""
    entered, preloaded = time.time(), set(sys.modules)
    prepare_child(output, env)
    sys.argv = list(argv)
    try:
        runpy.run_path(argv[0], run_name="__main__")
    finally:
        record_process(output.parent, preloaded, entered)


@dataclass
class SweepJobSpec:
    """What a child needs to run one job of a Hydra launcher's batch (all picklable). The child composes the
    job's config itself (``job_config``) unless ``config`` is given: composing costs ~0.3 s of CPU per job,
    which the sweep's process would otherwise spend serially while the jobs wait."""

    primary: Any  # the sweep's primary config
    overrides: list[str]  # the job's overrides
    number: int  # the job number
    sweep_dir: str  # absolute
    config: Any  # the job's composed config, or None: composed by the child
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


def job_config(hydra_context: Any, primary: Any, overrides: list[str], number: int, sweep_dir: str) -> Any:
    """The job's config as Hydra's basic launcher composes it: the sweep's config with the job's overrides,
    job number and id set, and the sweep directory resolved (a later resolution would read ``${now:}`` anew)."""
    from omegaconf import open_dict

    config = hydra_context.config_loader.load_sweep_config(primary, list(overrides))
    with open_dict(config):
        config.hydra.job.id = number
        config.hydra.job.num = number
        config.hydra.sweep.dir = sweep_dir
    return config


def run_sweep_job(spec: SweepJobSpec) -> None:
    """Child entry: run one multirun job as Hydra's basic launcher does, then exit 0 if it completed, 1 (with
    the traceback in its output) if the task raised."""
    entered, preloaded = time.time(), set(sys.modules)
    from hydra.core.singleton import Singleton
    from hydra.core.utils import JobStatus, run_job, setup_globals

    prepare_child(spec.output, spec.env)
    setup_globals()  # Hydra's OmegaConf resolvers (now, hydra, ...): closures, so not sent but registered again
    Singleton._instances = spec.singleton_instances
    try:
        config = spec.config
        if config is None:
            config = job_config(spec.hydra_context, spec.primary, spec.overrides, spec.number, spec.sweep_dir)
        result = run_job(
            hydra_context=spec.hydra_context,
            task_function=task_function(spec.task_module, spec.task_name),
            config=config,
            job_dir_key="hydra.sweep.dir",
            job_subdir_key="hydra.sweep.subdir",
        )
    finally:
        record_process(spec.output.parent, preloaded, entered)
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
