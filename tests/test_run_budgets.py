"""A run that ends for any reason but an error (max_steps mid-epoch, max_time, early stopping, the last
epoch) ends on a fresh validation, tests its best checkpoint and writes results.json with the objective;
text validates every N steps and everything that follows validation follows that cadence."""

import csv
import json
from pathlib import Path

import optuna
import pytest

from rnnexp.lifecycle.checkpoint import read_checkpoint
from rnnexp.training import train
from tests.conftest import compose_config
from tests.test_text_resume import write_corpus

# 160 sequences: 128 for training in batches of 8, so 16 steps per epoch.
SINE = ["datamodule.num_sequences=160", "datamodule.batch_size=8", "datamodule.seq_len=16", "model.hidden_size=8",
        "task.log_figures=false", "~callbacks.progress_bar", "+trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false", "print_config=false"]  # fmt: skip


def text(corpus: Path) -> list[str]:
    """8 steps per epoch (see write_corpus); text's own step cadence unless a test sets one."""
    return [
        "datamodule=text", f"datamodule.path={corpus}", "datamodule.batch_size=4", "datamodule.seq_len=16",
        "datamodule.val_fraction=0.1", "datamodule.test_fraction=0.1", "model.hidden_size=16",
        "task.embedding_dim=8", "task.sample_length=10", "~callbacks.progress_bar",
        "+trainer.enable_progress_bar=false", "trainer.enable_model_summary=false", "print_config=false",
    ]  # fmt: skip


def val_steps(run_dir: Path) -> list[int]:
    """The global steps after which the run validated (Lightning logs a validation under the step index of
    the training batch before it: global step - 1)."""
    with open(run_dir / "csv" / "metrics.csv", newline="") as file:
        return [int(row["step"]) + 1 for row in csv.DictReader(file) if row.get("val/loss")]


def finished(run_dir: Path, objective_name: str) -> dict:
    """results.json of a finished run, with val and test metrics and the objective."""
    results = json.loads((run_dir / "results.json").read_text())
    assert results["optimized_metric"] == objective_name
    assert results["objective"] == results["val"][objective_name]
    assert results["val"] and results["test"] and results["best_ckpt_path"]
    return results


def test_sine_stopped_by_max_steps_mid_epoch_validates_there_and_reports(tmp_path):
    train(compose_config([*SINE, "trainer.max_steps=5"], tmp_path))
    results = finished(tmp_path, "val/mse_best")
    assert results["global_step"] == 5
    assert val_steps(tmp_path) == [5]
    assert read_checkpoint(results["best_ckpt_path"])["global_step"] == 5


def test_text_stopped_by_max_steps_mid_epoch_validates_there_and_reports(tmp_path):
    corpus = write_corpus(tmp_path / "words.txt")
    train(compose_config([*text(corpus), "trainer.max_steps=5"], tmp_path / "run"))
    results = finished(tmp_path / "run", "val/loss_best")
    assert results["global_step"] == 5 and val_steps(tmp_path / "run") == [5]
    assert "step 5" in (tmp_path / "run" / "samples.txt").read_text()


def test_a_run_stopped_by_max_time_reports(tmp_path):
    train(compose_config([*SINE, "trainer.max_epochs=10000", "trainer.max_time=00:00:00:02"], tmp_path))
    results = finished(tmp_path, "val/mse_best")
    assert 0 < results["global_step"] < 10000 * 16 and results["duration_s"] >= 2
    assert val_steps(tmp_path)[-1] == results["global_step"]  # the last validation is of the final weights


def test_a_run_stopped_by_early_stopping_reports(tmp_path):
    # patience 0 and an improvement threshold no epoch reaches: the second validation stops the run.
    overrides = ["callbacks.early_stopping.patience=0", "callbacks.early_stopping.min_delta=100"]
    train(compose_config([*SINE, *overrides], tmp_path))
    results = finished(tmp_path, "val/mse_best")
    assert results["epochs"] == 2 and val_steps(tmp_path) == [16, 32]


