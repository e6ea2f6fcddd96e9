"""Training end to end through `train(cfg)`: models learn, clipping works, runs are reproducible and leave
their results, checkpoints and figures behind."""

import csv
import json
import math
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from rnnexp.errors import TrainingError
from rnnexp.lifecycle.checkpoint import load_task
from rnnexp.training import compose_config, train

QUIET = ["callbacks=none", "+callbacks.guard._target_=rnnexp.lifecycle.non_finite.NonFiniteLossGuard"]


def test_lstm_learns_sin_to_cos_well_below_the_target_variance(make_cfg):
    cfg = make_cfg("datamodule.num_sequences=512", "datamodule.batch_size=16", "model.hidden_size=32",
                   "optimizer.lr=0.01", "trainer.max_epochs=8", "task.log_figures=false", *QUIET)  # fmt: skip
    results, objects = train(cfg)
    targets = objects["datamodule"].datasets["val"].tensors[1]
    variance = targets.var().item()  # ≈ 0.5 for cos(x): what predicting the mean would score
    assert results["val"]["val/mse"] < 0.2 * variance, (results["val"], variance)


def test_classifier_reads_rows_and_beats_chance_by_a_wide_margin(make_cfg, fake_mnist_root):
    # Class k lights row 4 + 2k: the label must be remembered from the middle of the sequence to its end.
    root = fake_mnist_root(n_train=640, n_test=200)
    cfg = make_cfg("datamodule=mnist_rows", f"datamodule.data_dir={root}", "datamodule.val_size=128",
                   "datamodule.batch_size=32", "model.hidden_size=32", "optimizer.lr=0.01",
                   "trainer.max_epochs=5", *QUIET)  # fmt: skip
    results, _ = train(cfg)
    assert results["test"]["test/acc"] > 0.6  # chance is 0.1


def test_gradient_clipping_keeps_a_huge_learning_rate_finite(make_cfg):
    risky = ["model=rnn", "model.nonlinearity=relu", "optimizer=sgd", "optimizer.lr=2.0", "optimizer.momentum=0",
             "~scheduler", "datamodule.num_sequences=128", "datamodule.batch_size=16", "model.hidden_size=32",
             "trainer.max_epochs=2", "task.log_figures=false", "test=false", *QUIET]  # fmt: skip
    results, _ = train(make_cfg(*risky, "trainer.gradient_clip_val=1.0"))
    assert math.isfinite(results["val"]["val/loss"])
    with pytest.raises(TrainingError, match=r"loss became nan at global step \d+.*gradient norm"):
        train(make_cfg(*risky, "trainer.gradient_clip_val=0"))


def test_the_pre_clip_gradient_norm_is_logged_every_step(make_cfg):
    cfg = make_cfg("datamodule.num_sequences=64", "datamodule.batch_size=8", "model.hidden_size=8",
                   "trainer.max_epochs=1", "trainer.log_every_n_steps=1", "trainer.gradient_clip_val=0.01",
                   "task.log_figures=false", *QUIET)  # fmt: skip
    results, objects = train(cfg)
    steps = results["global_step"]
    assert steps == objects["trainer"].num_training_batches > 1  # one epoch
    with open(Path(cfg.paths.output_dir) / "csv" / "metrics.csv") as metrics:
        rows = [r for r in csv.DictReader(metrics) if r.get("train/grad_norm")]
    assert [int(r["step"]) for r in rows] == list(range(steps))  # log_every_n_steps=1: one norm per step
    norms = [float(r["train/grad_norm"]) for r in rows]
    assert max(norms) > 0.01  # raw norms, larger than the clip value they were clipped to


def test_same_seed_same_metrics(tmp_path):
    overrides = ["seed=7", "datamodule.num_sequences=64", "datamodule.batch_size=8", "model=gru",
                 "model.hidden_size=8", "trainer.max_epochs=2", "task.log_figures=false", *QUIET]  # fmt: skip
    first = train(compose_config(overrides, tmp_path / "a"))[0]
    second = train(compose_config(overrides, tmp_path / "b"))[0]
    assert first["val"] == second["val"] and first["test"] == second["test"]


def test_a_run_leaves_results_config_checkpoints_and_figures(make_cfg):
    cfg = make_cfg("datamodule.num_sequences=64", "datamodule.batch_size=16", "model.hidden_size=8",
                   "trainer.max_epochs=2", "logger=many")  # fmt: skip
    results, _ = train(cfg)
    run_dir = Path(cfg.paths.output_dir)
    saved = json.loads((run_dir / "results.json").read_text())
    assert saved["optimized_metric"] == "val/mse_best"
    assert saved["objective"] == saved["val"]["val/mse_best"] == results["objective"]
    assert set(saved["test"]) >= {"test/loss", "test/mse", "test/mae"}
    assert (run_dir / "config.yaml").read_text().count("${") == 0  # resolved
    assert Path(saved["best_ckpt_path"]).is_file() and (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert sorted(p.name for p in (run_dir / "figures").iterdir()) == [
        "val_predictions_epoch000.png",
        "val_predictions_epoch001.png",
    ]
    events = EventAccumulator(str(run_dir / "tensorboard")).Reload()
    assert "val/predictions" in events.Tags()["images"]  # the figure reached TensorBoard too
    assert (run_dir / "csv" / "metrics.csv").is_file()
    task = load_task(saved["best_ckpt_path"])  # weights_only load, net rebuilt from the stored spec
    assert task(torch.zeros(2, 5, 1)).shape == (2, 5, 1)


def test_classifier_writes_the_test_confusion_matrix(make_cfg, fake_mnist_root):
    root = fake_mnist_root(n_train=64, n_test=40)
    cfg = make_cfg("datamodule=mnist_rows", f"datamodule.data_dir={root}", "datamodule.val_size=16",
                   "model.hidden_size=8", "trainer.max_epochs=1")  # fmt: skip
    results, _ = train(cfg)
    matrix = torch.tensor(results["test_confusion_matrix"])
    assert matrix.shape == (10, 10) and matrix.sum() == 40
    assert matrix.diag().sum() / 40 == pytest.approx(results["test"]["test/acc"])
    assert (Path(cfg.paths.output_dir) / "figures" / "test_confusion_matrix.png").is_file()
