"""The text datamodule end to end: composition, learning, state resets in Lightning, checkpoints, sampling."""

import json
import math
import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from rnnexp import generate
from rnnexp.data.char_corpus import CharCorpus
from rnnexp.errors import ConfigError
from rnnexp.lifecycle.checkpoint import load_task
from rnnexp.models.recurrent import RecurrentSpec
from rnnexp.models.sampling import sample
from rnnexp.tasks import CharLanguageModel
from rnnexp.training import train
from tests.conftest import ROOT, compose_config

WORDS = (
    "the",
    "cat",
    "sat",
    "on",
    "a",
    "mat",
    "and",
    "dog",
    "ran",
    "to",
    "red",
    "ball",
    "while",
    "birds",
    "sang",
)
SMALL = ["model.hidden_size=16", "datamodule.batch_size=8", "datamodule.seq_len=16", "callbacks=none",
         "task.embedding_dim=8", "task.sample_length=20"]  # fmt: skip


def write_word_corpus(path: Path, lines: int = 400, seed: int = 0) -> Path:
    """Sentences of random words: far more predictable per character than the character frequencies say."""
    rng = random.Random(seed)
    sentences = (" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9))) + "." for _ in range(lines))
    path.write_text("\n".join(sentences), encoding="utf-8")
    return path


def unigram_entropy_nats(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log(n / len(text)) for n in counts.values())


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """One short LSTM run on the word corpus with checkpoints and CSV + TensorBoard loggers."""
    tmp = tmp_path_factory.mktemp("lm")
    path = write_word_corpus(tmp / "words.txt", lines=800)
    overrides = ["datamodule=text", f"datamodule.path={path}", "trainer=cpu", "trainer.max_epochs=2",
                 "logger=many", "callbacks=model_checkpoint", "model.hidden_size=64", "datamodule.batch_size=16",
                 "datamodule.seq_len=32", "optimizer.lr=1e-2", "task.sample_length=60"]  # fmt: skip
    results, objects = train(compose_config(overrides, tmp / "run"))
    return path, results, objects


def test_val_loss_falls_far_below_the_unigram_entropy(trained_run):
    path, results, _ = trained_run
    entropy = unigram_entropy_nats(path.read_text())  # ≈ 2.7 nats/char for this corpus
    assert results["val"]["val/loss"] < 0.5 * entropy
    assert results["objective"] == results["val"]["val/loss_best"] <= results["val"]["val/loss"]
    val = results["val"]
    assert val["val/bpc"] == pytest.approx(val["val/loss"] / math.log(2), rel=1e-4)
    assert val["val/ppl"] == pytest.approx(math.exp(val["val/loss"]), rel=1e-4)
    assert {"test/loss", "test/bpc", "test/ppl"} <= results["test"].keys()
    assert {"train/loss", "train/bpc", "train/ppl"} <= results["train"].keys()


def test_the_checkpoint_holds_the_vocabulary_and_rebuilds_the_model(trained_run):
    _, results, objects = trained_run
    task = load_task(results["best_ckpt_path"])
    assert isinstance(task, CharLanguageModel)
    assert task.net.vocab == objects["datamodule"].vocab and len(task.net.vocab) > 10
    ids = objects["datamodule"].vocab.encode("the cat sat.").unsqueeze(0)
    trained = objects["task"].cpu().eval()
    trained.load_state_dict(torch.load(results["best_ckpt_path"], weights_only=True)["state_dict"])
    with torch.no_grad():
        assert torch.allclose(task(ids)[0], trained(ids)[0], atol=1e-6)
    text = sample(task.net, "the ", 300, temperature=0.5, seed=3)
    assert text == sample(task.net, "the ", 300, temperature=0.5, seed=3)
    words = text.replace("\n", " ").replace(".", " ").split()
    assert sum(w in WORDS for w in words) > 0.8 * len(words)  # it learned the words


def test_a_sample_is_logged_after_every_validation_epoch(trained_run):
    _, results, _ = trained_run
    samples = (Path(results["run_dir"]) / "samples.txt").read_text()
    assert samples.count("===== val/sample | epoch") == 2  # not the sanity check, once per epoch
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(Path(results["run_dir"]) / "tensorboard"), size_guidance={"tensors": 0})
    events.Reload()
    assert "val/sample/text_summary" in events.Tags()["tensors"]
    assert len(events.Tensors("val/sample/text_summary")) == 2


