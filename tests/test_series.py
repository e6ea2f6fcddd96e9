"""A user's own series (datamodule=series / series_forecast): split by time without leakage, train-only
scaling kept in checkpoints, the seasonal-naive baseline, resume and results.json as for built-in data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from rnnexp.data.series import TimeSeries, part_bounds
from rnnexp.errors import DataError
from rnnexp.lifecycle.checkpoint import read_checkpoint
from rnnexp.tasks.forecast_baselines import seasonal_naive_forecast
from rnnexp.training import train
from tests.conftest import compose_config
from tests.resilience import same_results

STEPS, SEASON = 120, 12


def series_frame(seed: int = 0, steps: int = STEPS) -> pd.DataFrame:
    """Two stations, ``steps`` hourly rows each: a seasonal load (period 12) driven by a temperature feature."""
    rng = np.random.default_rng(seed)
    rows = []
    for station, level in (("north", 10.0), ("south", 30.0)):
        t = np.arange(steps)
        temp = np.sin(2 * np.pi * t / SEASON) + 0.1 * rng.standard_normal(steps)
        load = level + 5 * temp + 0.01 * t + 0.2 * rng.standard_normal(steps)
        stamps = pd.date_range("2024-01-01", periods=steps, freq="h").astype(str)
        rows.append(pd.DataFrame({"station": station, "time": stamps, "load": load, "temp": temp}))
    return pd.concat(rows, ignore_index=True)


def write_series(path: Path, frame: pd.DataFrame | None = None) -> Path:
    frame = series_frame() if frame is None else frame
    if path.suffix == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_csv(path, index=False)
    return path


def module(path: Path, **options) -> TimeSeries:
    settings = dict(path=str(path), target="load", features=["temp"], time="time", series_id="station",
                    seq_len=12, horizon=4, season=SEASON, val_fraction=0.2, test_fraction=0.2, batch_size=16)  # fmt: skip
    settings.update(options)
    if settings.get("task") == "forecast":
        settings["features"] = []
    datamodule = TimeSeries(**settings)
    datamodule.setup("fit")
    return datamodule


def tensors(datamodule: TimeSeries, split: str) -> tuple[torch.Tensor, ...]:
    return datamodule.datasets[split].tensors


@pytest.mark.parametrize("task", ["per_step", "next_step", "forecast"])
def test_a_value_changed_in_the_test_period_changes_no_training_or_validation_window(tmp_path, task):
    frame = series_frame()
    base = module(write_series(tmp_path / "a.csv", frame), task=task)
    _, val_end = part_bounds(STEPS, 0.2, 0.2)
    for row, column in ((val_end, "load"), (STEPS - 2, "temp")):  # in the test period of "north"
        changed = frame.copy()
        changed.loc[row, column] += 1000.0
        other = module(write_series(tmp_path / f"b{row}.csv", changed), task=task)
        for split in ("train", "val"):
            for a, b in zip(tensors(base, split), tensors(other, split), strict=True):
                assert torch.equal(a, b), (split, row, column)
        if not (task == "forecast" and column == "temp"):  # forecast does not read the feature
            assert not all(
                torch.equal(a, b) for a, b in zip(tensors(base, "test"), tensors(other, "test"), strict=True)
            )
    # The same check can fail: a change at the last training step reaches a training window.
    train_end, _ = part_bounds(STEPS, 0.2, 0.2)
    changed = frame.copy()
    changed.loc[train_end - 1, "load"] += 1000.0
    other = module(write_series(tmp_path / "c.csv", changed), task=task)
    assert not torch.equal(tensors(base, "train")[1], tensors(other, "train")[1])


def test_windows_are_cut_with_the_stride_inside_each_period(tmp_path):
    datamodule = module(write_series(tmp_path / "a.csv"), task="per_step", seq_len=10, stride=3, scale="none")
    train_end, _ = part_bounds(STEPS, 0.2, 0.2)
    per_series = len(range(0, train_end - 10 + 1, 3))
    inputs, targets = tensors(datamodule, "train")
    assert inputs.shape == (2 * per_series, 10, 1) and targets.shape == (2 * per_series, 10, 1)
    frame = series_frame()
    south = frame[frame.station == "south"].reset_index(drop=True)
    np.testing.assert_allclose(targets[per_series + 1, :, 0].numpy(), south.load[3:13].to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(inputs[per_series + 1, :, 0].numpy(), south.temp[3:13].to_numpy(), rtol=1e-6)


def test_scaling_statistics_come_from_the_training_period_only(tmp_path):
    datamodule = module(write_series(tmp_path / "a.parquet"), task="next_step")
    frame = series_frame()
    train_end, _ = part_bounds(STEPS, 0.2, 0.2)
    train_rows = frame.groupby("station").head(train_end)[["load", "temp"]].to_numpy()
    torch.testing.assert_close(datamodule.stats["mean"], torch.from_numpy(train_rows.mean(0)))
    torch.testing.assert_close(datamodule.stats["std"], torch.from_numpy(train_rows.std(0)))
    everything = frame[["load", "temp"]].to_numpy()
    assert not np.allclose(everything.mean(0), train_rows.mean(0))  # the trend makes the test differ


def test_relative_windows_start_from_zero_and_keep_every_error(tmp_path):
    path = write_series(tmp_path / "a.csv")
    absolute, relative = (module(path, task="forecast", relative=flag) for flag in (False, True))
    (context_a, future_a), (context_r, future_r) = tensors(absolute, "test"), tensors(relative, "test")
    assert torch.all(context_r[:, -1] == 0)
    assert future_r.shape == future_a.shape == (future_a.shape[0], 4, 1)
    error_a = future_a - seasonal_naive_forecast(context_a, 4, SEASON)
    error_r = future_r - seasonal_naive_forecast(context_r, 4, SEASON)
    torch.testing.assert_close(error_a, error_r, atol=1e-5, rtol=0)


def test_seasonal_naive_equals_a_hand_computation():
    context = torch.arange(10.0).view(1, 10, 1) * 10  # values 0, 10, ..., 90 at steps 0..9
    forecast = seasonal_naive_forecast(context, horizon=7, season=3)
    # Steps 10..16 take the value one (or two) seasons earlier: 7, 8, 9, 7, 8, 9, 7 (times 10).
    assert forecast.view(-1).tolist() == [70.0, 80.0, 90.0, 70.0, 80.0, 90.0, 70.0]
    assert seasonal_naive_forecast(context, horizon=2, season=1).view(-1).tolist() == [90.0, 90.0]


RUN = ["model=gru", "model.hidden_size=8", "trainer.max_epochs=2", "datamodule.batch_size=16",
       "datamodule.seq_len=12", "datamodule.horizon=4", "datamodule.val_fraction=0.2",
       "datamodule.test_fraction=0.2", "~callbacks.progress_bar", "+trainer.enable_progress_bar=false",
       "trainer.enable_model_summary=false", "print_config=false", "num_threads=1"]  # fmt: skip


def forecast_run(path: Path) -> list[str]:
    return ["datamodule=series_forecast", f"datamodule.path={path}", "datamodule.target=load",
            "datamodule.time=time", "datamodule.series_id=station", f"datamodule.season={SEASON}", "task.teacher_forcing_epochs=2", "scheduler.T_max=16", *RUN]  # fmt: skip


def test_a_forecast_run_writes_baselines_in_data_units_keeps_its_scaling_and_resumes_exactly(tmp_path):
    path = write_series(tmp_path / "load.csv")
    results, objects = train(compose_config(forecast_run(path), tmp_path / "full"))
    test = results["test"]
    # Seasonal-naive on the test windows, by hand in the file's units: the value 12 steps before each target.
    frame = series_frame()
    _, val_end = part_bounds(STEPS, 0.2, 0.2)
    errors = []
    for _, one in frame.groupby("station", sort=False):
        load = one.load.to_numpy()[val_end:]
        for start in range(len(load) - 16 + 1):
            future = load[start + 12 : start + 16]
            errors.append(future - load[start + 12 - SEASON : start + 16 - SEASON])
    assert test["test/snaive_mse_data"] == pytest.approx(np.mean(np.square(errors)), rel=1e-4)
    std = float(objects["datamodule"].stats["std"][0])
    assert test["test/mse_data"] == pytest.approx(test["test/mse"] * std**2, rel=1e-4)
    header = (tmp_path / "full" / "horizon_mse.csv").read_text().splitlines()[0]
    assert header == "step,mse,naive_mse,snaive_mse,mse_data,naive_mse_data,snaive_mse_data"
    assert (tmp_path / "full" / "figures" / "test_horizon_mse.png").is_file()

    # The scaling statistics are in the checkpoint, and a datamodule restores them from it.
    checkpoint = read_checkpoint(results["best_ckpt_path"])
    state = checkpoint["TimeSeries"]
    torch.testing.assert_close(state["mean"], objects["datamodule"].stats["mean"])
    fresh = TimeSeries(path=str(path), target="load", time="time", series_id="station", task="forecast",
                       seq_len=12, horizon=4, season=SEASON, val_fraction=0.2, test_fraction=0.2)  # fmt: skip
    fresh.load_state_dict(state)
    torch.testing.assert_close(fresh.target_scale[1], objects["datamodule"].target_scale[1])
    fresh.setup("fit")
    fresh.load_state_dict(state)  # the same file gives the same statistics: accepted
    changed = series_frame()
    changed.loc[0, "load"] += 50.0
    other = TimeSeries(path=str(write_series(tmp_path / "changed.csv", changed)), target="load", time="time",
                       series_id="station", task="forecast", seq_len=12, horizon=4, val_fraction=0.2,
                       test_fraction=0.2)  # fmt: skip
    other.setup("fit")
    with pytest.raises(DataError, match="data changed since the checkpoint"):
        other.load_state_dict(state)

    # Exact resume: one epoch, then `ckpt_path=last` to two, equals two epochs straight (schedules fixed, so
    # that only trainer.max_epochs differs).
    half = forecast_run(path)
    half[half.index("trainer.max_epochs=2")] = "trainer.max_epochs=1"
    train(compose_config(half, tmp_path / "resumed"))
    resumed, _ = train(compose_config([*forecast_run(path), "ckpt_path=last"], tmp_path / "resumed"))
    assert same_results(resumed, results), (resumed, results)
    assert (
        json.loads((tmp_path / "resumed" / "results.json").read_text())["objective"] == results["objective"]
    )


@pytest.mark.parametrize("task", ["per_step", "next_step"])
def test_regression_tasks_train_on_a_table_and_report_data_units(tmp_path, task):
    path = write_series(tmp_path / "load.parquet")
    overrides = ["datamodule=series", f"datamodule.task={task}", f"datamodule.path={path}",
                 "datamodule.target=load", "datamodule.features=[temp]", "datamodule.time=time",
                 "datamodule.series_id=station", "task.log_figures=false", *RUN]  # fmt: skip
    results, objects = train(compose_config(overrides, tmp_path / "run"))
    std = float(objects["datamodule"].stats["std"][0])
    assert results["test"]["test/mse_data"] == pytest.approx(results["test"]["test/mse"] * std**2, rel=1e-4)
    assert objects["task"].net.input_size == (1 if task == "per_step" else 2)
