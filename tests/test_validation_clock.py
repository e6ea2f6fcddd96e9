"""One validation clock: for every pair of validation-cadence settings the config allows, each consumer of
validation results (the LR scheduler, early stopping, the best checkpoint, Optuna pruning) acts exactly once
per validation of the fit, on that validation's value, as the run's own CSV log and study record it; a
config that cannot validate is refused before any data is read."""

from __future__ import annotations

import csv
import itertools
import logging
from pathlib import Path

import optuna
import pytest
import pytorch_lightning as pl
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint

from rnnexp.config.checks import check_config
from rnnexp.errors import ConfigError
from rnnexp.lifecycle.checkpoint import read_checkpoint
from rnnexp.lifecycle.validation_clock import validations_in_run
from rnnexp.training import train
from tests.conftest import compose_config

# 100 sequences: 70 for training in batches of 8 (9 steps per epoch), 20 for validation (3 batches).
SINE = [
    "datamodule.num_sequences=100",
    "datamodule.batch_size=8",
    "datamodule.seq_len=12",
    "datamodule.val_fraction=0.2",
    "model.hidden_size=4",
    "task.log_figures=false",
    "~callbacks.progress_bar",
    "+trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "print_config=false",
    "callbacks.model_checkpoint.save_top_k=-1",
    "callbacks.model_checkpoint.filename='s{step:05d}'",
    "callbacks.early_stopping.min_delta=100",
]

# Every setting that changes when or whether validation runs, with values that reach each code path.
FACTORS: dict[str, list[list[str]]] = {
    "cadence": [
        ["trainer.val_check_interval=1.0", "trainer.check_val_every_n_epoch=1"],
        ["trainer.val_check_interval=0.5", "trainer.check_val_every_n_epoch=1"],
        ["trainer.val_check_interval=1.0", "trainer.check_val_every_n_epoch=2"],
        ["trainer.val_check_interval=0.5", "trainer.check_val_every_n_epoch=2"],
        ["trainer.val_check_interval=4", "trainer.check_val_every_n_epoch=null"],
    ],
    "budget": [
        ["trainer.max_epochs=3"],
        ["trainer.max_epochs=10", "trainer.max_steps=13"],  # mid-epoch
        ["trainer.max_epochs=10000", "trainer.max_time=00:00:00:01"],
    ],
    "limit_val_batches": [
        ["trainer.limit_val_batches=1.0"],
        ["trainer.limit_val_batches=0.5"],
        ["trainer.limit_val_batches=2"],
    ],
    "sanity": [
        ["trainer.num_sanity_val_steps=0"],
        ["trainer.num_sanity_val_steps=2"],
        ["trainer.num_sanity_val_steps=-1"],
    ],
    "scheduler": [["scheduler=plateau", "+scheduler.threshold=0.0"], ["scheduler=cosine"]],
    "early_stopping": [["callbacks.early_stopping.patience=1000"], ["callbacks.early_stopping.patience=1"]],
    # 3: a batch may end without an optimizer step, so a stop requested there (max_time) lands on a step
    # that a scheduled check may already have validated
    "accumulation": [["+trainer.accumulate_grad_batches=1"], ["+trainer.accumulate_grad_batches=3"]],
}


def all_pairs(factors: dict[str, list[list[str]]]) -> list[tuple[int, ...]]:
    """A small set of rows (one level index per factor) in which every pair of levels of two factors
    appears at least once: greedy, deterministic."""
    sizes = [len(levels) for levels in factors.values()]
    uncovered = {
        (i, a, j, b)
        for i, j in itertools.combinations(range(len(sizes)), 2)
        for a in range(sizes[i])
        for b in range(sizes[j])
    }
    rows = []
    candidates = list(itertools.product(*(range(n) for n in sizes)))
    while uncovered:
        best = max(
            candidates,
            key=lambda row: sum(
                (i, row[i], j, row[j]) in uncovered for i, j in itertools.combinations(range(len(row)), 2)
            ),
        )
        uncovered -= {(i, best[i], j, best[j]) for i, j in itertools.combinations(range(len(best)), 2)}
        rows.append(best)
    return rows


ROWS = all_pairs(FACTORS)
QUICK = 3  # the first rows (the widest cover) run by default; the rest are marked slow


def overrides_of(row: tuple[int, ...]) -> list[str]:
    return [arg for levels, level in zip(FACTORS.values(), row, strict=True) for arg in levels[level]]


