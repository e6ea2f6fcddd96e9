"""Trials side by side: two trials of one sweep in flight at once on this machine, and two worker processes
sharing one study through its storage (Optuna's distributed mode)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from omegaconf import OmegaConf

from tests.conftest import ROOT, run_cli
from tests.sweep_runs import TINY_SINE

ONE_EPOCH = ["hparams_search=sine_optuna", "hydra/sweeper/pruner=none", "trainer.max_epochs=1", *TINY_SINE]


def span(job_dir: Path) -> tuple[float, float]:
    """When a trial's job started (the sweeper wrote its command) and ended (it wrote results.json)."""
    return (job_dir / "command.txt").stat().st_mtime, (job_dir / "results.json").stat().st_mtime


def test_two_trials_in_flight_overlap_and_the_study_has_both(tmp_path):
    sweep_dir = tmp_path / "sweep"
    args = [
        "-m",
        *ONE_EPOCH,
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.n_jobs=2",
        f"hydra.sweep.dir={sweep_dir}",
    ]
    proc = run_cli(*args, timeout=600)  # ~1 min on a quiet machine; 4-5 min at load 20 (a shared machine)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    study = optuna.load_study(study_name="sine_optuna", storage=f"sqlite:///{sweep_dir / 'optuna.db'}")
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
    (start0, end0), (start1, end1) = span(sweep_dir / "0"), span(sweep_dir / "1")
    assert max(start0, start1) < min(end0, end1), "the two trials did not run at the same time"
    for trial in study.trials:
        job = sweep_dir / str(trial.number)
        assert trial.value == json.loads((job / "results.json").read_text())["objective"]
    # A trial in flight beside another keeps the thread count of the same run launched alone (issue 23).
    alone = run_cli(*TINY_SINE, "trainer.max_epochs=1", f"hydra.run.dir={tmp_path / 'alone'}")
    assert alone.returncode == 0, alone.stderr[-3000:]
    threads = json.loads((tmp_path / "alone" / "results.json").read_text())["environment"]["num_threads"]
    assert threads == OmegaConf.load(tmp_path / "alone" / "config.yaml").num_threads == 1
    for trial in study.trials:
        job = sweep_dir / str(trial.number)
        assert json.loads((job / "results.json").read_text())["environment"]["num_threads"] == threads
        assert OmegaConf.load(job / "config.yaml").num_threads == threads


@pytest.mark.slow  # two sweeps and four trial processes at once (~1 min on 2 busy cores)
def test_two_workers_sharing_one_journal_storage_run_each_trial_once(tmp_path):
    storage = f"journal://{tmp_path / 'study.journal'}"  # Optuna's file storage, for a shared filesystem
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONUNBUFFERED": "1"}
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "train.py",
                "-m",
                *ONE_EPOCH,
                "hydra.sweeper.n_trials=2",
                f"hydra.sweeper.storage={storage}",
                f"hydra.sweep.dir={tmp_path / f'worker{i}'}",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(2)
    ]
    outputs = [worker.communicate(timeout=600)[0] for worker in workers]
    assert [w.returncode for w in workers] == [0, 0], "\n".join(o[-2000:] for o in outputs)
    from rnnexp.sweeps.storage import load_study

    trials = load_study("sine_optuna", storage).trials
    assert sorted(t.number for t in trials) == [0, 1, 2, 3] and {t.state.name for t in trials} == {"COMPLETE"}
    ran = {
        i: {p.name for p in (tmp_path / f"worker{i}").iterdir() if (p / "results.json").is_file()}
        for i in range(2)
    }
    assert len(ran[0]) == len(ran[1]) == 2 and not ran[0] & ran[1]  # each trial ran once, in one worker
    assert ran[0] | ran[1] == {"0", "1", "2", "3"}
