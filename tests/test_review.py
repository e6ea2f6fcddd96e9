"""Reviewing a sweep made by the real CLI: the runs table, curves, best run, parameter effects, the report,
and the demonstrations on single trained runs."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from matplotlib.figure import Figure

from rnnexp import review
from rnnexp.errors import DataError
from rnnexp.sweeps import demonstrations, records, report
from tests.conftest import ROOT
from tests.sweep_runs import grid_sweep, mnist_run, text_run


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory) -> Path:
    return grid_sweep(tmp_path_factory)[0]


def results_of(job_dir: str | Path) -> dict:
    return json.loads((Path(job_dir) / "results.json").read_text())


def test_runs_table_has_every_job_with_overrides_status_metrics_and_time(sweep_dir):
    runs = records.load_sweep(sweep_dir)
    assert list(runs["job"]) == ["0", "1", "2", "3"]
    assert set(runs["model"]) == {"rnn", "gru"} and set(runs["optimizer.lr"]) == {0.003, 1e30}
    assert records.swept_parameters(runs) == ["model", "optimizer.lr"]
    assert runs.attrs["optimized_metric"] == "val/mse_best" and runs.attrs["mode"] == "min"
    for _, row in runs.iterrows():
        if row["optimizer.lr"] == 0.003:
            results = results_of(row["run_dir"])
            assert row["status"] == "completed"
            assert row["objective"] == results["objective"] == row["val/mse_best"]
            assert (
                row["duration_s"] == results["duration_s"] > 0
                and row["test/mse"] == results["test"]["test/mse"]
            )
        else:
            assert row["status"] == "failed" and "loss became inf" in row["error"]
            assert row["duration_s"] >= 0


def test_best_run_is_the_completed_job_with_the_lowest_objective(sweep_dir):
    runs = records.load_sweep(sweep_dir)
    completed = {r: results_of(r)["objective"] for r in runs.loc[runs["status"] == "completed", "run_dir"]}
    assert records.best_run(runs)["run_dir"] == min(completed, key=completed.get)
    with pytest.raises(DataError, match="No job of this sweep completed"):
        records.best_run(runs[runs["status"] == "failed"])


def test_job_without_results_or_failure_is_incomplete(sweep_dir, tmp_path):
    copy = shutil.copytree(sweep_dir, tmp_path / "sweep")
    shutil.copytree(copy / "0" / ".hydra", copy / "4" / ".hydra")  # a job killed before it wrote anything
    runs = records.load_sweep(copy)
    assert runs.set_index("job").loc["4", "status"] == "incomplete"


def test_learning_curves_come_from_each_jobs_metrics_csv(sweep_dir):
    runs = records.load_sweep(sweep_dir)
    completed = runs[runs["status"] == "completed"]
    curves = records.learning_curves(completed.iloc[0]["run_dir"])
    assert list(curves.index) == [0, 1]  # trainer.max_epochs=2
    assert curves["val/mse_best"].iloc[-1] == pytest.approx(completed.iloc[0]["objective"])
    fig = report.plot_learning_curves(runs)
    assert isinstance(fig, Figure) and [ax.get_title() for ax in fig.axes] == [
        "train/loss",
        "val/loss",
        "val/mse",
    ]
    assert all(len(ax.get_lines()) == len(completed) for ax in fig.axes)  # one curve per completed job


def test_parameter_effects_plot_one_panel_per_swept_parameter(sweep_dir):
    fig = report.plot_parameter_effects(records.load_sweep(sweep_dir))
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == ["model", "optimizer.lr"]
    # The two completed jobs (lr=0.003) are the points; the failed ones are counted, not drawn.
    assert sum(len(c.get_offsets()) for c in visible[0].collections) == 2 + 2  # points + category means
    assert "2 failed" in fig.get_suptitle()


def test_report_cli_writes_html_with_embedded_figures_and_a_png(sweep_dir, tmp_path):
    out = tmp_path / "report.html"
    proc = subprocess.run(
        [sys.executable, "-m", "rnnexp.review", str(sweep_dir), "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    page = out.read_text()
    best_figures = report.run_figure_paths(records.best_run(records.load_sweep(sweep_dir))["run_dir"])
    assert best_figures  # the sine run's validation predictions
    assert page.count('src="data:image/png;base64,') == 2 + len(best_figures)  # curves, parameters, the run's
    assert page.count("loss became inf") == 2 and "Best run" in page
    # Jobs run in grid order (model-major): rnn/0.003, rnn/1e30, gru/0.003, gru/1e30; the lr=1e30 ones fail.
    failures = re.findall(r"^job (\d+) (\w+): (.*)$", proc.stdout, re.M)
    assert [(job, status) for job, status, _ in failures] == [("1", "failed"), ("3", "failed")]
    assert all("loss became inf" in why for _, _, why in failures)
    png = report.write_report([sweep_dir], tmp_path / "report.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_cli_names_a_missing_sweep_directory(tmp_path):
    missing = tmp_path / "nope"
    assert review.main([str(missing)]) == 1
    with pytest.raises(DataError, match=re.escape(str(missing))):
        records.load_sweep(missing)


def test_sine_demonstration_plots_the_checkpoints_predictions(sweep_dir):
    runs = records.load_sweep(sweep_dir)
    run_dir = records.best_run(runs)["run_dir"]
    task, cfg = demonstrations.load_run(run_dir)
    _, inputs, targets, preds = demonstrations.predict_test_split(task, demonstrations.run_datamodule(cfg), 1)
    assert torch.equal(preds, task(inputs)) and targets.shape == preds.shape == inputs.shape
    fig = demonstrations.plot_sine_predictions(run_dir, count=3)
    assert len(fig.axes) == 3 and all(len(ax.get_lines()) == 3 for ax in fig.axes)


def test_mnist_demonstrations_agree_with_the_runs_test_results(tmp_path_factory):
    run_dir = mnist_run(tmp_path_factory)
    predictions = demonstrations.classify_test_split(run_dir)
    results = results_of(run_dir)
    accuracy = (predictions["labels"] == predictions["preds"]).float().mean().item()
    assert accuracy == pytest.approx(results["test"]["test/acc"], abs=1e-6)  # the best checkpoint, re-scored
    counts = demonstrations.confusion_counts(predictions)
    assert torch.equal(counts, torch.tensor(results["test_confusion_matrix"]))
    assert int(counts.sum()) == len(predictions["labels"]) == 48
    fig = demonstrations.plot_test_confusion(predictions)
    assert f"{accuracy:.1%}" in fig.axes[0].get_title()
    wrong = int((predictions["labels"] != predictions["preds"]).sum())
    fig = demonstrations.plot_misclassified(predictions, count=16)
    assert sum(bool(ax.get_title()) for ax in fig.axes) == min(16, wrong)


def test_text_demonstration_generates_the_same_text_for_the_same_seed(tmp_path_factory):
    run_dir = text_run(tmp_path_factory)
    first = demonstrations.generate_text(run_dir, prompt="the ", length=30, seed=3)
    assert first == demonstrations.generate_text(run_dir, prompt="the ", length=30, seed=3)
    assert first.startswith("the ") and len(first) == 4 + 30
    with pytest.raises(DataError, match="not a character language model"):
        demonstrations.generate_text(
            records.best_run(records.load_sweep(grid_dir(tmp_path_factory)))["run_dir"]
        )


def grid_dir(tmp_path_factory) -> Path:
    return grid_sweep(tmp_path_factory)[0]