class RecordValidations(pl.Callback):
    """The ground truth: every validation Lightning runs during the fit (not the sanity check), with its
    global step, val/mse and EarlyStopping's count right after it (EarlyStopping comes first in the configured
    callbacks), appended to a file as it ends."""

    def __init__(self, path: str):
        self.path = Path(path)

    def on_validation_end(self, trainer, pl_module):
        if trainer.state.fn == "fit" and not trainer.sanity_checking:
            stopping = next(c for c in trainer.callbacks if isinstance(c, EarlyStopping))
            value = float(trainer.callback_metrics["val/mse"])
            with self.path.open("a") as file:
                file.write(f"{trainer.global_step} {value!r} {stopping.wait_count}\n")


def csv_values(run_dir: Path) -> list[float]:
    with open(run_dir / "csv" / "metrics.csv", newline="") as file:
        return [float(row["val/mse"]) for row in csv.DictReader(file) if row["val/mse"]]


@pytest.mark.parametrize(
    "row",
    [
        pytest.param(row, marks=[] if k < QUICK else [pytest.mark.slow], id="-".join(map(str, row)))
        for k, row in enumerate(ROWS)
    ],
)
def test_every_consumer_acts_once_per_validation_of_the_fit(tmp_path, caplog, row):
    assert_every_consumer_acts_once(tmp_path, caplog, overrides_of(row))


def assert_every_consumer_acts_once(tmp_path, caplog, overrides: list[str]) -> list[int]:
    """Train with ``overrides``; check that each consumer acted once per recorded validation, on its value,
    and that no two validations share a global step. Returns the validations' global steps."""
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    trial = optuna.create_study(study_name="clock", storage=storage).ask()
    sweep_trial = [
        f"optuna_trial.storage={storage}",
        "optuna_trial.study_name=clock",
        f"optuna_trial.number={trial.number}",
        "optuna_trial.pruner={_target_: optuna.pruners.NopPruner}",
    ]
    run_dir, record = tmp_path / "run", tmp_path / "validations.txt"
    recorder = ["+callbacks.record._target_=tests.test_validation_clock.RecordValidations",
                f"+callbacks.record.path={record}"]  # fmt: skip
    with caplog.at_level(logging.INFO, logger="rnnexp"):
        results, objects = train(compose_config([*SINE, *overrides, *sweep_trial, *recorder], run_dir))
    lines = [line.split() for line in record.read_text().splitlines()]
    steps, values = [int(line[0]) for line in lines], [float(line[1]) for line in lines]
    count = len(values)
    assert count >= 1, overrides
    assert len(set(steps)) == count, steps  # one validation per global step: the same weights once
    # min_delta=100: each validation after the first adds one to EarlyStopping's count, as it happens (its
    # state after train() is the one restored from the best checkpoint by the test pass)
    assert [int(line[2]) for line in lines] == list(range(count))
    reported_after_fit = "No validation ran at the end of training" in caplog.text
    logged = csv_values(run_dir)
    assert all(any(v == pytest.approx(value, rel=1e-6) for v in logged) for value in values)  # in the log
    assert len(logged) >= count + reported_after_fit
    trainer = objects["trainer"]

    stopping = next(c for c in trainer.callbacks if isinstance(c, EarlyStopping))
    assert stopping.wait_count == count - 1  # min_delta=100: every validation after the first is counted
    stopped_early = stopping.wait_count >= stopping.patience
    assert count <= stopping.patience + 1 and stopped_early == (count == stopping.patience + 1)

    scheduler = trainer.lr_scheduler_configs[0].scheduler
    assert scheduler.last_epoch == count  # stepped once per validation
    if hasattr(scheduler, "best"):  # plateau: on each validation's own value
        assert scheduler.best == pytest.approx(min(values), rel=1e-6)
    else:
        assert scheduler.T_max == validations_in_run(trainer)
        if not stopped_early and "trainer.max_time=00:00:00:01" not in overrides:
            assert scheduler.T_max == count  # T_max: null spans the run's validations

    best = next(c for c in trainer.callbacks if isinstance(c, ModelCheckpoint) and c.monitor)
    assert len(list((run_dir / "checkpoints").glob("s*.ckpt"))) == count  # save_top_k=-1: one per validation
    assert float(best.best_model_score) == pytest.approx(min(values), rel=1e-6)
    assert results["val"]["val/mse_best"] == pytest.approx(min(values), rel=1e-6)

    reported = optuna.load_study(study_name="clock", storage=storage).trials[0].intermediate_values
    assert reported == pytest.approx(dict(enumerate(values)), rel=1e-6)  # pruning: each validation, once

    assert read_checkpoint(run_dir / "checkpoints" / "last.ckpt")["global_step"] == results["global_step"]
    return steps


