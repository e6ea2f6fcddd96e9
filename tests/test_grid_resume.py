"""Exact resume through forked jobs: a grid run by the parallel launcher (``seed=7,42``, two in flight) is
killed as a whole (SIGKILL to the sweep's process group: the sweep, the forkserver and both jobs) while job 1
is mid-epoch and job 0 has completed. The same command again with ``ckpt_path=last`` keeps job 0's results
and resumes job 1 from its step checkpoint to the results of an uninterrupted run, bit for bit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.resilience import TINY_RUN, fault, reference_run, same_results

GRID = ["hydra/launcher=parallel", "hydra.launcher.n_jobs=2", "seed=7,42"]  # job 1: seed 42, TINY_RUN's own


def sweep(command: list[str]) -> subprocess.CompletedProcess:
    """Run a sweep in its own session, so the fault can kill its process group and nothing else."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, start_new_session=True
    )


@pytest.mark.slow  # two sweeps of two tiny jobs and a reference run: ~40 s on a quiet machine
def test_a_killed_parallel_grid_resumes_exactly(tmp_path, tmp_path_factory):
    reference, _ = reference_run(tmp_path_factory)  # TINY_RUN with its default seed (42), uninterrupted
    sweep_dir = tmp_path / "sweep"
    kill = fault("KillSweepAtStep", step=13, job=1, wait_for=0, marker=tmp_path / "killed")
    command = [sys.executable, "train.py", "-m", *GRID, *TINY_RUN, *kill, f"hydra.sweep.dir={sweep_dir}"]

    killed = sweep(command)
    assert killed.returncode == -9, killed.stdout[-2000:] + killed.stderr[-2000:]
    kept = json.loads((sweep_dir / "0" / "results.json").read_text())
    assert not (sweep_dir / "1" / "results.json").exists()
    assert (sweep_dir / "1" / "checkpoints" / "step0000010.ckpt").is_file()  # newest: step 10, mid-epoch

    resumed = sweep([*command, "ckpt_path=last"])
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    job_log = (sweep_dir / "1" / "output.log").read_text()
    assert "Resuming from" in job_log and "step0000010.ckpt" in job_log, job_log[-2000:]
    results = json.loads((sweep_dir / "1" / "results.json").read_text())
    assert same_results(results, reference), (results, reference)
    assert json.loads((sweep_dir / "1" / "launch.json").read_text())["start_method"] == "forkserver"
    # The completed job is kept: resumed from its last checkpoint, it reports what it reported before.
    again = json.loads((sweep_dir / "0" / "results.json").read_text())
    assert all(again[key] == kept[key] for key in ("objective", "val", "test", "epochs", "global_step"))
