"""Sweeps through the real CLI: a grid multirun and an Optuna search, with failing jobs, and a resumed study."""

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
    "text_optuna": "val/loss_best",
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
    assert sweeper.max_failure_rate == 1.0 and sweeper.n_jobs == 1  # a failed trial never stops the search
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
    jobs = sorted((p for p in sweep_dir.iterdir() if p.is_dir()), key=lambda p: int(p.name))
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
    # Every job ran; then Hydra's basic sweeper reports the failure with a non-zero exit.
    assert proc.returncode != 0
    assert "loss became" in proc.stderr


@pytest.fixture(scope="module")
def optuna_sweep(tmp_path_factory):
    """Three trials of sine_optuna; hidden_size is narrowed to {4, -1} so that the seeded sampler's third
    trial draws the impossible -1 (ConfigError)."""
    sweep_dir = tmp_path_factory.mktemp("optuna") / "sweep"
    args = ["-m", "hparams_search=sine_optuna", "hydra.sweeper.n_trials=3", "model.hidden_size=choice(4,-1)",
            "trainer.max_epochs=1", *(a for a in TINY_SINE if not a.startswith("model.hidden_size"))]  # fmt: skip
    proc = run_cli(*[*args, f"hydra.sweep.dir={sweep_dir}"])
    return sweep_dir, proc


def load_study(storage_dir: Path) -> optuna.Study:
    return optuna.load_study(study_name="sine_optuna", storage=f"sqlite:///{storage_dir / 'optuna.db'}")


def test_optuna_records_a_failed_trial_goes_on_and_returns_the_objective_of_results_json(optuna_sweep):
    sweep_dir, proc = optuna_sweep
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    trials = load_study(sweep_dir).trials
    states = [t.state for t in trials]
    assert len(trials) == 3
    assert states.count(optuna.trial.TrialState.FAIL) == 1  # seed-dependent: TPE seed 1234 draws -1 once
    assert states.count(optuna.trial.TrialState.COMPLETE) == 2
    objectives = []
    for trial in trials:
        job = sweep_dir / str(trial.number)  # one invocation: trial number == job number
        overrides = OmegaConf.load(job / ".hydra" / "overrides.yaml")
        assert f"model.hidden_size={trial.params['model.hidden_size']}" in overrides
        if trial.state == optuna.trial.TrialState.COMPLETE:
            results = json.loads((job / "results.json").read_text())
            assert trial.value == pytest.approx(results["objective"], rel=0, abs=0)
            objectives.append(results["objective"])
        else:
            failure = json.loads((job / "failure.json").read_text())
            assert failure["error_type"] == "ConfigError" and "model.hidden_size=-1" in failure["message"]
    best = OmegaConf.load(sweep_dir / "optimization_results.yaml")
    assert best.best_value == min(objectives)  # direction: minimize val/mse_best
    runs = load_sweep(sweep_dir)  # the review sees what the study saw
    assert runs.attrs["mode"] == "min" and list(runs["status"]).count("failed") == 1
    assert list(optuna_trials(sweep_dir)["state"]) == [t.state.name for t in trials]
    assert "best parameters" in proc.stdout and str(sweep_dir / "optimization_results.yaml") in proc.stdout


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
    assert [t.number for t in trials] == [0, 1, 2, 3]  # the old trials were loaded, one new one was run
    assert trials[3].value == json.loads((resumed_dir / "0" / "results.json").read_text())["objective"]
    runs = load_sweep(sweep_dir, resumed_dir)
    assert list(runs["job"]) == ["sweep/0", "sweep/1", "sweep/2", "resumed/0"]