class StopAfterValidations(pl.Callback):
    """Requests a stop, as Lightning's Timer does when ``max_time`` runs out, at the first batch after the
    ``n``-th validation of the fit that does not step the optimizer (accumulation): the batch at which
    Lightning validated the same global step a second time."""

    def __init__(self, n: int):
        self.n, self.validations, self.stopped_at = n, 0, None

    def on_validation_end(self, trainer, pl_module):
        if trainer.state.fn == "fit" and not trainer.sanity_checking:
            self.validations += 1
            self.validated_step = trainer.global_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        did_not_step = self.validations and trainer.global_step == self.validated_step
        if self.validations == self.n and self.stopped_at is None and did_not_step:
            trainer.should_stop, self.stopped_at = True, trainer.global_step


# The row that validated global step 7 twice (the Timer's stop after a half-epoch check, accumulation 3).
ISSUE_ROW = [
    "trainer.val_check_interval=0.5",
    "trainer.check_val_every_n_epoch=1",
    "trainer.max_epochs=10000",
    "trainer.max_time=00:00:00:01",
    "trainer.limit_val_batches=2",
    "trainer.num_sanity_val_steps=-1",
    "scheduler=plateau",
    "+scheduler.threshold=0.0",
    "callbacks.early_stopping.patience=1000",
    "+trainer.accumulate_grad_batches=3",
]


def test_a_stop_at_a_batch_that_did_not_step_does_not_validate_that_step_again(tmp_path, caplog):
    """Deterministic form of the row: validations at steps 1, 2 (epoch 0) and 4 (epoch 1, batch 3); the stop
    comes at batch 4, which accumulates without stepping: the fit ends there, on the step-4 validation, and
    every consumer counted 3 validations (before: step 4 validated twice, EarlyStopping counted one less)."""
    stop = [
        "+callbacks.stop._target_=tests.test_validation_clock.StopAfterValidations",
        "+callbacks.stop.n=3",
    ]
    steps = assert_every_consumer_acts_once(tmp_path, caplog, [*ISSUE_ROW, *stop])
    assert steps == [1, 2, 4]
    assert "No validation ran at the end of training" not in caplog.text  # step 4 is the run's last


def test_the_issue_row_with_max_time_validates_each_step_once(tmp_path, caplog):
    """The row itself (where the Timer stops depends on the machine's speed)."""
    assert_every_consumer_acts_once(tmp_path, caplog, ISSUE_ROW)


def test_the_cover_holds_every_pair():
    levels = [range(len(v)) for v in FACTORS.values()]
    for i, j in itertools.combinations(range(len(levels)), 2):
        assert {(row[i], row[j]) for row in ROWS} == set(itertools.product(levels[i], levels[j]))


def test_the_issue_example_plateau_with_validation_every_second_epoch_works(tmp_path):
    """`scheduler=plateau trainer.check_val_every_n_epoch=2 trainer.max_epochs=4`: Lightning's own stepping
    died at the end of epoch 0 (no val/mse yet); now the scheduler steps after epochs 1 and 3."""
    cadence = ["scheduler=plateau", "trainer.check_val_every_n_epoch=2", "trainer.max_epochs=4"]
    results, objects = train(compose_config([*SINE, *cadence], tmp_path))
    assert results["global_step"] == 36
    assert objects["trainer"].lr_scheduler_configs[0].scheduler.last_epoch == 2


@pytest.mark.parametrize(
    ("overrides", "names"),
    [
        (["trainer.limit_val_batches=0"], "trainer.limit_val_batches=0"),
        (["trainer.limit_val_batches=0.0"], "trainer.limit_val_batches=0.0"),
        (["callbacks.model_checkpoint.save_last=true"], "callbacks.model_checkpoint.save_last=True"),
        (["+callbacks.model_checkpoint.every_n_train_steps=5"], "every_n_train_steps=5"),
        (["+callbacks.model_checkpoint.every_n_epochs=2"], "every_n_epochs=2"),
        (["callbacks.model_checkpoint.save_on_train_epoch_end=true"], "save_on_train_epoch_end=True"),
        (["callbacks.early_stopping.check_on_train_epoch_end=true"], "check_on_train_epoch_end=True"),
    ],
)
def test_a_config_whose_consumers_would_miss_validations_is_refused(make_cfg, overrides, names):
    with pytest.raises(ConfigError, match=names.replace(".", r"\.")):
        check_config(make_cfg(*overrides))