def test_a_run_whose_last_epoch_skips_validation_validates_once_at_the_end(tmp_path):
    # Validation every 2nd epoch of 3: the fit's last validation is after epoch 2 (step 32), not the end.
    train(compose_config([*SINE, "trainer.max_epochs=3", "trainer.check_val_every_n_epoch=2"], tmp_path))
    results = finished(tmp_path, "val/mse_best")
    assert results["global_step"] == 48 and val_steps(tmp_path)[:1] == [32] and len(val_steps(tmp_path)) == 2


def test_text_validates_every_n_steps_with_checkpoints_samples_and_scheduler_on_that_cadence(tmp_path):
    corpus = write_corpus(tmp_path / "words.txt")
    run_dir = tmp_path / "run"
    cadence = [
        "trainer.val_check_interval=3",
        "trainer.max_epochs=2",
        "callbacks.model_checkpoint.save_top_k=-1",
    ]
    _, objects = train(compose_config([*text(corpus), *cadence], run_dir))
    finished(run_dir, "val/loss_best")
    assert val_steps(run_dir) == [
        3,
        6,
        9,
        12,
        15,
        16,
    ]  # every 3 steps across the epoch end at 8, then the end
    saved = {read_checkpoint(p)["global_step"] for p in (run_dir / "checkpoints").glob("epoch*.ckpt")}
    assert {3, 6} <= saved  # best-model checkpoints between epoch ends
    samples = (run_dir / "samples.txt").read_text()
    assert [f"step {s}\n" in samples for s in (3, 6, 9, 12, 15, 16)] == [True] * 6
    scheduler = objects["trainer"].lr_scheduler_configs[0].scheduler  # cosine, T_max: the run's validations
    assert (scheduler.T_max, scheduler.last_epoch) == (6, 6)  # stepped at each validation: 3, ..., 15, 16


def test_a_plateau_scheduler_steps_after_each_validation_of_a_step_cadence(tmp_path):
    corpus = write_corpus(tmp_path / "words.txt")
    overrides = ["trainer.val_check_interval=3", "trainer.max_epochs=2", "scheduler=plateau"]
    _, objects = train(compose_config([*text(corpus), *overrides], tmp_path / "run"))
    assert objects["trainer"].lr_scheduler_configs[0].scheduler.last_epoch == 6  # steps 3, ..., 15, 16


def test_the_default_text_cadence_is_a_step_count(make_cfg):
    trainer = make_cfg("datamodule=text").trainer
    assert isinstance(trainer.val_check_interval, int) and trainer.check_val_every_n_epoch is None
    assert make_cfg("datamodule=sine").trainer.val_check_interval == 1.0


@pytest.mark.parametrize("budget", ["trainer.max_steps=5", "trainer.max_time=00:00:00:30"])
def test_budgets_are_config_keys_without_plus(make_cfg, budget):
    key, value = budget.split("=")
    assert str(make_cfg(budget).trainer[key.split(".")[1]]) == value


def test_pruning_follows_the_text_step_cadence_and_stops_mid_epoch(tmp_path):
    """A trial of a text sweep reports at every validation of the step cadence, not per epoch, and the pruner
    can stop it between epoch ends."""
    corpus = write_corpus(tmp_path / "words.txt")
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    trial = optuna.create_study(study_name="text", storage=storage).ask()
    # Prunes at the first report from validation 1 on: every loss is above 0.
    pruner = "{_target_: optuna.pruners.ThresholdPruner, upper: 0.0, n_warmup_steps: 1}"
    sweep_trial = [f"optuna_trial.storage={storage}", "optuna_trial.study_name=text",
                   f"optuna_trial.number={trial.number}", f"optuna_trial.pruner={pruner}"]  # fmt: skip
    run_dir = tmp_path / "run"
    cadence = ["trainer.val_check_interval=3", "trainer.max_epochs=2"]
    results, _ = train(compose_config([*text(corpus), *cadence, *sweep_trial], run_dir))
    assert (results["status"], results["pruned_at_validation"], results["global_step"]) == ("pruned", 1, 6)
    assert val_steps(run_dir) == [3, 6]  # pruned inside the first epoch (8 steps), no validation after it
    with open(run_dir / "csv" / "metrics.csv", newline="") as file:
        logged = [float(row["val/loss"]) for row in csv.DictReader(file) if row.get("val/loss")]
    reported = optuna.load_study(study_name="text", storage=storage).trials[0].intermediate_values
    assert reported == pytest.approx({0: logged[0], 1: logged[1]})
