"""benchmarks/memory_suite.py runs a task end to end through train() (tiny sizes), and its table holds each
group's mean ± sample std over seeds."""

import statistics

import pytest

from benchmarks import memory_suite


def test_a_tiny_run_reports_the_task_metrics_beside_the_baseline(tmp_path):
    out = tmp_path / "rows.jsonl"
    rows = memory_suite.main(
        ["--tasks", "copy_memory", "--cells", "gru", "--seeds", "0", "--steps", "2", "--val-every", "1",
         "--copy-delay", "3", "--train-size", "40", "--hidden-size", "4", "--out", str(out)]
    )  # fmt: skip
    (row,) = rows
    assert row["steps"] == 2 and row["test/baseline_loss"] == pytest.approx(10 * 2.0794415 / 23)
    assert 0.0 <= row["test/recall_acc"] <= 1.0 and row["test/loss"] > 0
    assert out.read_text().count("\n") == 1


def test_the_summary_is_mean_and_std_over_seeds():
    rows = [
        {"task": "adding", "cell": "gru", "seed": s, "test/mse": m, "test/baseline_mse": 0.17, "wall_s": 10.0}
        for s, m in enumerate([0.01, 0.02, 0.06])
    ]
    table = memory_suite.summary(rows)
    mean, std = statistics.mean([0.01, 0.02, 0.06]), statistics.stdev([0.01, 0.02, 0.06])
    assert f"| adding | gru | 3 | mse {mean:.4g} ± {std:.2g}; baseline_mse 0.17 ± 0 | 10 |" in table
