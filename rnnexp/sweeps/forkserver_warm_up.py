"""Imported last by the sweep forkserver (``rnnexp.sweeps.job_processes.WARM_UP``), after the modules every
job needs: imports the batch's own modules, pays every job's first calls once, then makes the imported state
cheap to share with the jobs.

The batch's modules: a launcher starts the forkserver as early as it can (before Hydra has composed the jobs'
configs), so the forkserver's imports of torch and Lightning overlap that work; the modules of the jobs'
``_target_``s are known only later. When ``RNNEXP_FORKSERVER_MORE_MODULES`` names a file, this waits for it
(``job_processes.send_more_modules``; at most 10 minutes, and not after the sweep's process has gone) and
imports every module it lists, skipping those that fail as the forkserver skips its own.

``gc.freeze()`` moves every object the imports made (torch, Lightning, Hydra: millions of them) into the
garbage collector's permanent generation. A forked job then never walks them in a collection; without it, the
job's first full collection touches every object's header, which copies much of the forkserver's memory into
the job page by page (copy-on-write).

The first calls: what a process pays the first time it trains (torch's first LSTM call, the first backward
and optimizer step, Lightning's ``isinstance`` caches, the first checkpoint), run once
here by ``rnnexp.sweeps.first_calls.pay_first_calls`` with torch at 1 thread (no OpenMP thread pool, which a
fork does not carry); it leaves no file, Hydra state, logging set-up, random state or CUDA initialisation
behind (see that module), so each job still starts from the state of a fresh ``import``. When it fails, the
jobs pay their own first calls; on a GPU host (``gpu_host``) it is not run.
"""

import contextlib
import ctypes.util
import gc
import glob
import importlib
import os
import sys
import time


def import_more_modules(path: str, timeout_s: float = 600.0) -> bool:
    """Import the modules listed in ``path`` once it appears; False when no batch is coming."""
    # The sweep's pid as the launcher recorded it: when the sweep died before this runs (e.g. a config error
    # while the forkserver was importing torch), os.getppid() already names whoever adopted us, and waiting
    # would hold the sweep's stdout pipe open for the whole timeout.
    parent = int(os.environ.get("RNNEXP_FORKSERVER_PARENT", os.getppid()))
    deadline = time.monotonic() + timeout_s
    while not os.path.exists(path):
        if time.monotonic() > deadline or os.getppid() != parent:  # no batch is coming
            return False
        time.sleep(0.02)
    with open(path, encoding="utf-8") as file:
        names = file.read().split()
    for name in names:
        # As the forkserver's own preload: a module that fails is skipped; a job that needs it fails with the
        # real error.
        with contextlib.suppress(Exception):
            importlib.import_module(name)
    return True


def gpu_host() -> bool:
    """Whether this machine may have a GPU the jobs could use: not Linux (macOS's Metal), or a GPU driver or
    device node (NVIDIA's driver library or nodes, Jetson's, ROCm's ``/dev/kfd``, WSL2's ``/dev/dxg``). There the
    first calls are not paid: a job's first GPU calls dominate its start-up and cannot be made before a fork, and
    Lightning's device probe (which a CPU Trainer runs too) could initialise the driver here, where NVML cannot
    answer it, leaving the forked jobs unable to use the GPU."""
    nodes = ("/dev/nvidia[0-9]*", "/dev/nvidiactl", "/dev/nvhost-*", "/dev/kfd", "/dev/dxg")
    return (
        not sys.platform.startswith("linux")
        or any(glob.glob(pattern) for pattern in nodes)
        or ctypes.util.find_library("cuda") is not None
    )


batch_coming = True
if os.environ.get("RNNEXP_FORKSERVER_MORE_MODULES"):
    batch_coming = import_more_modules(os.environ["RNNEXP_FORKSERVER_MORE_MODULES"])
# As a failed import, a failure here is skipped: each job then pays its own first calls, or fails with the
# real error.
with contextlib.suppress(Exception):
    if batch_coming and not gpu_host():
        from rnnexp.sweeps.first_calls import pay_first_calls

        pay_first_calls()
gc.collect()
gc.freeze()
