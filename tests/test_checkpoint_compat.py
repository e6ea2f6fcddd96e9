"""Checkpoints written before the package was laid out in folders (qualified class names such as
``rnnexp.char_model.CharRNN``) keep loading, resuming and generating. The fixture in
tests/fixtures/layout_v0/ was made by that layout: a text LSTM after one epoch, its corpus, the text
``python -m rnnexp.generate`` printed from it, and the metrics of resuming it to a second epoch."""

import json
import shutil
from pathlib import Path

import pytest

from rnnexp.errors import DataError
from rnnexp.lifecycle.checkpoint import (
    CLASS_PATHS,
    LEGACY_NAMES,
    load_char_model,
    load_task,
    read_checkpoint,
    resolve_class,
)
from rnnexp.models.char_rnn import CharRNN
from rnnexp.models.sampling import sample
from rnnexp.tasks import CharLanguageModel
from rnnexp.training import train
from tests.conftest import compose_config

FIXTURE = Path(__file__).parent / "fixtures" / "layout_v0"
CHECKPOINT = FIXTURE / "text_lstm_epoch1.ckpt"
EXPECTED = json.loads((FIXTURE / "expected_resume.json").read_text())


def fixture_run(corpus: Path, max_epochs: int) -> list[str]:
    """The overrides the fixture was trained with (one epoch of 8 truncated-BPTT steps)."""
    return [
        "datamodule=text", f"datamodule.path={corpus}", "datamodule.batch_size=4", "datamodule.seq_len=16",
        "datamodule.val_fraction=0.1", "datamodule.test_fraction=0.1", "model=lstm", "model.hidden_size=16",
        "task.embedding_dim=8", "task.sample_length=20", "trainer=cpu", "trainer.deterministic=true",
        "trainer.log_every_n_steps=2", "~callbacks.progress_bar", "+trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false", "print_config=false", "seed=7", f"trainer.max_epochs={max_epochs}",
    ]  # fmt: skip


def test_the_fixture_stores_the_old_qualified_names():
    identity = read_checkpoint(CHECKPOINT)["rnnexp"]
    assert identity["task"] == "rnnexp.tasks.language_model.CharLanguageModel"
    assert identity["net_class"] == "rnnexp.char_model.CharRNN"


def test_an_old_checkpoint_loads_into_the_moved_classes():
    task = load_task(CHECKPOINT)
    assert isinstance(task, CharLanguageModel) and isinstance(task.net, CharRNN)
    assert task.net.vocab.decode(task.net.vocab.encode("the cat")) == "the cat"


def test_an_old_checkpoint_generates_the_same_text_for_the_same_seed():
    # conf/generate.yaml's defaults: temperature 0.8, every character (top_k null); the CLI adds a newline.
    text = "the" + sample(load_char_model(CHECKPOINT), "the", 60, 0.8, None, 3) + "\n"
    assert text == (FIXTURE / "generated_seed3.txt").read_text(encoding="utf-8")


def test_an_old_checkpoint_resumes_to_the_metrics_the_old_layout_reached(tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    resumed_from = shutil.copy(CHECKPOINT, run_dir / "checkpoints" / "last.ckpt")
    overrides = [*fixture_run(FIXTURE / "words.txt", max_epochs=2), f"ckpt_path={resumed_from}"]
    results, _ = train(compose_config(overrides, run_dir))
    assert results["global_step"] == EXPECTED["global_step"]
    assert results["val"]["val/loss"] == pytest.approx(EXPECTED["val/loss"], rel=1e-5)
    assert results["test"]["test/loss"] == pytest.approx(EXPECTED["test/loss"], rel=1e-5)
    # New checkpoints store the short, stable names.
    assert read_checkpoint(results["best_ckpt_path"])["rnnexp"]["task"] == "CharLanguageModel"


def test_every_legacy_name_maps_to_a_registered_class():
    assert set(LEGACY_NAMES.values()) <= set(CLASS_PATHS)
    for name in CLASS_PATHS:
        assert resolve_class(name, "x.ckpt").__name__ == name


def test_a_checkpoint_naming_an_unknown_class_is_refused_without_importing_it(tmp_path):
    with pytest.raises(
        DataError, match=r"names class 'os.system', which this version of rnnexp does not know"
    ):
        resolve_class("os.system", tmp_path / "x.ckpt")
