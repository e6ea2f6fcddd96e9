"""A run's result is a function of what it records: the thread count (and device, precision, deterministic
mode, versions) goes into results.json and the logged hyperparameters, the default does not depend on how a
run is launched, and comparisons say when runs side by side differ in it."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest
import torch
import yaml
from rich.console import Console

from rnnexp.errors import ConfigError
from rnnexp.lifecycle.environment import (
    ENVIRONMENT_KEYS,
    environment_differences,
    job_threads,
    thread_count,
)
from rnnexp.sweeps.records import load_sweep
from rnnexp.sweeps.report import print_runs_table
from rnnexp.training import compose_config, train
from tests.sweep_runs import TINY_SINE

# A chaotic little run (relu RNN, large rate): float sums in another order change its result.
TINY = [o for o in TINY_SINE if not o.startswith("datamodule=")] + [
    "model=rnn",
    "model.nonlinearity=relu",
    "optimizer.lr=0.05",
    "trainer.max_epochs=2",
    "logger=csv",
]


def run_job(sweep_dir: Path, job: int, overrides: list[str]) -> dict:
    """One run of ``overrides`` in ``<sweep_dir>/<job>``, laid out as a multirun job (``.hydra/overrides.yaml``)."""
    run_dir = sweep_dir / str(job)
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    results, _ = train(compose_config([*TINY, *overrides], run_dir))
    return results


def test_one_and_two_threads_are_recorded_and_the_review_flags_them(tmp_path):
    one = run_job(tmp_path, 0, [])  # the default
    two = run_job(tmp_path, 1, ["num_threads=2"])
    assert one["environment"]["num_threads"] == 1 and two["environment"]["num_threads"] == 2
    on_disk = json.loads((tmp_path / "1" / "results.json").read_text())["environment"]
    assert set(ENVIRONMENT_KEYS) <= set(on_disk)
    assert on_disk["accelerator"] == "cpu" and on_disk["torch"] == torch.__version__
    assert on_disk["precision"] == "32-true" and on_disk["deterministic"] is False
    logged = yaml.safe_load(next((tmp_path / "1").glob("**/hparams.yaml")).read_text())
    assert logged["environment"]["num_threads"] == 2  # the logged hyperparameters carry it too

    runs = load_sweep(tmp_path)
    assert runs.attrs["environment_differences"] == ["num_threads differs: 1 (run 0); 2 (run 1)"]
    assert environment_differences({"a": one["environment"], "b": one["environment"]}) == []
    assert runs["environment.num_threads"].tolist() == [1, 2]  # side by side in the table
    assert "environment.torch" not in runs  # only what differs gets a column
    console = Console(file=io.StringIO(), width=160)
    print_runs_table(runs, console)
    assert "warning: num_threads differs: 1 (run 0); 2 (run 1)" in console.file.getvalue()


def test_the_default_thread_count_does_not_follow_the_machine(tmp_path):
    assert compose_config(TINY, tmp_path).num_threads == 1  # conf/train.yaml, not torch's default


def test_differences_name_every_key_and_the_runs_without_a_record():
    base = {"num_threads": 1, "accelerator": "cpu", "precision": "32-true", "torch": "2.14.1"}
    lines = environment_differences(
        {
            "a": base,
            "b": {**base, "precision": "bf16-mixed", "torch": "2.15.0"},
            "c": base,
            "old": None,
        }
    )
    assert lines == [
        'environment unknown for run old (no "environment" in results.json): thread count, device, '
        "precision and versions cannot be compared",
        "precision differs: 32-true (runs a, c); bf16-mixed (run b)",
        "torch differs: 2.14.1 (runs a, c); 2.15.0 (run b)",
    ]
    assert environment_differences({"x": None, "y": None})[0].startswith("environment unknown for any run")
    assert environment_differences({"alone": None}) == []
    assert environment_differences({"a": base, "b": {**base, "extra": 1}}) == [
        "extra differs: not recorded (run a); 1 (run b)"
    ]


def test_jobs_in_flight_keep_the_thread_count_and_too_many_threads_warn(caplog):
    with caplog.at_level(logging.WARNING, logger="rnnexp.lifecycle.environment"):
        assert job_threads(1, jobs_in_flight=1, cpus=2) == 1
        assert job_threads(1, jobs_in_flight=2, cpus=2) == 1
        assert not caplog.records
        assert job_threads(2, jobs_in_flight=2, cpus=2) == 2  # the user's value is kept, with a warning
    assert "2 jobs in flight x num_threads=2 = 4 torch threads on 2 CPUs" in caplog.text
    assert thread_count(None) >= 1  # null: every CPU


@pytest.mark.parametrize("bad", [0, -1, 1.5, "two", True])
def test_a_bad_thread_count_names_the_key(bad):
    with pytest.raises(ConfigError, match="num_threads="):
        thread_count(bad)
