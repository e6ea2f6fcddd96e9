"""Resuming a language model mid-epoch: the loader skips the windows already read and the carried TBPTT
hidden state comes back from the checkpoint, so a run killed with SIGKILL ends bit-identical to an
uninterrupted one."""

import csv
import random
from pathlib import Path

import pytest

from rnnexp.lifecycle.checkpoint import read_checkpoint
from rnnexp.training import train
from tests.conftest import compose_config
from tests.resilience import fault, run_cli, same_results

WORDS = ("the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "to", "red", "ball")


def csv_rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "csv" / "metrics.csv", newline="") as file:
        return list(csv.DictReader(file))


def write_corpus(path: Path, characters: int = 600) -> Path:
    """Random word sentences cut to ``characters``: with 10% val and test fractions and 4 streams, each
    training stream is 120 characters, read as 8 windows of 16 (the last one 7): 8 steps per epoch."""
    rng = random.Random(0)
    text = ""
    while len(text) < characters:
        text += " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 8))) + ".\n"
    path.write_text(text[:characters], encoding="utf-8")
    return path


EPOCH_CADENCE = ("trainer.val_check_interval=1.0", "trainer.check_val_every_n_epoch=1")
STEP_CADENCE = (
    "trainer.val_check_interval=3",
)  # text's own step cadence, every 3 steps: 3, 6, 9, 12, 15, 16


def text_run(corpus: Path, cadence: tuple[str, ...] = EPOCH_CADENCE) -> list[str]:
    """A 2-layer LSTM with dropout (the random generators matter) trained with truncated BPTT for 2 epochs of
    8 steps; a step checkpoint every 5 steps lands mid-epoch (steps 5, 10, 15); every best checkpoint is
    kept. Validation at each epoch end, unless ``cadence`` says otherwise."""
    return [*cadence,
        "datamodule=text", f"datamodule.path={corpus}", "datamodule.batch_size=4", "datamodule.seq_len=16",
        "datamodule.val_fraction=0.1", "datamodule.test_fraction=0.1", "model=lstm", "model.hidden_size=16",
        "model.num_layers=2", "model.dropout=0.3", "task.embedding_dim=8", "task.sample_length=20",
        "trainer=cpu", "trainer.max_epochs=2", "trainer.deterministic=true", "trainer.log_every_n_steps=2",
        "callbacks.step_checkpoint.every_n_train_steps=5", "callbacks.model_checkpoint.save_top_k=-1",
        "~callbacks.progress_bar",
        "+trainer.enable_progress_bar=false", "trainer.enable_model_summary=false", "print_config=false",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[list[str], dict, Path]:
    """The uninterrupted run: its overrides, results and run directory."""
    tmp = tmp_path_factory.mktemp("text_reference")
    overrides = text_run(write_corpus(tmp / "words.txt"))
    results, _ = train(compose_config(overrides, tmp / "run"))
    assert (results["epochs"], results["global_step"]) == (2, 2 * 8)
    return overrides, results, tmp / "run"


def test_a_text_run_killed_mid_epoch_resumes_to_bit_identical_results(reference, tmp_path):
    overrides, expected, reference_dir = reference
    run_dir = tmp_path / "run"
    killed = run_cli(*overrides, f"hydra.run.dir={run_dir}", *fault("SignalAtStep", step=13))
    assert killed.returncode == -9, killed.stderr[-2000:]  # SIGKILL while epoch 1 (steps 8-15) runs
    assert not (run_dir / "results.json").exists()
    checkpoints = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert checkpoints == ["epoch000.ckpt", "last.ckpt", "step0000010.ckpt"]  # newest: step 10, mid-epoch

    # What `python train.py <same overrides> ckpt_path=last hydra.run.dir=<run dir>` runs:
    best_file = tmp_path / "best_at_resume.txt"
    record_best = fault("RecordBestAtResume", path=best_file, metric="val_loss_best")
    results, _ = train(compose_config([*overrides, "ckpt_path=last", *record_best], run_dir))
    epoch0_val_loss = next(float(row["val/loss"]) for row in csv_rows(reference_dir) if row["val/loss"])
    assert float(best_file.read_text()) == pytest.approx(epoch0_val_loss)  # the best so far, restored
    assert same_results(results, expected), (results, expected)
    for log in (Path("csv") / "metrics.csv", Path("samples.txt")):  # no gap, no repeated row or sample
        assert (run_dir / log).read_text() == (reference_dir / log).read_text()


def test_a_run_resumed_at_an_epoch_end_starts_the_next_epoch_from_zeros(reference, tmp_path):
    overrides, expected, reference_dir = reference
    epoch_end = reference_dir / "checkpoints" / "epoch000.ckpt"
    assert read_checkpoint(epoch_end)["carried_hidden"]["next_batch"] == 8  # past the epoch's last batch
    results, _ = train(compose_config([*overrides, f"ckpt_path={epoch_end}"], tmp_path / "run"))
    assert same_results(results, expected), (results, expected)


def test_a_text_run_with_a_step_cadence_killed_mid_epoch_resumes_to_bit_identical_results(tmp_path):
    """Validations at steps 3, 6 (epoch 0), 9, 12 (epoch 1), each writing a best and a last checkpoint, and a
    step checkpoint at 10: killed at step 13, the run resumes from step 12's checkpoint, mid-epoch, after a
    validation that moved the early-stopping counter, the plateau of the scheduler and the best value."""
    overrides = text_run(write_corpus(tmp_path / "words.txt"), STEP_CADENCE)
    reference_dir, run_dir = tmp_path / "reference", tmp_path / "run"
    expected, _ = train(compose_config(overrides, reference_dir))
    killed = run_cli(*overrides, f"hydra.run.dir={run_dir}", *fault("SignalAtStep", step=13))
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert read_checkpoint(run_dir / "checkpoints" / "last.ckpt")["global_step"] == 12
    results, _ = train(compose_config([*overrides, "ckpt_path=last"], run_dir))
    assert same_results(results, expected), (results, expected)
    for log in (Path("csv") / "metrics.csv", Path("samples.txt")):
        assert (run_dir / log).read_text() == (reference_dir / log).read_text()
