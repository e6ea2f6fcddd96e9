"""Text classification (datamodule=text_classes): the file formats, the splits, the tokens, padding that never
changes a prediction, a small corpus learned well above chance, and the predict CLI on the checkpoint."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from rnnexp.data.text_classes import TextClasses
from rnnexp.data.tokens import Tokenizer, TokenVocabulary
from rnnexp.lifecycle.checkpoint import load_token_model
from rnnexp.models.recurrent import RecurrentSpec
from rnnexp.models.token_net import TokenRecurrentNet
from rnnexp.models.token_prediction import predict_lines as predict
from rnnexp.tasks.text_classifier import TextClassifier, balanced_weights
from rnnexp.training import train
from tests.conftest import ROOT

TOPICS = {
    "sport": ["goal", "match", "team", "coach", "win", "league", "player", "score"],
    "tech": ["computer", "chip", "software", "phone", "data", "network", "code", "robot"],
    "food": ["bread", "cheese", "cook", "soup", "recipe", "taste", "oven", "salad"],
}
FILLER = ["the", "a", "of", "and", "to", "in", "is", "was", "it", "on", "with", "for", "that", "this"]


def topic_rows(count: int, seed: int = 0) -> list[tuple[str, str]]:
    """(text, topic): 3 to 30 filler words with a topic word in about every sixth place; the lengths spread
    tenfold, so batches are padded."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(count):
        topic = list(TOPICS)[rng.integers(len(TOPICS))]
        words = list(rng.choice(FILLER, size=rng.integers(3, 31)))
        for _ in range(max(1, len(words) // 6)):
            words.insert(rng.integers(len(words) + 1), rng.choice(TOPICS[topic]))
        rows.append((" ".join(words).capitalize() + ".", topic))
    return rows


def write_topics(path: Path, count: int = 300, seed: int = 0, fmt: str = "csv", split: bool = False) -> Path:
    """The rows of ``topic_rows`` as CSV/TSV (header text,label[,split]), JSON lines, or a class folder."""
    rows = topic_rows(count, seed)
    splits = ["train", "val", "test", "train", "train"]
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "folder":
        for i, (text, topic) in enumerate(rows):
            (path / topic).mkdir(parents=True, exist_ok=True)
            (path / topic / f"{i:04d}.txt").write_text(text, encoding="utf-8")
    elif fmt == "jsonl":
        lines = [json.dumps({"text": t, "label": y, **({"split": splits[i % 5]} if split else {})})
                 for i, (t, y) in enumerate(rows)]  # fmt: skip
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    else:
        with path.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out, delimiter="," if fmt == "csv" else "\t")
            writer.writerow(["text", "label", *(["split"] if split else [])])
            for i, (text, topic) in enumerate(rows):
                writer.writerow([text, topic, *([splits[i % 5]] if split else [])])
    return path


def datamodule(path: Path, **options) -> TextClasses:
    dm = TextClasses(path=str(path), min_freq=1, **options)
    dm.setup("fit")
    return dm


def split_labels(dm: TextClasses, split: str) -> list[str]:
    return [dm.class_names[i] for i in dm.datasets[split].tensors[1].tolist()]


def test_every_format_reads_the_same_texts_and_labels(tmp_path):
    read = {}
    for fmt, name in (("csv", "t.csv"), ("tsv", "t.tsv"), ("jsonl", "t.jsonl"), ("folder", "classes")):
        dm = datamodule(write_topics(tmp_path / name, count=60, fmt=fmt))
        ids = torch.cat([dm.datasets[s].tensors[0].sum(1) for s in ("train", "val", "test")]).sort().values
        read[fmt] = (dm.class_names, dm.class_counts.tolist(), len(dm.vocab), ids.tolist())
    assert read["csv"][0] == ["food", "sport", "tech"]
    assert read["csv"] == read["tsv"] == read["jsonl"] == read["folder"]


def test_fractions_are_stratified_and_a_split_column_is_obeyed(tmp_path):
    dm = datamodule(write_topics(tmp_path / "t.csv", count=300), val_fraction=0.2, test_fraction=0.1)
    counts = {s: np.unique(split_labels(dm, s), return_counts=True)[1] for s in ("train", "val", "test")}
    total = counts["train"] + counts["val"] + counts["test"]
    np.testing.assert_allclose(counts["val"] / total, 0.2, atol=0.01)  # per class, up to rounding
    np.testing.assert_allclose(counts["test"] / total, 0.1, atol=0.01)
    again = datamodule(write_topics(tmp_path / "t.csv", count=300), val_fraction=0.2, test_fraction=0.1)
    assert torch.equal(again.datasets["val"].tensors[0], dm.datasets["val"].tensors[0])  # seeded
    own = datamodule(write_topics(tmp_path / "s.jsonl", count=100, fmt="jsonl", split=True))
    assert [len(own.datasets[s]) for s in ("train", "val", "test")] == [60, 20, 20]  # the file's column


def test_tokens_truncation_and_vocabulary():
    words = Tokenizer("word", lowercase=True)
    assert words("Don't stop, Mr. Smith!") == ["don't", "stop", ",", "mr", ".", "smith", "!"]
    assert Tokenizer("char", lowercase=False)("Ab c") == ["A", "b", " ", "c"]
    assert Tokenizer("word", max_length=3, truncate="head")("a b c d e") == ["a", "b", "c"]
    assert Tokenizer("word", max_length=3, truncate="tail")("a b c d e") == ["c", "d", "e"]
    assert Tokenizer("word", max_length=3, truncate="both")("a b c d e") == ["a", "b", "e"]
    vocab = TokenVocabulary.build([["a", "b", "a", "c"], ["a", "b", "d"]], min_freq=2)
    assert vocab.tokens == ["<pad>", "<unk>", "a", "b"]
    assert TokenVocabulary.build([["a", "b", "a", "c"]], max_size=1).tokens == ["<pad>", "<unk>", "a"]
    ids, lengths = vocab.encode_padded([["b", "zzz"], ["a"]])
    assert ids.tolist() == [[3, 1], [2, 0]] and lengths.tolist() == [2, 1]  # unknown 1, padding 0


def token_net(cell: str, pooling: str, bidirectional: bool, per_step: bool = False) -> TokenRecurrentNet:
    spec = RecurrentSpec(cell=cell, hidden_size=6, num_layers=2, bidirectional=bidirectional, pooling=pooling)
    vocab = TokenVocabulary([f"w{i}" for i in range(20)])
    return TokenRecurrentNet(spec, vocab, ["x", "y", "z"], 5, per_step, Tokenizer("whitespace")).double()


LENGTHS = torch.tensor([5, 2, 7, 1])


def padded_ids(seed: int = 0) -> torch.Tensor:
    """Real word ids everywhere, also after each row's end: padding would show if it were read."""
    return torch.randint(
        2, 22, (len(LENGTHS), int(LENGTHS.max())), generator=torch.Generator().manual_seed(seed)
    )


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("pooling", ["last", "mean"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_padding_never_changes_a_text_classification(cell, pooling, bidirectional):
    torch.manual_seed(0)
    task = TextClassifier(token_net(cell, pooling, bidirectional), log_figures=False).double().eval()
    ids, targets = padded_ids(), torch.tensor([0, 1, 2, 0])
    batched = task.model_step((ids, targets, LENGTHS), "val")["preds"]
    alone = torch.cat([task(ids[row : row + 1, :n]) for row, n in enumerate(LENGTHS.tolist())])
    torch.testing.assert_close(batched, alone, rtol=1e-9, atol=1e-9)
    assert not torch.allclose(task(ids), alone)  # the comparison can fail: read as data, padding changes it


def test_balanced_class_weights_weigh_every_class_as_the_average():
    weights = balanced_weights(torch.tensor([30, 10, 60]))
    torch.testing.assert_close(weights * torch.tensor([30.0, 10.0, 60.0]), torch.full((3,), 100 / 3))
    net = token_net("gru", "mean", False).float()
    plain, weighted = TextClassifier(net), TextClassifier(net, class_weights="balanced")
    weighted.class_weight.copy_(weights)
    logits, targets = torch.randn(6, 3), torch.tensor([0, 1, 1, 2, 2, 2])
    assert plain.loss(logits, targets) != weighted.loss(logits, targets)


SMALL = ["model.hidden_size=32", "task.embedding_dim=16", "datamodule.batch_size=16", "datamodule.min_freq=1",
         "optimizer.lr=0.01", "logger=csv", "num_threads=1"]  # fmt: skip


def test_a_small_corpus_is_learned_far_above_chance(make_cfg, tmp_path):
    """300 texts of three topics (chance: 1/3): a GRU with mean pooling reaches >= 0.8 test accuracy in 6
    epochs (about 0.95 when measured), with the confusion matrix and class names in results.json."""
    path = write_topics(tmp_path / "topics.csv", count=300)
    cfg = make_cfg("datamodule=text_classes", f"datamodule.path={path}", "model=gru", "model.pooling=mean",
                   "trainer.max_epochs=6", "callbacks=none", *SMALL)  # fmt: skip
    results, _ = train(cfg)
    assert results["test"]["test/acc"] >= 0.8 and results["test"]["test/f1"] >= 0.75
    assert results["test_confusion_classes"] == ["food", "sport", "tech"]
    matrix = np.array(results["test_confusion_matrix"])
    assert np.trace(matrix) / matrix.sum() == pytest.approx(results["test"]["test/acc"])


def run(*command: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, *command], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)  # fmt: skip


@pytest.mark.slow  # four interpreters (two runs, two predictions): minutes on a loaded machine
def test_cli_run_resume_and_predict_round_trip(tmp_path):
    """`python train.py datamodule=text_classes`, resumed for one more epoch from its run directory, then
    `python -m rnnexp.predict` on its checkpoint prints what the checkpoint's network computes."""
    path = write_topics(tmp_path / "topics.tsv", count=120, fmt="tsv")
    args = ["train.py", "datamodule=text_classes", f"datamodule.path={path}", "model.bidirectional=true",
            "trainer.max_epochs=1", "print_config=false", "~callbacks.progress_bar",
            "trainer.enable_model_summary=false", f"hydra.run.dir={tmp_path / 'run'}", *SMALL]  # fmt: skip
    first = run(*args)
    assert first.returncode == 0, first.stderr[-2000:]
    resumed = run(*[a.replace("max_epochs=1", "max_epochs=2") for a in args], f"ckpt_path={tmp_path / 'run'}")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["epochs"] == 2 and results["test_confusion_classes"] == ["food", "sport", "tech"]
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    text = "The coach and the team win the match"
    out = run("-m", "rnnexp.predict", f"ckpt_path={ckpt}", f'text="{text}"', "top=3", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = [line.split("\t") for line in out.stdout.splitlines()]
    net = load_token_model(ckpt)
    assert lines == [line.split("\t") for line in predict(net, text, top=3)]
    assert sorted(name for name, _ in lines) == ["food", "sport", "tech"]
    assert abs(sum(float(p) for _, p in lines) - 1) < 1e-3
    assert list(tmp_path.glob("outputs")) == []  # predicting writes nothing
    refused = run("-m", "rnnexp.predict", f"ckpt_path={ckpt}", "text=''", cwd=tmp_path)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr and "has no tokens" in refused.stderr


def test_a_checkpoint_of_another_kind_is_refused_by_predict():
    from rnnexp.errors import DataError

    text_checkpoint = ROOT / "tests" / "fixtures" / "layout_v0" / "text_lstm_epoch1.ckpt"
    with pytest.raises(DataError, match=r"holds a CharRNN .*datamodule=text_classes or tagging"):
        load_token_model(text_checkpoint)


def test_a_package_path_names_data_an_installed_package_ships():
    from rnnexp.data.data_paths import resolve_data_path
    from rnnexp.errors import DataError

    folder = resolve_data_path("package:conllu/conllu")  # conllu is a dependency: always installed
    assert folder.is_dir() and (folder / "__init__.py").is_file()
    assert resolve_data_path("package:conllu/conllu/__init__.py") == folder / "__init__.py"
    with pytest.raises(DataError, match="has no file or folder 'conllu/nothing'"):
        resolve_data_path("package:conllu/conllu/nothing")


@pytest.mark.parametrize(
    ("experiment", "task"),
    [("bbc_news_topics", "TextClassifier"), ("turkish_web_pos", "TokenTagger")],
)
def test_the_text_recipes_compose_and_pass_the_checks(make_cfg, experiment, task):
    from rnnexp.config.checks import check_config

    cfg = make_cfg(f"experiment={experiment}")
    check_config(cfg)
    assert cfg.task._target_.endswith(task) and cfg.datamodule.path.startswith("package:")
