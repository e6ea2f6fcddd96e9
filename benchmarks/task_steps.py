"""Every task's training step for the overhead benchmark: its config (on data written to a temp dir), and the
step a hand-written loop would take with the same network, so that rnnexp's task, a bare LightningModule and a
plain PyTorch loop compute the same loss on the same batches.

A task without an entry here is refused by name (``check_tasks``), never skipped.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig
from torch.nn import functional as F

from rnnexp.data.mnist_rows import write_idx
from rnnexp.models.recurrent import repackage_hidden

TASKS = (
    "classifier",
    "regressor",
    "regressor_carried",
    "language_model",
    "forecaster",
    "translator",
    "captioner",
    "value_regressor",
    "copy_memory",
    "text_classifier",
    "tagger",
)
Batch = tuple[torch.Tensor, ...]
# (network, batch after the datamodule's transfer hooks, state kept between steps) -> the loss
PlainStep = Callable[[torch.nn.Module, Batch, dict[str, Any]], torch.Tensor]


def check_tasks(tasks: list[str] | tuple[str, ...]) -> None:
    """Fail loudly on a task this benchmark has no step for (rather than leaving it out of the table)."""
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise SystemExit(f"no benchmark step for task(s) {unknown}; known: {list(TASKS)}")


def write_images(root: Path, folder: str, n_train: int, n_test: int, seed: int = 0) -> Path:
    """A torchvision root of random uint8 28x28 images and labels; timing ignores their content."""
    rng = np.random.default_rng(seed)
    raw = root / folder / "raw"
    for prefix, count in (("train", n_train), ("t10k", n_test)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (count, 28, 28)))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, count))
    return root


def write_words(path: Path, characters: int, seed: int = 0) -> Path:
    """Random words in lines: a text-like vocabulary of about 25 symbols."""
    words = ("the", "king", "and", "queen", "of", "a", "fair", "realm", "now", "speak", "to", "thee", "lord")
    rng = random.Random(seed)
    parts, size = [], 0
    while size < characters:
        parts.append(rng.choice(words) + ("\n" if rng.random() < 0.1 else " "))
        size += len(parts[-1])
    path.write_text("".join(parts), encoding="utf-8")
    return path


def write_labelled_texts(path: Path, texts: int, seed: int = 0) -> Path:
    """A CSV of ``text,label`` rows: 20-200 words (of 300) per text, 4 labels; timing ignores the content."""
    rng = np.random.default_rng(seed)
    lines = ["text,label"]
    for _ in range(texts):
        words = rng.integers(0, 300, int(rng.integers(20, 201)))
        lines.append(" ".join(f"w{w}" for w in words) + f",topic{int(rng.integers(4))}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_tagged_sentences(path: Path, sentences: int, seed: int = 0) -> Path:
    """Two-column ``word tag`` sentences of 5-30 tokens, words of 300 and 12 tags; timing ignores the content."""
    rng = np.random.default_rng(seed)
    blocks = []
    for _ in range(sentences):
        words = rng.integers(0, 300, int(rng.integers(5, 31)))
        blocks.append("\n".join(f"w{w} T{w % 12}" for w in words))
    path.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    return path


# The datamodules' default batch sizes when the recorded numbers were measured (conf/datamodule/*.yaml); the
# benchmark states them explicitly. Issue 23 has since changed several (BENCHMARKS.md, "Defaults").
BATCH_SIZES = {"classifier": 128, "regressor": 64, "regressor_carried": 64, "language_model": 64,
               "forecaster": 64, "translator": 128, "captioner": 128, "value_regressor": 50,
               "copy_memory": 128, "text_classifier": 32, "tagger": 32}  # fmt: skip


def task_overrides(
    task: str, cell: str, work_dir: Path, batches: int, hidden_size: int, batch_size: int | None = None
) -> list[str]:
    """``train.py`` overrides for ``task`` with at least ``batches`` training batches (data written under
    ``work_dir`` where the task reads files); ``batch_size`` None: the datamodule's default."""
    check_tasks([task])
    work_dir.mkdir(parents=True, exist_ok=True)
    size = batch_size or BATCH_SIZES[task]
    common = [f"model={cell}", f"model.hidden_size={hidden_size}", f"datamodule.batch_size={size}"]
    sine = [f"datamodule.num_sequences={int(batches * size / 0.8) + 2 * size}"]  # 80% of the sequences train
    if task == "classifier":
        root = write_images(work_dir / "mnist", "MNIST", n_train=size * (batches + 1), n_test=size)
        return ["datamodule=mnist_rows", f"datamodule.data_dir={root}", "datamodule.download=false",
                f"datamodule.val_size={size}", *common]  # fmt: skip
    if task == "regressor":
        return ["datamodule=sine", *sine, *common]
    if task == "regressor_carried":
        return ["datamodule=sine", "datamodule.tbptt=true", *sine, *common]
    if task == "language_model":
        path = write_words(work_dir / "words.txt", int(size * 128 * (batches + 2) / 0.9) + 1000)
        return ["datamodule=text", f"datamodule.path={path}", "datamodule.seq_len=128", *common]
    if task == "forecaster":
        return ["datamodule=sine_forecast", *sine, *common]
    if task == "translator":
        return [
            "datamodule=char_pairs",
            f"datamodule.num_pairs={int(batches * size / 0.8) + 2 * size}",
            *common,
        ]
    generated = [f"datamodule.train_size={size * (batches + 1)}", f"datamodule.val_size={size}",
                 f"datamodule.test_size={size}"]  # fmt: skip
    if task == "value_regressor":
        return ["datamodule=adding", *generated, *common]
    if task == "copy_memory":
        return ["datamodule=copy_memory", *generated, *common]
    if task == "text_classifier":  # train 80% of the texts (the default fractions)
        path = write_labelled_texts(work_dir / "texts.csv", int(size * batches / 0.8) + 2 * size)
        return ["datamodule=text_classes", f"datamodule.path={path}", *common]
    if task == "tagger":
        path = write_tagged_sentences(work_dir / "tags.txt", int(size * batches / 0.8) + 2 * size)
        return ["datamodule=tagging", f"datamodule.path={path}", *common]
    root = write_images(work_dir / "fashion", "FashionMNIST", n_train=size * (batches + 2), n_test=size)
    return ["datamodule=image_captions", f"datamodule.data_dir={root}", "datamodule.download=false",
            f"datamodule.val_size={size}", *common]  # fmt: skip


