"""`last.ckpt` is the newest state of the run, whatever ended it (the last epoch, a step budget, early
stopping, an interrupt), and resuming from it continues where the run ended; `best` is the best by the
monitor. The Lightning behaviour this relies on (and the one it works around) is pinned here."""

import csv
import logging
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader, TensorDataset

from rnnexp.lifecycle.checkpoint import read_checkpoint
from rnnexp.lifecycle.run_end import is_final_batch
from rnnexp.training import train
from tests.conftest import compose_config
from tests.resilience import TINY_RUN, fault

# The example: 4 steps per epoch, and a learning rate so large that the best validation is early.
# datamodule.batch_size=64 (the default when the issue was filed): 4 training steps per epoch.
EARLY_BEST = ["model=gru", "model.hidden_size=16", "datamodule.num_sequences=256", "datamodule.batch_size=64", "optimizer.lr=0.5",
              "~scheduler", "task.log_figures=false", "~callbacks.progress_bar",
              "+trainer.enable_progress_bar=false", "trainer.enable_model_summary=false", "print_config=false"]  # fmt: skip


class ScriptedValue(pl.LightningModule):
    """A one-weight model whose validation logs ``values[i]`` at its i-th validation (4 steps per epoch)."""

    def __init__(self, values: list[float]):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.values, self.validations = values, 0

    def training_step(self, batch, batch_idx):
        return (self.weight - batch[0]).pow(2).mean()

    def validation_step(self, batch, batch_idx):
        pass

    def on_validation_epoch_end(self):
        if not self.trainer.sanity_checking:
            self.log("score", self.values[self.validations])
            self.validations += 1

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self):
        return DataLoader(TensorDataset(torch.ones(8, 1)), batch_size=2)

    def val_dataloader(self):
        return DataLoader(TensorDataset(torch.ones(2, 1)), batch_size=2)


def tiny_trainer(tmp_path: Path, callbacks: list, **kwargs) -> pl.Trainer:
    options = dict(max_epochs=4, logger=False, enable_progress_bar=False, enable_model_summary=False)
    options.update(kwargs)
    return pl.Trainer(default_root_dir=tmp_path, callbacks=callbacks, num_sanity_val_steps=0, **options)


def test_pinned_lightning_save_last_follows_top_k_saves_not_the_newest_state(tmp_path):
    """Why rnnexp writes last.ckpt itself: Lightning's `save_last=True` with `save_top_k=1` rewrites last.ckpt
    only when a new best is saved. If this test fails, Lightning changed that behaviour again: re-read
    ModelCheckpoint before relying on it (rnnexp.lifecycle.last_checkpoint)."""
    checkpoint = ModelCheckpoint(dirpath=tmp_path, monitor="score", save_top_k=1, save_last=True)
    tiny_trainer(tmp_path, [checkpoint]).fit(ScriptedValue([1.0, 0.5, 2.0, 3.0]))  # best at epoch 1
    saved = torch.load(tmp_path / "last.ckpt", weights_only=False)
    assert saved["global_step"] == 8  # the best epoch's step, although the run ended at step 16


class SaveAt(pl.Callback):
    """`trainer.save_checkpoint` at the final batch's end (as LastCheckpoint does), or in on_train_end."""

    def __init__(self, path: Path, hook: str):
        self.path, self.hook = path, hook

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self.hook == "batch" and is_final_batch(trainer):
            trainer.save_checkpoint(self.path)

    def on_train_end(self, trainer, pl_module):
        if self.hook == "train_end":
            trainer.save_checkpoint(self.path)


