"""What a run's numbers depend on besides its config, and the one thread-count policy.

- ``job_threads``: THE torch CPU thread count of a run, whatever launched it (a single run, a serial sweep,
  a sweep with N jobs in flight): the config's ``num_threads`` (``conf/train.yaml``: 1). Launchers call it
  to learn the count and to warn when jobs in flight x threads exceed the CPUs; they never override it.
- ``run_environment``: what changes the numbers of a run with a given config and seed (threads, device and
  its type, precision, deterministic mode, library versions); ``train`` writes it to results.json under
  ``"environment"`` and to the logged hyperparameters.
- ``environment_differences``: the lines a comparison (sweep summary, review, seed statistics) prints when
  the runs it puts side by side differ in their environment, or do not record it.

Why threads matter: float reductions summed by another number of threads add in another order; on a chaotic
training run that changes the result (a sine trial reached val MSE 0.0069 with 2 threads and 0.042 with 1).
At a fixed thread count, device and versions, CPU runs of one config and seed are bit-identical.
"""

from __future__ import annotations

import logging
import os
import platform
from collections.abc import Mapping
from functools import cache
from typing import Any

from rnnexp.errors import ConfigError

log = logging.getLogger(__name__)

# The keys of results.json["environment"], in the order comparisons report them.
ENVIRONMENT_KEYS = (
    "num_threads",
    "accelerator",
    "device",
    "devices",
    "precision",
    "deterministic",
    "torch",
    "pytorch_lightning",
    "rnnexp",
    "cuda",
    "cudnn",
)


def cpu_count() -> int:
    """The CPUs this process may run on (its affinity set where the OS says, else ``os.cpu_count()``)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def thread_count(num_threads: Any) -> int:
    """``num_threads`` of the config as a count: a positive integer as given; null: every CPU of the
    machine (``cpu_count()``, not torch's own default, which follows ``OMP_NUM_THREADS``).

    Raises ConfigError naming ``num_threads`` for anything else."""
    if num_threads is None:
        return cpu_count()
    if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1:
        raise ConfigError(
            f"num_threads={num_threads!r}: give a positive integer (torch CPU threads of the run, e.g. "
            "num_threads=1, the default) or null for every CPU of the machine."
        )
    return num_threads


def oversubscription(threads: int, jobs_in_flight: int, cpus: int) -> str | None:
    """The warning for ``jobs_in_flight`` jobs of ``threads`` threads each on ``cpus`` CPUs, or None."""
    if threads * jobs_in_flight <= cpus:
        return None
    return (
        f"{jobs_in_flight} jobs in flight x num_threads={threads} = {threads * jobs_in_flight} torch threads "
        f"on {cpus} CPUs: threads will wait for each other (on a busy machine a step can take many times "
        f"longer). Lower hydra.sweeper.n_jobs or num_threads; the results do not change, since every job "
        f"keeps num_threads={threads}."
    )


def job_threads(num_threads: Any, jobs_in_flight: int = 1, cpus: int | None = None) -> int:
    """The torch thread count of every job of a launch: the config's ``num_threads``, the same for a run
    alone and for one of ``jobs_in_flight`` at once (so its results do not depend on the launch mode).
    Logs a warning when the jobs in flight would need more threads than ``cpus`` (default: this machine's).
    Launchers (the Optuna sweeper, grid launchers) call this and pass the count to the job's environment
    (``OMP_NUM_THREADS``); they never override ``num_threads``."""
    threads = thread_count(num_threads)
    warning = oversubscription(threads, jobs_in_flight, cpus or cpu_count())
    if warning:
        log.warning(warning)
    return threads


def apply_threads(num_threads: Any) -> int:
    """Set torch's intra-op thread count of this process from the config; return it."""
    import torch  # here, not at the top: a sweep's launcher and reviews read this module without torch

    threads = job_threads(num_threads)
    torch.set_num_threads(threads)
    return threads


@cache
def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def run_environment(trainer: Any) -> dict[str, Any]:
    """What besides the config and seed changes a run's numbers, read from this process and ``trainer``
    (a ``pytorch_lightning.Trainer``, before or after fit): torch CPU threads, the accelerator type
    (``cpu``/``cuda``/``mps``), the device's name, the number of devices, the precision, torch's
    deterministic mode (``true``/``false``/``"warn"``), and the torch, Lightning and rnnexp versions (CUDA and
    cuDNN versions on a GPU, else null)."""
    import pytorch_lightning as pl
    import torch

    import rnnexp

    device = trainer.strategy.root_device
    on_cuda = device.type == "cuda"
    if torch.are_deterministic_algorithms_enabled():
        deterministic: bool | str = "warn" if torch.is_deterministic_algorithms_warn_only_enabled() else True
    else:
        deterministic = False
    return {
        "num_threads": torch.get_num_threads(),
        "accelerator": device.type,
        "device": torch.cuda.get_device_name(device) if on_cuda else cpu_name(),
        "devices": int(trainer.num_devices) * int(trainer.num_nodes),
        "precision": str(trainer.precision),
        "deterministic": deterministic,
        "torch": str(torch.__version__),
        "pytorch_lightning": str(pl.__version__),
        "rnnexp": rnnexp.__version__,
        "cuda": torch.version.cuda if on_cuda else None,
        "cudnn": torch.backends.cudnn.version() if on_cuda else None,
    }


def differing_keys(environments: Mapping[str, Mapping[str, Any] | None]) -> list[str]:
    """The environment keys whose recorded values differ between the runs that recorded one."""
    known = [env for env in environments.values() if env is not None]
    keys = list(ENVIRONMENT_KEYS) + sorted({k for env in known for k in env} - set(ENVIRONMENT_KEYS))
    return [key for key in keys if len({repr(env.get(key, "not recorded")) for env in known}) > 1]


def environment_differences(environments: Mapping[str, Mapping[str, Any] | None]) -> list[str]:
    """What the runs compared side by side do not share. ``environments`` maps a run's name to its
    ``results.json["environment"]`` (None: the run did not record one, e.g. made before it was recorded).

    Returns one line per key whose value differs (``num_threads differs: 1 (runs 0, 2); 2 (run 1)``) and one
    for the runs whose environment is unknown; empty when every run recorded the same environment (or there
    is at most one run). Pure: no I/O, usable on any records (sweep jobs, seed groups)."""
    known = {name: env for name, env in environments.items() if env is not None}
    unknown = [name for name, env in environments.items() if env is None]
    lines = []
    if len(environments) > 1 and unknown:
        which = "any run" if not known else f"run{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}"
        lines.append(
            f'environment unknown for {which} (no "environment" in results.json): thread count, device, '
            "precision and versions cannot be compared"
        )
    for key in differing_keys(environments):
        groups: dict[str, list[str]] = {}
        for name, env in known.items():
            groups.setdefault(str(env[key]) if key in env else "not recorded", []).append(name)
        parts = [
            f"{value} (run{'s' if len(names) > 1 else ''} {', '.join(names)})"
            for value, names in groups.items()
        ]
        lines.append(f"{key} differs: {'; '.join(parts)}")
    return lines
