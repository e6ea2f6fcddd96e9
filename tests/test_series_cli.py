"""The two series datamodules through the real command line: a grid sweep of rnn and gru, each job's
results.json, and `python -m rnnexp.review` on the sweep, as for built-in data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli
from tests.test_series import SEASON, write_series
from tests.test_series_classification import toy_series, write_ts

QUICK = ["model=rnn,gru", "model.hidden_size=8", "trainer.max_epochs=2", "num_threads=1", "print_config=false",
         "callbacks.progress_bar=null", "trainer.enable_model_summary=false"]  # fmt: skip


def sweep_and_review(tmp_path: Path, overrides: list[str]) -> list[dict]:
    sweep_dir = tmp_path / "sweep"
    proc = run_cli("-m", *overrides, *QUICK, f"hydra.sweep.dir={sweep_dir}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = [json.loads(p.read_text()) for p in sorted(sweep_dir.glob("*/results.json"))]
    review = subprocess.run([sys.executable, "-m", "rnnexp.review", str(sweep_dir)], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert review.returncode == 0, review.stderr[-3000:]
    assert (sweep_dir / "report.html").is_file()
    return results


@pytest.mark.slow  # two `python train.py -m` start-ups, two jobs each and a review: ~2 min each under load
@pytest.mark.parametrize("kind", ["series_forecast", "series_classification"])
def test_a_sweep_over_series_data_writes_results_and_is_reviewed(tmp_path, kind):
    if kind == "series_forecast":
        path = write_series(tmp_path / "load.csv")
        data = [f"datamodule.path={path}", "datamodule.target=load", "datamodule.time=time",
                "datamodule.series_id=station", f"datamodule.season={SEASON}", "datamodule.seq_len=12",
                "datamodule.horizon=4", "datamodule.batch_size=32"]  # fmt: skip
    else:
        train_path = write_ts(tmp_path / "toy_TRAIN.ts", *toy_series(60, 0))
        test_path = write_ts(tmp_path / "toy_TEST.ts", *toy_series(30, 1))
        data = [f"datamodule.path={train_path}", f"datamodule.test_path={test_path}", "model.pooling=mean"]
    results = sweep_and_review(tmp_path, [f"datamodule={kind}", *data])
    assert len(results) == 2 and all(r["status"] == "completed" for r in results)
    if kind == "series_forecast":
        assert all(
            {"test/mse_data", "test/naive_mse_data", "test/snaive_mse_data"} <= set(r["test"])
            for r in results
        )
    else:
        assert all(len(r["test_confusion_matrix"]) == 3 for r in results)
