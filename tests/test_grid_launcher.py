"""A grid side by side (``hydra/launcher=parallel``): two jobs in flight, each forked from the preloaded
forkserver; a job killed with SIGKILL is recorded failed while the others finish; the review groups the seeds
as replicates with hand-checkable statistics; replicates share a wandb group.

One sweep serves the module: ``model=rnn,gru seed=1,2,3`` (six tiny jobs, csv + offline wandb), job 1
(rnn, seed 2) killed as soon as it has started.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from rnnexp.review import main as review
from rnnexp.sweeps.job_processes import HEAVY_PACKAGES, PRELOAD, WARM_UP, preload_modules, target_modules
from rnnexp.sweeps.records import load_sweep
from rnnexp.training import train
from tests.conftest import ROOT, compose_config
from tests.sweep_runs import TINY_SINE

GRID = ["hydra/launcher=parallel", "hydra.launcher.n_jobs=2", "model=rnn,gru", "seed=1,2,3",
        "trainer.max_epochs=2", "logger=[csv,wandb]"]  # fmt: skip
T_975 = {1: 12.7062, 2: 4.3027}  # two-sided 95% quantiles of Student's t (printed table)


def launched_pid(job_dir: Path, proc: subprocess.Popen, timeout: float = 300) -> int:
    """The pid the launcher recorded for a job, once it has started."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        try:
            return json.loads((job_dir / "launch.json").read_text())["pid"]
        except (FileNotFoundError, json.JSONDecodeError):
            time.sleep(0.05)
    raise AssertionError(f"job {job_dir.name} never started")


@pytest.fixture(scope="module")
def killed_sweep(tmp_path_factory) -> tuple[Path, int, str]:
    sweep_dir = tmp_path_factory.mktemp("parallel") / "sweep"
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "train.py", "-m", *GRID, *TINY_SINE, f"hydra.sweep.dir={sweep_dir}"]
    proc = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    os.kill(launched_pid(sweep_dir / "1", proc), signal.SIGKILL)
    output, _ = proc.communicate(timeout=600)
    return sweep_dir, proc.returncode, output


def span(job_dir: Path) -> tuple[float, float]:
    """When the launcher started a job's process and when the job wrote its results."""
    return json.loads((job_dir / "launch.json").read_text())["started"], (
        job_dir / "results.json"
    ).stat().st_mtime


def test_two_jobs_in_flight_overlap_in_time(killed_sweep):
    sweep_dir, _, _ = killed_sweep
    spans = [span(sweep_dir / str(job)) for job in (0, 2, 3, 4, 5)]
    assert any(max(a[0], b[0]) < min(a[1], b[1]) for a, b in itertools.combinations(spans, 2)), (
        f"no two jobs ran at the same time: {spans}"
    )
    for job in (0, 2, 3, 4, 5):
        config = json.loads((sweep_dir / str(job) / "launch.json").read_text())
        assert config["start_method"] == "forkserver"  # forked from the process that imported torch once
        assert "num_threads: 1" in (sweep_dir / str(job) / "config.yaml").read_text()  # as a run alone


def test_a_sigkilled_job_is_reported_failed_while_the_others_finish(killed_sweep):
    sweep_dir, returncode, output = killed_sweep
    failure = json.loads((sweep_dir / "1" / "failure.json").read_text())
    assert "SIGKILL" in failure["message"] and "job 1 FAILED" in output, output[-3000:]
    runs = load_sweep(sweep_dir).set_index("job")
    assert runs.loc["1", "status"] == "failed"
    assert (runs.drop(index="1")["status"] == "completed").all(), runs["status"]
    # The sweep ends with its summary (jobs table, the failure's one-line reason), exit 1, no traceback.
    assert returncode == 1 and "Traceback" not in output, output[-3000:]
    assert "1 of the sweep's jobs failed" in output and "SIGKILL" in output.split("job 1 FAILED")[-1]


def test_review_groups_seeds_with_hand_computed_means_and_intervals(killed_sweep, tmp_path):
    sweep_dir, _, _ = killed_sweep
    assert review([str(sweep_dir), "--out", str(tmp_path / "report.html")]) == 0
    table = pd.read_csv(tmp_path / "comparison.csv").set_index("group")
    document = json.loads((tmp_path / "comparison.json").read_text())
    assert document["replicate_keys"] == ["seed"] and len(document["groups"]) == 2
    objectives = {
        job: json.loads((sweep_dir / str(job) / "results.json").read_text())["objective"]
        for job in (0, 2, 3, 4, 5)
    }
    for group, jobs in (("model=rnn", [0, 2]), ("model=gru", [3, 4, 5])):
        values = [objectives[job] for job in jobs]
        n, mean = len(values), sum(values) / len(values)
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
        row = table.loc[group]
        assert row["n"] == n and row["objective_mean"] == pytest.approx(mean)
        assert row["objective_std"] == pytest.approx(std)
        assert row["objective_ci_low"] == pytest.approx(mean - T_975[n - 1] * std / math.sqrt(n), rel=1e-4)
        assert row["objective_ci_high"] == pytest.approx(mean + T_975[n - 1] * std / math.sqrt(n), rel=1e-4)
    rnn = table.loc["model=rnn"]
    assert rnn["failed"] == 1 and "1 failed (not in the mean)" in rnn["note"]
    assert rnn["replicates"] == "seed=1; seed=3"
    other = table[table["rank"] == 2].iloc[0]
    assert other["test"] == "Welch t"  # rnn ran seeds 1 and 3, gru 1, 2 and 3: not paired
    page = (tmp_path / "report.html").read_text()
    assert "Groups (runs differing only in seed)" in page and "Learning curves by group" in page