def classify(net, batch, state):
    inputs, targets = batch  # (batch, time, features) floats, (batch,)
    return F.cross_entropy(net(inputs), targets)


def regress(net, batch, state):
    inputs, targets = batch  # (batch, time, 1) each
    return F.mse_loss(net(inputs), targets)


def regress_carried(net, batch, state):
    inputs, targets = batch  # one window of each stream
    preds, hidden = net.forward_with_state(inputs, state.get("hidden"))
    state["hidden"] = repackage_hidden(hidden)
    return F.mse_loss(preds, targets)


def model_language(net, batch, state):
    ids, targets = batch  # (streams, time) each
    logits, hidden = net(ids, state.get("hidden"))
    state["hidden"] = repackage_hidden(hidden)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def forecast(net, batch, state):
    context, future = batch  # (batch, seq_len, 1), (batch, horizon, 1)
    return F.mse_loss(net(context, future, teacher_forcing=1.0), future)  # the config's ratio at epoch 0


def translate(net, batch, state):
    source, source_lengths, target, _ = batch
    logits = net(source, source_lengths, target, teacher_forcing=1.0)
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=net.vocab.pad_id
    )


def caption(net, batch, state):
    images, target, _, _ = batch
    logits = net(images, target, teacher_forcing=1.0)
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=net.vocab.pad_id
    )


def copy_sequence(net, batch, state):
    inputs, targets = batch  # one-hot (batch, time, symbols + 2), ids (batch, time)
    return F.cross_entropy(net(inputs).flatten(0, 1), targets.flatten())


def classify_text(net, batch, state):
    ids, labels, lengths = batch  # (batch, longest) right-padded, (batch,), (batch,)
    return F.cross_entropy(net(ids, lengths=lengths), labels)


def tag(net, batch, state):
    ids, tags, lengths = batch  # (batch, longest) each, tags -100 at padding; (batch,)
    logits = net(ids, lengths=lengths)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tags.reshape(-1), ignore_index=-100)


def plain_step_for(cfg: DictConfig) -> PlainStep:
    """The hand-written step of the task ``cfg`` composes (by its class; sine streams by ``carry_hidden``)."""
    name = cfg.task._target_.rsplit(".", 1)[-1]
    steps = {
        "SequenceClassifier": classify,
        "SequenceRegressor": regress_carried if cfg.task.get("carry_hidden") else regress,
        "CharLanguageModel": model_language,
        "Forecaster": forecast,
        "CharTranslator": translate,
        "ImageCaptioner": caption,
        "ValueRegressor": regress,
        "CopyMemoryClassifier": copy_sequence,
        "TextClassifier": classify_text,
        "TokenTagger": tag,
    }
    if name not in steps:
        raise SystemExit(f"no plain training step for task class {name}: add one to benchmarks/task_steps.py")
    if name in ("CharTranslator", "ImageCaptioner", "Forecaster") and cfg.task.teacher_forcing != 1.0:
        raise SystemExit("the plain step teacher-forces every step; the config must too (teacher_forcing=1)")
    if name == "TextClassifier" and cfg.task.class_weights != "none":
        raise SystemExit(
            "the plain step's loss is unweighted; the config must be too (task.class_weights=none)"
        )
    return steps[name]
