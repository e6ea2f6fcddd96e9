"""Sweeps through the real CLI: a grid multirun, and an Optuna search with a failing and a pruned trial, and a
resumed study."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import optuna
import pytest
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from rnnexp.models.recurrent import RecurrentSpec
from rnnexp.sweeps.records import load_sweep, optuna_trials
from rnnexp.training import instantiate
from tests.conftest import compose_config
from tests.sweep_runs import TINY_SINE, grid_sweep, run_cli

SEARCHES = {
    "mnist_rows_optuna": "val/acc_best",
    "sine_optuna": "val/mse_best",
    "sine_forecast_optuna": "val/mse_best",
    "series_forecast_optuna": "val/mse_best",
    "series_classification_optuna": "val/acc_best",
    "text_optuna": "val/loss_best",
    "text_classes_optuna": "val/acc_best",
    "tagging_optuna": "val/acc_best",
}


def search_space_corners(params: dict[str, str]) -> list[list[str]]:
    """Two override lists: every parameter at its first choice / lower bound, then at its last / upper."""
    corners: list[list[str]] = [[], []]
    for override in OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in params.items()]):
        if override.is_choice_sweep():
            values = list(override.sweep_string_iterator())
            low, high = values[0], values[-1]
        else:
            low, high = override.value().start, override.value().end
        corners[0].append(f"{override.get_key_element()}={low}")
        corners[1].append(f"{override.get_key_element()}={high}")
    return corners


@pytest.mark.parametrize("name", SEARCHES)
def test_search_config_optimises_its_metric_in_the_right_direction(name, tmp_path):
    cfg = compose_config([f"hparams_search={name}"], tmp_path)
    sweeper = HydraConfig.get().sweeper
    assert sweeper._target_.endswith("OptunaSweeper")
    assert sweeper.sampler._target_ == "optuna.samplers.TPESampler" and sweeper.sampler.seed == 1234
    assert cfg.optimized_metric == SEARCHES[name]
    assert sweeper.direction == {"max": "maximize", "min": "minimize"}[cfg.monitor.mode]
    assert sweeper.direction == ("maximize" if "acc" in SEARCHES[name] else "minimize")
    storage = OmegaConf.to_container(sweeper)["storage"]  # unresolved: it points into the sweep directory
    assert storage == "sqlite:///${hydra.sweep.dir}/optuna.db" and sweeper.study_name == name
    assert sweeper.n_jobs == 1 and sweeper.pruner._target_ == "optuna.pruners.MedianPruner"
    for key in ("model", "model.hidden_size", "model.num_layers", "model.dropout", "optimizer.lr"):
        assert key in sweeper.params, f"{name} does not search {key}"
    assert "trainer.gradient_clip_val" in sweeper.params


@pytest.mark.parametrize("name", SEARCHES)
def test_search_space_corners_make_valid_models(name, tmp_path):
    """Both ends of every searched range compose and give a model spec that passes validation."""
    compose_config([f"hparams_search={name}"], tmp_path)
    params = OmegaConf.to_container(HydraConfig.get().sweeper.params)
    for corner in search_space_corners(params):
        cfg = compose_config([f"hparams_search={name}", *corner], tmp_path)
        spec = instantiate(cfg.model)
        assert isinstance(spec, RecurrentSpec)
        assert f"model.hidden_size={spec.hidden_size}" in corner


def test_grid_runs_every_job_in_its_own_directory_and_a_failing_job_does_not_stop_it(tmp_path_factory):
    sweep_dir, proc = grid_sweep(tmp_path_factory)
    jobs = sorted(
        (p for p in sweep_dir.iterdir() if p.name.isdigit()), key=lambda p: int(p.name)
    )  # not tensorboard/
    assert [p.name for p in jobs] == ["0", "1", "2", "3"], proc.stdout[-3000:] + proc.stderr[-3000:]
    completed, failed = [], []
    for job in jobs:
        overrides = OmegaConf.load(job / ".hydra" / "overrides.yaml")
        (failed if "optimizer.lr=1e+30" in overrides else completed).append(job)
    assert len(completed) == 2 and len(failed) == 2
    for job in completed:
        results = json.loads((job / "results.json").read_text())
        assert results["run_dir"] == str(job)
        assert Path(results["best_ckpt_path"]).parent == job / "checkpoints"
        assert Path(results["best_ckpt_path"]).is_file()
        assert (job / "csv" / "metrics.csv").is_file()  # its own logger run
        assert results["objective"] == results["val"]["val/mse_best"]
    for job in failed:
        failure = json.loads((job / "failure.json").read_text())
        assert failure["error_type"] == "TrainingError" and "loss became" in failure["message"]
        assert not (job / "results.json").exists()
    # Every job ran; then the sweep ends with its summary (the jobs table, each failed job's one-line reason,
    # the best job, the review command) and exit status 1 because a job failed; no traceback.
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "Traceback" not in output and "Error executing job" not in output
    assert "4 jobs, objective val/mse_best" in output
    assert len(re.findall(r"job \d failed: The training loss became", output)) == 2
    assert "best job: " in output and f"review: python -m rnnexp.review {sweep_dir}" in output
    assert "2 of the sweep's jobs failed (listed above); exit status 1." in output


@pytest.fixture(scope="module")
def optuna_sweep(tmp_path_factory):
    """Four trials over hidden_size {8, -1} x lr {0.02, 1e-9}; the seeded sampler (seed 2) draws a good
    trial, then a hopeless one (lr=1e-9: the median pruner stops it after its first validation), a good one,
    and an impossible one (hidden_size=-1: ConfigError, FAIL)."""
    sweep_dir = tmp_path_factory.mktemp("optuna") / "sweep"
    args = ["-m", "hparams_search=sine_optuna", "hydra.sweeper.n_trials=4", "hydra.sweeper.params=null",
            "model.hidden_size=choice(8,-1)", "optimizer.lr=choice(0.02,1e-9)", "hydra.sweeper.sampler.seed=2",
            "hydra.sweeper.pruner.n_startup_trials=1", "hydra.sweeper.pruner.n_warmup_steps=0",
            "trainer.max_epochs=3", "+trainer.limit_train_batches=4",
            *(a for a in TINY_SINE if not a.startswith(("model.hidden_size", "+trainer.limit_train")))]  # fmt: skip
    proc = run_cli(*[*args, f"hydra.sweep.dir={sweep_dir}"])
    return sweep_dir, proc


def load_study(storage_dir: Path) -> optuna.Study:
    return optuna.load_study(study_name="sine_optuna", storage=f"sqlite:///{storage_dir / 'optuna.db'}")


def test_optuna_records_failed_pruned_and_completed_trials_from_each_jobs_results(optuna_sweep):
    sweep_dir, proc = optuna_sweep
    # One trial failed (hidden_size=-1): the sweep ends with its summary and exit status 1 (0 only when every
    # job completed or was pruned).
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "1 of the sweep's jobs failed (listed above); exit status 1." in proc.stdout + proc.stderr
    trials = load_study(sweep_dir).trials
    State = optuna.trial.TrialState
    assert [t.state for t in trials] == [State.COMPLETE, State.PRUNED, State.COMPLETE, State.FAIL]
    objectives = []
    for trial in trials:
        job = sweep_dir / str(trial.number)  # trial N runs in <sweep dir>/N
        overrides = OmegaConf.load(job / ".hydra" / "overrides.yaml")
        assert f"model.hidden_size={trial.params['model.hidden_size']}" in overrides
        if trial.state == State.COMPLETE:
            results = json.loads((job / "results.json").read_text())
            assert trial.params["optimizer.lr"] == 0.02 and results["status"] == "completed"
            assert trial.value == pytest.approx(results["objective"], rel=0, abs=0)
            assert len(trial.intermediate_values) == 3  # reported at every validation (3 epochs)
            objectives.append(results["objective"])
        elif trial.state == State.PRUNED:
            results = json.loads((job / "results.json").read_text())  # the run directory is kept
            assert trial.params["optimizer.lr"] == 1e-9
            assert results["status"] == "pruned" and results["pruned_at_validation"] == 0
            assert results["epochs"] < 3 and results["test"] == {}  # stopped early, not tested
            assert trial.value == trial.intermediate_values[0] > max(objectives)  # its last value, hopeless
            assert (job / "checkpoints").is_dir() and (job / "csv" / "metrics.csv").is_file()
        else:
            failure = json.loads((job / "failure.json").read_text())
            assert failure["error_type"] == "ConfigError" and "model.hidden_size=-1" in failure["message"]
    best = OmegaConf.load(sweep_dir / "optimization_results.yaml")
    assert best.best_value == min(objectives)  # direction: minimize val/mse_best
    runs = load_sweep(sweep_dir)  # the review sees what the study saw
    assert list(runs["status"]) == ["completed", "pruned", "completed", "failed"]
    assert runs.attrs["mode"] == "min" and "optuna_trial.number" not in runs.columns
    assert list(optuna_trials(sweep_dir)["state"]) == [t.state.name for t in trials]
    assert "best parameters" in proc.stdout and str(sweep_dir / "optimization_results.yaml") in proc.stdout


def test_a_running_sweep_prints_a_line_per_finished_trial(optuna_sweep):
    output = optuna_sweep[1].stdout + optuna_sweep[1].stderr
    lines = re.findall(r"trial (\d) (\w+)( value=\S+)? in \d+s; best=(\S+).*; (\d) trials left", output)
    assert [(n, state, left) for n, state, _, _, left in lines] == [
        ("0", "COMPLETE", "3"), ("1", "PRUNED", "2"), ("2", "COMPLETE", "1"), ("3", "FAIL", "0"),
    ]  # fmt: skip
    assert (
        lines[1][2] and lines[1][3] == lines[0][2].split("=")[1]
    )  # a pruned trial has a value; best: trial 0


@pytest.mark.slow  # a third `python train.py` start-up (~15 s on 2 busy cores)
def test_interrupted_optuna_study_resumes_with_the_printed_command(optuna_sweep, tmp_path):
    sweep_dir, proc = optuna_sweep
    printed = re.search(r"resume it with:\n\s*(python train\.py .*)", proc.stdout + proc.stderr)
    assert printed, "the sweep did not print how to resume it"
    command = shlex.split(printed.group(1).replace("<trials left>", "1"))
    assert command[:2] == ["python", "train.py"]
    resumed_dir = tmp_path / "resumed"
    resumed = run_cli(*[*command[2:], f"hydra.sweep.dir={resumed_dir}"])
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    trials = load_study(sweep_dir).trials
    assert [t.number for t in trials] == [0, 1, 2, 3, 4]  # the old trials were loaded, one new one was run
    assert trials[4].params["optimizer.lr"] in (0.02, 1e-9)  # the search space came back with the command
    new_job = resumed_dir / "4"  # trial numbers go on across folders: one job folder per trial
    assert trials[4].state.name in ("COMPLETE", "PRUNED", "FAIL") and (new_job / ".hydra").is_dir()
    runs = load_sweep(sweep_dir, resumed_dir)
    assert list(runs["job"]) == ["sweep/0", "sweep/1", "sweep/2", "sweep/3", "resumed/4"]