def test_a_forked_job_gives_the_same_objective_as_a_single_run(killed_sweep, tmp_path):
    sweep_dir, _, _ = killed_sweep
    single = compose_config(
        ["model=gru", "seed=2", "trainer.max_epochs=2", "logger=csv", *TINY_SINE], tmp_path
    )
    results, _ = train(single)
    forked = json.loads((sweep_dir / "4" / "results.json").read_text())  # job 4: gru, seed 2
    assert forked["objective"] == results["objective"]


def test_replicates_share_a_wandb_group_and_carry_their_seed_as_job_type(killed_sweep):
    sweep_dir, _, _ = killed_sweep
    for job, group, seed in ((0, "sweep-model=rnn", 1), (2, "sweep-model=rnn", 3), (5, "sweep-model=gru", 3)):
        (run,) = (sweep_dir / str(job) / "wandb").glob("offline-run-*")
        stream = next(run.glob("run-*.wandb")).read_bytes()
        # protobuf strings: a length byte, then the text
        assert bytes([len(group)]) + group.encode() in stream, f"job {job}: group {group} missing"
        assert bytes([len(f"seed={seed}")]) + f"seed={seed}".encode() in stream, (
            f"job {job}: job_type missing"
        )


def test_a_forked_job_finds_everything_it_imports_preloaded(killed_sweep):
    """The forkserver imported the modules of the batch's `_target_`s (rnnexp's datamodule, task, models,
    callbacks; Lightning's loggers and wandb for logger=wandb) and what a run imports lazily: a forked job
    imports none of the heavy packages itself, and pays no import at run time."""
    sweep_dir, _, _ = killed_sweep
    for job in (0, 2, 3, 4, 5):
        record = json.loads((sweep_dir / str(job) / "process.json").read_text())
        heavy = [m for m in record["imported_modules"] if m.split(".")[0] in HEAVY_PACKAGES]
        assert not heavy, f"job {job} imported {heavy} itself"
        assert record["preloaded_modules"] > 1000 and record["cpu_s"] > 0


def test_the_preload_list_holds_every_target_module_of_the_batch(tmp_path):
    configs = [
        compose_config([f"model={model}", "logger=[csv,wandb]", *TINY_SINE], tmp_path / model)
        for model in ("rnn", "gru")
    ]
    assert preload_modules()[: len(PRELOAD)] == list(PRELOAD) and preload_modules()[-1] == WARM_UP
    modules = {module for config in configs for module in target_modules(config)}  # the launcher's batch list
    targets = {
        str(node["_target_"]).rsplit(".", 1)[0]
        for config in configs
        for node in (
            config.model,
            config.datamodule,
            config.task,
            config.optimizer,
            *config.callbacks.values(),
        )
        if node is not None and "_target_" in node
    }
    assert {"rnnexp.data", "rnnexp.models.recurrent"} <= targets and len(targets) >= 5, targets
    assert targets <= modules, targets - modules
    assert {"pytorch_lightning.loggers", "wandb"} <= modules  # the loggers, and wandb's lazy import


def test_the_forkserver_stops_waiting_for_the_batch_when_its_sweep_has_gone(tmp_path):
    """The forkserver imports torch while Hydra composes the jobs, then waits for the batch's module list. A
    sweep that dies in between (an error, Ctrl-C) never sends it: the forkserver must see that the sweep that
    started it is gone and exit, even when it died before the wait began, instead of waiting out its 10
    minutes holding the sweep's output pipe open (whoever reads that pipe would hang)."""
    sweep = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    env = {
        **os.environ,
        "RNNEXP_FORKSERVER_MORE_MODULES": str(tmp_path / "never_written"),
        "RNNEXP_FORKSERVER_PARENT": sweep.stdout.strip(),  # a sweep process that has already exited
    }
    started = time.monotonic()
    code = f"import sys, {WARM_UP}; print('torch' in sys.modules)"
    warm_up = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert warm_up.returncode == 0, warm_up.stderr[-2000:]
    assert time.monotonic() - started < 60
    assert warm_up.stdout.split() == ["False"]  # and no first calls paid for jobs that will never come
