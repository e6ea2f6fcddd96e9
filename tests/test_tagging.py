"""Tagging (datamodule=tagging): CoNLL-U and two-column files read alike, padded tag positions never reach the
loss or the metrics, padding never changes a tag, a small treebank is learned beyond the most-frequent-tag
baseline, and `python -m rnnexp.predict` tags a sentence from the checkpoint."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from rnnexp.data.tagging import Tagging
from rnnexp.lifecycle.checkpoint import load_token_model
from rnnexp.models.token_prediction import predict_lines as predict
from rnnexp.tasks.tagger import TokenTagger
from rnnexp.training import train
from tests.test_text_classes import LENGTHS, padded_ids, run, token_net

WORDS = {
    "DET": ["the", "a", "every"],
    "ADJ": ["red", "big", "old", "quick"],
    "NOUN": ["dog", "cat", "bird", "man"],
    "VERB": ["sees", "likes", "sleeps"],
    "PUNCT": ["."],
}
AMBIGUOUS = ["fish", "run", "walk"]  # a NOUN after a determiner or adjective, a VERB after a noun


def tagged_sentences(count: int, seed: int = 0) -> list[list[tuple[str, str]]]:
    """``DET ADJ* NOUN VERB [DET NOUN] .``, where an ambiguous word may stand as the noun or the verb: only
    the context tells its tag, so the most frequent tag per word is wrong for many tokens."""
    rng = np.random.default_rng(seed)

    def pick(tag: str) -> tuple[str, str]:
        if tag in ("NOUN", "VERB") and rng.random() < 0.4:
            return str(rng.choice(AMBIGUOUS)), tag
        return str(rng.choice(WORDS[tag])), tag

    sentences = []
    for _ in range(count):
        tags = ["DET", *["ADJ"] * int(rng.integers(0, 3)), "NOUN", "VERB"]
        if rng.random() < 0.5:
            tags += ["DET", "NOUN"]
        sentences.append([pick(tag) for tag in [*tags, "PUNCT"]])
    return sentences


def write_conllu(path: Path, sentences: list[list[tuple[str, str]]]) -> Path:
    """CoNLL-U with xpos = the tag in lower case, a comment per sentence and, in the first sentence, a
    multi-word token range line (skipped by the reader, as UD's contractions are)."""
    blocks = []
    for n, sentence in enumerate(sentences):
        lines = [f"# sent_id = s{n}", f"# text = {' '.join(w for w, _ in sentence)}"]
        if n == 0:
            lines.append(f"1-2\t{sentence[0][0]}{sentence[1][0]}\t_\t_\t_\t_\t_\t_\t_\t_")
        for i, (word, tag) in enumerate(sentence, start=1):
            lines.append(f"{i}\t{word}\t{word}\t{tag}\t{tag.lower()}x\t_\t0\tdep\t_\t_")
        blocks.append("\n".join(lines))
    path.write_text("\n\n".join(blocks) + "\n\n", encoding="utf-8")
    return path


def write_columns(path: Path, sentences: list[list[tuple[str, str]]]) -> Path:
    text = "-DOCSTART- O\n\n" + "\n\n".join("\n".join(f"{w} {t}" for w, t in s) for s in sentences) + "\n"
    path.write_text(text, encoding="utf-8")
    return path


def test_conllu_and_two_column_files_read_the_same_sentences(tmp_path):
    sentences = tagged_sentences(50)
    read = []
    for path, column in ((write_conllu(tmp_path / "t.conllu", sentences), None),
                         (write_columns(tmp_path / "t.txt", sentences), None),
                         (write_columns(tmp_path / "t.txt", sentences), 1)):  # fmt: skip
        dm = Tagging(path=str(path), tag_column=column, min_freq=1)
        dm.setup("fit")
        read.append(
            (dm.class_names, dm.vocab.tokens, [dm.datasets[s].tensors for s in ("train", "val", "test")])
        )
    assert read[0][0] == ["ADJ", "DET", "NOUN", "PUNCT", "VERB"]
    for other in read[1:]:
        assert other[:2] == read[0][:2]
        for mine, theirs in zip(read[0][2], other[2], strict=True):
            assert all(torch.equal(a, b) for a, b in zip(mine, theirs, strict=True))
    xpos = Tagging(path=str(tmp_path / "t.conllu"), tag_column="xpos", min_freq=1)
    xpos.setup("fit")
    assert xpos.class_names == ["adjx", "detx", "nounx", "punctx", "verbx"]
    tags = xpos.datasets["train"].tensors[1]
    assert (tags[:, 0] == 1).all() and (tags == -100).any()  # each sentence opens with DET; padding is -100


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_padding_never_changes_a_tag(cell, bidirectional):
    torch.manual_seed(0)
    task = (
        TokenTagger(token_net(cell, "last", bidirectional, per_step=True), log_figures=False).double().eval()
    )
    ids = padded_ids()
    batched = task(ids, LENGTHS)
    for row, n in enumerate(LENGTHS.tolist()):
        torch.testing.assert_close(batched[row, :n], task(ids[row : row + 1, :n])[0], rtol=1e-9, atol=1e-9)


def test_padded_tag_positions_never_reach_the_loss_or_the_metrics():
    """The batch's loss, accuracy and F1 equal those of its sentences scored alone (loss weighted per token),
    whatever the network outputs at padded positions."""
    torch.manual_seed(1)
    task = TokenTagger(token_net("lstm", "last", True, per_step=True), log_figures=False).double()
    ids = padded_ids(seed=1)
    tags = torch.randint(0, 3, ids.shape)
    tags[torch.arange(ids.shape[1]) >= LENGTHS[:, None]] = -100
    out = task.model_step((ids, tags, LENGTHS), "val")
    loss, acc, f1 = task.val_loss.compute(), task.val_acc.compute(), task.val_f1.compute()
    preds = out["preds"].clone()
    preds[tags == -100] = 1e6  # anything at padding: a padded position that were scored would now be wrong
    assert task.loss(preds, tags) == pytest.approx(float(out["loss"]))
    for metric in (task.val_loss, task.val_acc, task.val_f1):
        metric.reset()
    for row, n in enumerate(LENGTHS.tolist()):
        task.model_step((ids[row : row + 1, :n], tags[row : row + 1, :n], LENGTHS[row : row + 1]), "val")
    assert task.val_loss.compute() == pytest.approx(float(loss))
    assert task.val_acc.compute() == pytest.approx(float(acc))
    assert task.val_f1.compute() == pytest.approx(float(f1))
    task.val_acc.reset()
    task.update_metrics("val", preds, tags)
    assert task.val_acc.compute() == pytest.approx(float(acc))


def most_frequent_tag_accuracy(train: list, test: list) -> float:
    """The classic baseline: each word's most frequent training tag (unknown words: the commonest tag)."""
    by_word: dict[str, Counter] = {}
    for sentence in train:
        for word, tag in sentence:
            by_word.setdefault(word, Counter())[tag] += 1
    common = Counter(tag for s in train for _, tag in s).most_common(1)[0][0]
    guesses = [(by_word[w].most_common(1)[0][0] if w in by_word else common) == t for s in test for w, t in s]
    return sum(guesses) / len(guesses)


def test_a_small_treebank_is_learned_beyond_the_most_frequent_tag(make_cfg, tmp_path):
    """400 sentences whose ambiguous words need context: the most-frequent-tag baseline scores about 0.9;
    a bidirectional GRU must beat it by 5 points on held-out sentences (it reaches about 1.0)."""
    train_sentences, test_sentences = tagged_sentences(400, seed=0), tagged_sentences(60, seed=1)
    path = write_conllu(tmp_path / "train.conllu", train_sentences)
    test_path = write_conllu(tmp_path / "test.conllu", test_sentences)
    cfg = make_cfg("datamodule=tagging", f"datamodule.path={path}", f"datamodule.test_path={test_path}",
                   "model=gru", "model.bidirectional=true", "model.hidden_size=32", "task.embedding_dim=16",
                   "datamodule.batch_size=16", "optimizer.lr=0.01", "trainer.max_epochs=4", "callbacks=none",
                   "num_threads=1")  # fmt: skip
    results, _ = train(cfg)
    baseline = most_frequent_tag_accuracy(train_sentences, test_sentences)
    assert 0.8 < baseline < 0.93
    assert results["test"]["test/acc"] >= baseline + 0.05
    assert {f"test/f1/{tag}" for tag in WORDS} <= set(results["test"])


@pytest.mark.slow  # three interpreters: a minute or more on a loaded machine
def test_cli_run_and_predict_tags_next_to_tokens(tmp_path):
    path = write_columns(tmp_path / "train.txt", tagged_sentences(200))
    result = run("train.py", "datamodule=tagging", f"datamodule.path={path}", "model.bidirectional=true",
                 "datamodule.batch_size=32",  # the default when this test was written (issue 23 made it 8)
                 "model.hidden_size=32", "task.embedding_dim=16", "optimizer.lr=0.01", "trainer.max_epochs=3",
                 "print_config=false", "~callbacks.progress_bar", "num_threads=1",
                 f"hydra.run.dir={tmp_path / 'run'}")  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    ckpt = results["best_ckpt_path"]
    out = run(
        "-m", "rnnexp.predict", f"ckpt_path={ckpt}", "text='the old zebra likes a fish .'", cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    pairs = [line.split("\t") for line in out.stdout.splitlines()]
    assert [w for w, _ in pairs] == [
        "the",
        "old",
        "zebra",
        "likes",
        "a",
        "fish",
        ".",
    ]  # an unknown word gets a tag too
    assert pairs == [
        line.split("\t") for line in predict(load_token_model(ckpt), "the old zebra likes a fish .")
    ]
    assert [t for _, t in pairs][:2] == ["DET", "ADJ"] and pairs[-1][1] == "PUNCT"