def run_generate(monkeypatch, capsys, *overrides: str) -> tuple[int, str, str]:
    """``python -m rnnexp.generate <overrides>`` in this process: (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["rnnexp.generate", *overrides])
    code = 0
    try:
        generate.main()
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def test_generate_prints_the_same_text_for_the_same_seed_and_refuses_unknown_characters(
    trained_run, monkeypatch, capsys
):
    _, results, _ = trained_run
    options = [f"ckpt_path={results['best_ckpt_path']}", "length=80"]
    runs = [run_generate(monkeypatch, capsys, *options, "prompt=the cat", f"seed={s}") for s in (5, 5, 6)]
    assert runs[0][0] == 0 and runs[0][1].startswith("the cat") and len(runs[0][1]) == len("the cat") + 80 + 1
    assert runs[0] == runs[1] and runs[0][1] != runs[2][1]
    code, out, err = run_generate(monkeypatch, capsys, *options, "prompt=ROMEO:")
    assert code == 1 and not out and "'R', 'O', 'M', 'E', ':'" in err


@pytest.mark.slow
def test_generate_runs_as_a_module_from_any_directory(trained_run, tmp_path):
    _, results, _ = trained_run
    command = [sys.executable, "-m", "rnnexp.generate", f"ckpt_path={results['best_ckpt_path']}", "length=80",
               "prompt=the cat", "seed=5"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    task = load_task(results["best_ckpt_path"])
    assert run.stdout == "the cat" + sample(task.net, "the cat", 80, temperature=0.8, seed=5) + "\n"
    assert list(tmp_path.iterdir()) == []  # generating writes nothing


@pytest.mark.parametrize("model", ["rnn", "lstm", "gru"])
def test_text_composes_and_runs_a_step_for_every_cell(make_cfg, tmp_path, model):
    path = write_word_corpus(tmp_path / "words.txt", lines=100)
    cfg = make_cfg("datamodule=text", f"datamodule.path={path}", f"model={model}", "trainer=debug", *SMALL)
    assert cfg.task._target_.endswith("CharLanguageModel") and cfg.monitor.metric == "val/loss"
    results, objects = train(cfg)
    assert objects["task"].net.spec.cell == model and objects["trainer"].global_step == 1
    assert results["objective"] == results["val"]["val/loss_best"] > 0
    assert json.loads((Path(results["run_dir"]) / "results.json").read_text())["test"]["test/loss"] > 0


def test_independent_chunks_train_without_carrying_state(make_cfg, tmp_path):
    path = write_word_corpus(tmp_path / "words.txt", lines=100)
    cfg = make_cfg("datamodule=text", f"datamodule.path={path}", "datamodule.tbptt=false", "trainer=debug",
                   *SMALL)  # fmt: skip
    assert cfg.task.carry_hidden is False
    _, objects = train(cfg)
    assert objects["task"].carried["train"] is None


def test_carrying_state_over_shuffled_chunks_is_refused(make_cfg, tmp_path):
    path = write_word_corpus(tmp_path / "words.txt", lines=100)
    cfg = make_cfg("datamodule=text", f"datamodule.path={path}", "datamodule.tbptt=false",
                   "task.carry_hidden=true", "trainer=debug", *SMALL)  # fmt: skip
    with pytest.raises(ConfigError, match=r"task\.carry_hidden=True disagrees with datamodule\.tbptt=False"):
        train(cfg)


def test_a_bidirectional_language_model_is_refused_before_the_corpus_is_read(make_cfg, tmp_path):
    cfg = make_cfg("datamodule=text", f"datamodule.path={tmp_path}/missing.txt", "model.bidirectional=true")
    with pytest.raises(
        ConfigError, match=r"model\.bidirectional=true cannot be used here: a language model predicts"
    ):
        train(cfg)


def test_tying_needs_the_embedding_size_to_match_the_hidden_size(make_cfg, tmp_path):
    path = write_word_corpus(tmp_path / "words.txt", lines=100)
    overrides = ["datamodule=text", f"datamodule.path={path}", "trainer=debug", *SMALL, "task.tie_weights=true"]  # fmt: skip
    with pytest.raises(ConfigError, match=r"task\.embedding_dim \(8\) must equal model\.hidden_size \(16\)"):
        train(make_cfg(*overrides))
    _, objects = train(make_cfg(*overrides, "task.embedding_dim=16", "task.init=uniform"))
    assert objects["task"].net.decoder.weight is objects["task"].net.embedding.weight


class StateProbe(pl.Callback):
    """Records, before every batch, whether the task starts that batch from a carried state."""

    def __init__(self):
        self.seen: list[tuple[str, int, int, bool]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.seen.append(("train", trainer.current_epoch, batch_idx, pl_module.carried["train"] is not None))

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        self.seen.append(("val", trainer.current_epoch, batch_idx, pl_module.carried["val"] is not None))


def test_state_is_reset_at_each_epoch_and_each_validation_pass_but_survives_a_validation(tmp_path):
    path = write_word_corpus(tmp_path / "words.txt", lines=200)
    dm = CharCorpus(path=str(path), val_fraction=0.1, test_fraction=0.1, batch_size=4, seq_len=16)
    net = CharLanguageModel.build_net(RecurrentSpec(cell="gru", hidden_size=8), dm, embedding_dim=4,
                                      tie_weights=False)  # fmt: skip
    task = CharLanguageModel(net, optimizer=torch.optim.Adam, embedding_dim=4, sample_length=0)
    probe = StateProbe()
    trainer = pl.Trainer(max_epochs=2, limit_train_batches=4, limit_val_batches=3, val_check_interval=2,
                         num_sanity_val_steps=2, callbacks=[probe], logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, accelerator="cpu")  # fmt: skip
    trainer.fit(task, datamodule=dm)
    train_steps = [(epoch, i, carried) for stage, epoch, i, carried in probe.seen if stage == "train"]
    assert train_steps == [(e, i, i > 0) for e in range(2) for i in range(4)]  # batch 2 follows a validation
    val_steps = [(i, carried) for stage, _, i, carried in probe.seen if stage == "val"]
    per_pass = [(0, False), (1, True), (2, True)]
    assert len(dm.dataset("val")) >= 3
    assert val_steps == per_pass[:2] + per_pass * 4  # the sanity check's 2 batches, then 4 passes of 3
