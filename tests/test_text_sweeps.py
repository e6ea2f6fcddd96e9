"""An Optuna search per text datamodule through the real CLI, reviewed by `python -m rnnexp.review`."""

from __future__ import annotations

import json

import optuna
import pytest

from tests.conftest import run_cli
from tests.test_tagging import tagged_sentences, write_conllu
from tests.test_text_classes import run, write_topics

TINY = ["hydra.sweeper.n_trials=2", "hydra.sweeper.params=null", "model=gru", "model.hidden_size=choice(8,16)",
        "task.embedding_dim=8", "trainer.max_epochs=2", "print_config=false", "callbacks.progress_bar=null",
        "trainer.enable_model_summary=false", "datamodule.min_freq=1"]  # fmt: skip


@pytest.mark.slow  # two trials and a review: a few minutes, 15+ on a machine at load 25
@pytest.mark.timeout(2400)
@pytest.mark.parametrize("datamodule", ["text_classes", "tagging"])
def test_an_optuna_search_runs_and_is_reviewed(datamodule, tmp_path):
    if datamodule == "text_classes":
        path = write_topics(tmp_path / "topics.jsonl", count=120, fmt="jsonl")
    else:
        path = write_conllu(tmp_path / "train.conllu", tagged_sentences(120))
    sweep = tmp_path / "sweep"
    proc = run_cli("-m", f"hparams_search={datamodule}_optuna", f"datamodule.path={path}", *TINY,
                   f"hydra.sweep.dir={sweep}", timeout=1200)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    study = optuna.load_study(study_name=f"{datamodule}_optuna", storage=f"sqlite:///{sweep / 'optuna.db'}")
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 2
    for trial in study.trials:
        results = json.loads((sweep / str(trial.number) / "results.json").read_text())
        assert results["objective"] == trial.value == results["val"]["val/acc_best"]
    review = run("-m", "rnnexp.review", str(sweep), "--out", str(tmp_path / "report.html"))
    assert review.returncode == 0, review.stderr[-2000:]
    assert (tmp_path / "report.html").stat().st_size > 0
