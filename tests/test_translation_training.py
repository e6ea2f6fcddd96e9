"""Small seq2seq and captioning runs learn, publish their samples and figures, and their checkpoints translate."""

import random
from pathlib import Path

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from rnnexp.data.mnist_rows import write_idx
from rnnexp.lifecycle.checkpoint import load_task, load_translation_model
from rnnexp.models.translation import translate
from rnnexp.training import train
from tests.conftest import bar_images


@pytest.fixture(autouse=True)
def one_thread():
    """These models are tiny: one thread is faster, and on a shared machine a second thread waits for a busy
    core (runs here took 70 s with two threads and 8 s with one). conftest restores the count afterwards."""
    torch.set_num_threads(1)


def final_checkpoint(objects: dict) -> str:
    """The checkpoint Lightning's default callback wrote at the last epoch (callbacks=none adds no other)."""
    path = (
        objects["trainer"].checkpoint_callback.last_model_path
        or objects["trainer"].checkpoint_callback.best_model_path
    )
    assert path, "Lightning's default checkpoint callback wrote nothing"
    return path


FAST = ["callbacks=none", "model=gru", "task.embedding_dim=16", "trainer.num_sanity_val_steps=0",
        "optimizer.lr=1e-2", "~scheduler", "trainer.enable_model_summary=false"]  # fmt: skip


def test_reversing_short_strings_is_learned(make_cfg):
    cfg = make_cfg(
        *FAST, "datamodule=char_pairs", "datamodule.task=reverse", "datamodule.num_pairs=1200",
        "datamodule.min_length=2", "datamodule.max_length=4", "datamodule.alphabet=abcdef",
        "datamodule.batch_size=32", "model.hidden_size=64", "trainer.max_epochs=6", "logger=many",
    )  # fmt: skip
    results, objects = train(cfg)
    assert results["test"]["test/exact_match"] > 0.8  # chance: 1 in ~6^3
    table = (Path(objects["trainer"].default_root_dir) / "translations.txt").read_text(encoding="utf-8")
    assert table.count("===== val/samples") == 6 and table.splitlines()[1].split() == [
        "source",
        "|",
        "truth",
        "|",
        "output",
    ]
    events = EventAccumulator(str(Path(results["run_dir"]) / "tensorboard"), size_guidance={"tensors": 0})
    events.Reload()
    assert len(events.Tensors("val/samples/text_summary")) == 6  # once per validation, as a Markdown table
    assert results["best_ckpt_path"] == ""  # callbacks=none: no monitor, so no "best" checkpoint
    net = load_translation_model(final_checkpoint(objects))
    outputs = translate(net, ["abcd", "fe", "cab"], beam_size=3)
    assert sum(out == src[::-1] for out, src in zip(outputs, ["abcd", "fe", "cab"], strict=True)) >= 2


def test_a_tiny_tsv_file_is_learned(make_cfg, tmp_path):
    rng = random.Random(0)
    words = {"".join(rng.choice("abcdef") for _ in range(rng.randint(2, 4))) for _ in range(400)}
    path = tmp_path / "upper.tsv"
    path.write_text("".join(f"{w}\t{w.upper()}\n" for w in sorted(words)), encoding="utf-8")
    cfg = make_cfg(
        *FAST, "datamodule=char_pairs", f"datamodule.path={path}", "datamodule.batch_size=16",
        "model.hidden_size=64", "trainer.max_epochs=8",
    )  # fmt: skip
    results, _ = train(cfg)
    assert results["test"]["test/exact_match"] > 0.35, results["test"]  # chance: about 1 in 6^3


def write_bar_captions_root(root, n_train: int, n_test: int):
    raw = root / "FashionMNIST" / "raw"
    for prefix, count, seed in (("train", n_train, 0), ("t10k", n_test, 1)):
        images, labels = bar_images(count, seed)
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return root


def test_captions_of_a_small_idx_set_beat_chance(make_cfg, tmp_path):
    root = write_bar_captions_root(tmp_path / "data", n_train=800, n_test=200)
    cfg = make_cfg(
        *FAST, "datamodule=image_captions", "datamodule.variant=fashion", f"datamodule.data_dir={root}",
        "datamodule.download=false", "datamodule.val_size=100", "datamodule.batch_size=32",
        "model.hidden_size=32", "task.feature_size=32", "trainer.max_epochs=5",
    )  # fmt: skip
    results, objects = train(cfg)
    test = results["test"]
    assert test["test/acc"] > 0.1 + 0.4, test  # chance is 1 in 10 classes
    assert test["test/acc"] == pytest.approx(test["test/exact_match"])  # distinct captions: the same event
    figure = objects["trainer"].default_root_dir + "/figures/test_captions.png"
    assert np.fromfile(figure, dtype=np.uint8)[:4].tobytes() == b"\x89PNG"
    task = load_task(final_checkpoint(objects))
    assert task.net.vocab.characters == "".join(sorted(set("".join(objects["datamodule"].captions))))
