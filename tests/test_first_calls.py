"""The sweep forkserver pays a job's first calls once (``rnnexp.sweeps.first_calls``): it must leave nothing
behind that a forked job could see. Run in a fresh interpreter, as the forkserver runs it; the jobs' results
with it are checked against a run alone in ``tests/test_grid_launcher.py``."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import ROOT

# Prints what a job could see before and after pay_first_calls, and marks where its output would be.
SCRIPT = r"""
import importlib, json, logging, os, random, sys, warnings
import numpy as np
import torch
from rnnexp.sweeps.job_processes import PRELOAD

for name in [*PRELOAD[1:], "rnnexp.tasks"]:  # what the forkserver has imported by then (a batch's task)
    importlib.import_module(name)
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from lightning_utilities.core.rank_zero import WarningCache
from rnnexp.sweeps.first_calls import pay_first_calls


def seeded_draws():
    return [random.random(), float(np.random.rand()), float(torch.rand(1))]


def seed(value):
    random.seed(value); np.random.seed(value); torch.manual_seed(value)


def visible():
    loggers = {"": logging.getLogger(), **logging.Logger.manager.loggerDict}
    return {
        "env": dict(os.environ),
        "files": sorted(os.listdir(".")) + sorted(os.listdir(os.environ["TMPDIR"])),
        "handlers": {n: len(getattr(l, "handlers", [])) for n, l in loggers.items() if getattr(l, "handlers", [])},
        "logging_disabled": logging.root.manager.disable,
        "warning_filters": repr(warnings.filters),
        "threads": len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else None,
        "hydra": [GlobalHydra.instance().is_initialized(), HydraConfig.initialized()],
        "singletons": sorted(map(str, Singleton._instances)),
        "cuda_initialized": torch.cuda.is_initialized(),
        "torch_threads": torch.get_num_threads(),  # 1 meanwhile, then put back
    }


before = visible()
seed(3)
print("<<", flush=True); print("<<", file=sys.stderr, flush=True)
pay_first_calls()
print(">>", flush=True); print(">>", file=sys.stderr, flush=True)
after, draws = visible(), seeded_draws()
seed(3)
warned = [len(v) for m in list(sys.modules.values()) for v in list(getattr(m, "__dict__", {}).values())
          if type(v) is WarningCache]
print(json.dumps({"before": before, "after": after, "draws": [draws, seeded_draws()], "warning_caches": warned}))
"""


def test_paying_first_calls_leaves_nothing_a_job_could_see(tmp_path):
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {key: value for key, value in os.environ.items() if key != "OMP_NUM_THREADS"}
    env.update(TMPDIR=str(temp), PYTHONPATH=str(ROOT), WANDB_MODE="offline")
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    # Nothing printed meanwhile: the forkserver's output is the sweep's console.
    assert "<<\n>>\n" in proc.stdout and "<<\n>>\n" in proc.stderr, (proc.stdout[-2000:], proc.stderr[-2000:])
    record = json.loads(proc.stdout.splitlines()[-1])
    before, after = record["before"], record["after"]
    for (
        key
    ) in before:  # env, files (cwd and temp dir), logging, warnings, threads, Hydra, CUDA, torch threads
        assert after[key] == before[key], key
    assert before["hydra"] == [False, False] and not after["cuda_initialized"]
    draws_after, draws_fresh = record["draws"]
    assert draws_after == draws_fresh  # torch's, numpy's and Python's random states as they were
    assert not any(record["warning_caches"])  # a Lightning warning shown once still reaches the jobs