def steps_of_resumed_fit(path: Path, tmp_path: Path) -> list[int]:
    seen: list[int] = []

    class Steps(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            seen.append(trainer.global_step)

    trainer = tiny_trainer(tmp_path, [Steps()], max_epochs=3, max_steps=-1)
    trainer.fit(ScriptedValue([1.0] * 10), ckpt_path=path, weights_only=False)
    return seen


@pytest.mark.parametrize("budget", [{"max_epochs": 2}, {"max_epochs": 3, "max_steps": 6}])
def test_pinned_lightning_a_checkpoint_saved_after_the_final_batch_resumes_after_it(tmp_path, budget):
    """What LastCheckpoint relies on: `trainer.save_checkpoint` at the end of the run's final batch (after
    the last epoch, or mid-epoch after a step budget) resumes with the next batch, each step once."""
    path = tmp_path / "x.ckpt"
    tiny_trainer(tmp_path, [SaveAt(path, "batch")], **budget).fit(ScriptedValue([1.0] * 10))
    first_steps = torch.load(path, weights_only=False)["global_step"]
    assert first_steps == (budget.get("max_steps") or 8)
    assert steps_of_resumed_fit(path, tmp_path) == list(range(first_steps, 12))


def test_pinned_lightning_a_checkpoint_saved_in_on_train_end_after_a_mid_epoch_stop_skips_batches(tmp_path):
    """Why LastCheckpoint does not save in on_train_end: after a stop mid-epoch (step 6 of epoch 1), the
    loops there record epoch 1 as finished, so a resume skips its last two batches (8, 9 -> 6 steps instead
    of the 6 left: it trains 4). If this fails, Lightning changed it; on_train_end may then be fine."""
    path = tmp_path / "x.ckpt"
    tiny_trainer(tmp_path, [SaveAt(path, "train_end")], max_epochs=3, max_steps=6).fit(
        ScriptedValue([1.0] * 10)
    )
    assert steps_of_resumed_fit(path, tmp_path) == [6, 7, 8, 9]


def last_step(run_dir: Path) -> int:
    return read_checkpoint(run_dir / "checkpoints" / "last.ckpt")["global_step"]


def validated_epochs(run_dir: Path) -> list[int]:
    with open(run_dir / "csv" / "metrics.csv", newline="") as file:
        return [int(row["epoch"]) for row in csv.DictReader(file) if row.get("val/loss")]


def test_last_ckpt_after_the_last_epoch_is_the_final_state_and_resume_continues(tmp_path):
    """The issue's example: the best epoch is early, yet last.ckpt is at the final step, and continuing it
    with more epochs trains only the new ones."""
    results, _ = train(compose_config([*EARLY_BEST, "trainer.max_epochs=5"], tmp_path))
    assert results["global_step"] == 20 and last_step(tmp_path) == 20
    assert read_checkpoint(results["best_ckpt_path"])["global_step"] < 20  # best is the best, not the last
    resumed, _ = train(compose_config([*EARLY_BEST, "trainer.max_epochs=7", "ckpt_path=last"], tmp_path))
    assert resumed["global_step"] == 28 and last_step(tmp_path) == 28
    assert validated_epochs(tmp_path) == [0, 1, 2, 3, 4, 5, 6]  # epochs 5 and 6 added, none repeated


def test_last_ckpt_after_a_step_budget_mid_epoch_is_at_that_step(tmp_path):
    results, _ = train(compose_config([*EARLY_BEST, "trainer.max_steps=10"], tmp_path))
    assert results["global_step"] == 10 and last_step(tmp_path) == 10
    resumed, _ = train(compose_config([*EARLY_BEST, "trainer.max_steps=14", "ckpt_path=last"], tmp_path))
    assert resumed["global_step"] == 14 and last_step(tmp_path) == 14


def test_last_ckpt_after_early_stopping_is_at_the_stopping_step(tmp_path):
    # patience 0 and an improvement no validation reaches: the second validation (step 8) stops the run.
    stop = ["callbacks.early_stopping.patience=0", "callbacks.early_stopping.min_delta=100"]
    results, _ = train(compose_config([*EARLY_BEST, *stop], tmp_path))
    assert results["global_step"] == 8 and last_step(tmp_path) == 8


def test_last_ckpt_after_a_validation_skipped_at_the_end_is_at_the_final_step(tmp_path):
    # Validation every 2nd epoch of 3: the last validation of the fit is at step 8, the run ends at 12.
    every_2 = ["trainer.max_epochs=3", "trainer.check_val_every_n_epoch=2"]
    results, _ = train(compose_config([*EARLY_BEST, *every_2], tmp_path))
    assert results["global_step"] == 12 and last_step(tmp_path) == 12


def test_last_ckpt_after_an_interrupt_is_at_the_interrupted_step(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="rnnexp"), pytest.raises(SystemExit):
        train(compose_config([*TINY_RUN, *fault("SignalAtStep", step=13, signum="SIGTERM")], tmp_path))
    assert last_step(tmp_path) == 14  # Lightning finishes batch 13 before it stops
    resumed, _ = train(compose_config([*TINY_RUN, "ckpt_path=last"], tmp_path))
    assert resumed["global_step"] == 24 and last_step(tmp_path) == 24
