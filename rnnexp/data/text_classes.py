"""Texts with one label each, from a user's files: a CSV/TSV/JSON-lines table (a text column, a label column,
optionally a split column) or a folder with one sub-folder of ``.txt`` files per class.

Every split is kept as padded token ids with lengths; a batch is ``(ids (batch, time), labels (batch,),
lengths (batch,))``, trimmed on the device to its longest text (rnnexp's variable-length batches).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from rnnexp.data.batching import TensorBatchDataset
from rnnexp.data.data_paths import resolve_data_path
from rnnexp.data.splits import split_sizes
from rnnexp.data.tensor_datamodule import TensorDataModule
from rnnexp.data.tokens import Tokenizer, TokenVocabulary
from rnnexp.errors import ConfigError, DataError

log = logging.getLogger(__name__)

FORMATS = ("auto", "csv", "tsv", "jsonl", "folder")
SUFFIXES = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}
SPLIT_NAMES = {
    "train": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",
    "test": "test",
}
Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


@dataclass
class LabelledTexts:
    """What a file holds: texts, their labels (strings), each row's split when the file names it, and where
    each row is in the file (for messages)."""

    texts: list[str]
    labels: list[str]
    splits: list[str] | None
    where: list[str]


def file_format(path: Path, configured: str) -> str:
    if configured != "auto":
        return configured
    if path.is_dir():
        return "folder"
    found = SUFFIXES.get(path.suffix.lower())
    if found is None:
        raise ConfigError(
            f"datamodule.format=auto cannot tell the format of {path} from its suffix {path.suffix!r} "
            f"(known: {sorted(SUFFIXES)}, or a folder); set datamodule.format to one of {list(FORMATS[1:])}."
        )
    return found


def read_folder(path: Path, encoding_errors: str = "strict") -> LabelledTexts:
    """``<path>/<class>/*.txt``: the sub-folder's name is the label of each of its files. Bytes that are not
    UTF-8 refuse the file (``encoding_errors="strict"``) or read as U+FFFD (``"replace"``, with a warning)."""
    classes = sorted(p for p in path.iterdir() if p.is_dir())
    if not classes:
        raise DataError(
            f"Folder {path} has no sub-folders; the folder format reads one sub-folder of .txt files per "
            "class (<path>/<class>/*.txt). Pass such a folder, or a CSV/TSV/JSON-lines file."
        )
    texts, labels, where, replaced = [], [], [], []
    for folder in classes:
        files = sorted(folder.glob("*.txt"))
        if not files:
            raise DataError(f"Class folder {folder} holds no .txt files; add its texts or remove the folder.")
        for file in files:
            raw = file.read_bytes()
            try:
                texts.append(raw.decode("utf-8"))
            except UnicodeDecodeError as err:
                if encoding_errors == "strict":
                    raise DataError(
                        f"{file} is not UTF-8 text (byte {err.start}); convert it to UTF-8, remove it, or set "
                        "datamodule.encoding_errors=replace to read its bad bytes as U+FFFD."
                    ) from None
                texts.append(raw.decode("utf-8", errors="replace"))
                replaced.append(str(file))
            labels.append(folder.name)
            where.append(str(file))
    if replaced:
        log.warning("%d files are not UTF-8; their bad bytes read as U+FFFD: %s", len(replaced), replaced[:5])
    return LabelledTexts(texts, labels, None, where)


def read_table(
    path: Path, fmt: str, text: str, label: str, split_column: str | None, encoding_errors: str = "strict"
) -> LabelledTexts:
    """A UTF-8 CSV, TSV or JSON-lines file with (at least) the ``text`` and ``label`` columns."""
    try:
        if fmt == "jsonl":
            frame = pd.read_json(path, lines=True, dtype=False, encoding_errors=encoding_errors)
        else:
            frame = pd.read_csv(path, sep="," if fmt == "csv" else "\t", dtype=str, keep_default_na=False,
                                encoding_errors=encoding_errors)  # fmt: skip
    except pd.errors.EmptyDataError:
        frame = pd.DataFrame()
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(
            f"{path} cannot be read as {fmt.upper()} ({first}); check the file, or set datamodule.format."
        ) from None
    if len(frame) == 0:
        raise DataError(f"{path} holds no rows; pass a {fmt.upper()} file with a header and labelled texts.")
    columns = [str(c) for c in frame.columns]
    for key, name in (("text", text), ("label", label)):
        if name not in columns:
            raise DataError(
                f"{path} has no column {name!r} (datamodule.{key}); its columns are {columns}. Set "
                f"datamodule.{key} to the column that holds the {key}s."
            )
    # A JSON-lines row is a line; a CSV/TSV row may span lines (quoted line breaks), so it is counted as a row.
    where = [f"{'line' if fmt == 'jsonl' else 'data row'} {i + 1}" for i in range(len(frame))]
    labels = [as_label(value) for value in frame[label].tolist()]
    for i, value in enumerate(labels):
        if value == "":
            raise DataError(
                f"{path}, {where[i]}: the label (column {label!r}) is empty; give every row a label or remove "
                "the row."
            )
    texts = ["" if value is None else str(value) for value in frame[text].tolist()]
    splits = None
    if split_column is not None and split_column in columns:
        splits = []
        for i, value in enumerate(frame[split_column].tolist()):
            name = SPLIT_NAMES.get(str(value).strip().lower())
            if name is None:
                raise DataError(
                    f"{path}, {where[i]}: split {value!r} (column {split_column!r}) is not one of "
                    f"{sorted(SPLIT_NAMES)}; fix it, or set datamodule.split_column=null to split by fractions."
                )
            splits.append(name)
    return LabelledTexts(texts, labels, splits, where)


def as_label(value: object) -> str:
    """A label as text: 3 and 3.0 (a JSON number) both read ``"3"``; a missing value reads empty."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def sorted_classes(labels: list[str]) -> list[str]:
    """Distinct labels, numerically when every label is an integer (so "10" follows "9")."""
    distinct = set(labels)
    if all(label.lstrip("-").isdigit() for label in distinct):
        return sorted(distinct, key=int)
    return sorted(distinct)


def stratified_split(labels: np.ndarray, val_fraction: float, test_fraction: float, seed: int) -> np.ndarray:
    """A split name per row: each class is shuffled (``seed``) and cut by the fractions, so every split
    holds the classes in their overall proportions; each class keeps at least one training row."""
    split_sizes(1000, val_fraction, test_fraction)  # checks the fractions
    rng = np.random.default_rng(seed)
    names = np.full(len(labels), "train", dtype=object)
    for label in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == label))
        val = round(len(rows) * val_fraction)
        test = min(round(len(rows) * test_fraction), len(rows) - 1 - val)
        names[rows[:val]] = "val"
        names[rows[val : val + max(test, 0)]] = "test"
    return names


class TextClasses(TensorDataModule):
    """Labelled texts from ``path`` as token ids (see the module docstring for the formats).

    Splits: the file's own when it has the ``split_column`` (values train, val/valid/validation/dev, test),
    else seeded fractions stratified by label. The vocabulary comes from the training texts (tokens seen at
    least ``min_freq`` times, at most ``max_size`` of them); other tokens read as ``<unk>``. Classes are the
    training labels; a label seen only in validation or test is refused (no model could predict it).
    """

    per_step = False

    def __init__(
        self,
        path: str | None = None,
        format: str = "auto",
        text: str = "text",
        label: str = "label",
        split_column: str | None = "split",
        encoding_errors: str = "strict",
        tokens: str = "word",
        lowercase: bool = True,
        min_freq: int = 1,
        max_size: int | None = None,
        max_length: int | None = 400,
        truncate: str = "head",
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        batch_size: int = 32,
        seed: int = 0,
    ):
        super().__init__(batch_size)
        if path is None or str(path) == "":
            raise ConfigError(
                "datamodule.path is not set; pass the labelled texts, e.g. datamodule.path=reviews.csv "
                "(CSV, TSV, JSON lines) or a folder with one sub-folder of .txt files per class."
            )
        if format not in FORMATS:
            raise ConfigError(f"datamodule.format={format!r} is unknown; choose one of {list(FORMATS)}.")
        for key, value in (("text", text), ("label", label)):
            if not isinstance(value, str) or not value:
                raise ConfigError(f"datamodule.{key}={value!r} must be a column name.")
        if encoding_errors not in ("strict", "replace"):
            raise ConfigError(f"datamodule.encoding_errors={encoding_errors!r} must be strict or replace.")
        check_count("min_freq", min_freq, 1)
        check_count("batch_size", batch_size, 1)
        if max_size is not None:
            check_count("max_size", max_size, 1)
        self.tokenizer = Tokenizer(tokens, lowercase, max_length, truncate)
        split_sizes(1000, val_fraction, test_fraction)
        self.save_hyperparameters(logger=False)  # train() logs the resolved config itself
        self.vocab: TokenVocabulary | None = None
        self.class_names: list[str] = []
        self.class_counts: torch.Tensor | None = None  # training rows per class

    def read(self) -> LabelledTexts:
        hp = self.hparams
        path = resolve_data_path(hp.path)
        if not path.exists():
            raise DataError(f"{path} does not exist; pass a CSV/TSV/JSON-lines file or a folder of classes.")
        fmt = file_format(path, hp.format)
        if fmt == "folder":
            if not path.is_dir():
                raise DataError(f"{path} is not a folder, but datamodule.format=folder reads one.")
            return read_folder(path, hp.encoding_errors)
        if path.is_dir():
            raise DataError(f"{path} is a folder, but datamodule.format={fmt} reads a file.")
        return read_table(path, fmt, hp.text, hp.label, hp.split_column, hp.encoding_errors)

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        hp = self.hparams
        data = self.read()
        source = resolve_data_path(hp.path)
        tokens = [self.tokenizer(text) for text in data.texts]
        keep = [i for i, t in enumerate(tokens) if t]
        if len(keep) < len(tokens):
            empty = [data.where[i] for i, t in enumerate(tokens) if not t]
            if not keep:
                raise DataError(f"{source}: every text is empty (no tokens); check datamodule.text.")
            log.warning(
                "%s: skipped %d texts without tokens (%s%s)",
                source,
                len(empty),
                ", ".join(empty[:5]),
                " ..." if len(empty) > 5 else "",
            )
        labels = np.array([data.labels[i] for i in keep], dtype=object)
        if data.splits is not None:
            splits = np.array([data.splits[i] for i in keep], dtype=object)
        else:
            splits = stratified_split(labels, hp.val_fraction, hp.test_fraction, hp.seed)
        train_labels = set(labels[splits == "train"].tolist())
        if not train_labels:
            raise DataError(f"{source}: no row is in the train split; mark some rows train.")
        if len(set(labels.tolist())) < 2:
            raise DataError(
                f"{source}: every text has the label {labels[0]!r}; classification needs at least two classes "
                f"(column {hp.label!r}). Check datamodule.label."
            )
        for split in ("val", "test"):
            unseen = sorted(set(labels[splits == split].tolist()) - train_labels)
            if unseen:
                raise DataError(
                    f"{source}: label {unseen[0]!r} is in the {split} split but never in train"
                    f"{f' (and {len(unseen) - 1} more)' if len(unseen) > 1 else ''}; a model cannot learn a "
                    "class it never sees. Move some of its rows to train, or drop them."
                )
        if len(train_labels) < 2:
            raise DataError(
                f"{source}: the train split holds only the label {sorted(train_labels)[0]!r}; it needs at least "
                "two classes."
            )
        self.class_names = sorted_classes(sorted(train_labels))
        class_of = {name: i for i, name in enumerate(self.class_names)}
        targets = torch.tensor([class_of[label] for label in labels.tolist()], dtype=torch.long)
        kept_tokens = [tokens[i] for i in keep]
        in_train = np.flatnonzero(splits == "train")
        self.vocab = TokenVocabulary.build(
            (kept_tokens[i] for i in in_train.tolist()), hp.min_freq, hp.max_size
        )
        self.class_counts = torch.bincount(targets[in_train], minlength=len(self.class_names))
        sizes = {}
        for split in ("train", "val", "test"):
            rows = np.flatnonzero(splits == split).tolist()
            sizes[split] = len(rows)
            if rows:
                ids, lengths = self.vocab.encode_padded([kept_tokens[i] for i in rows])
                self.datasets[split] = TensorBatchDataset(ids, targets[rows], lengths)
        if "val" not in self.datasets:
            raise DataError(
                f"{source}: the validation split is empty; raise datamodule.val_fraction or mark rows val."
            )
        lengths = torch.tensor([len(t) for t in kept_tokens], dtype=torch.float)
        log.info(
            "%s: %d texts (train/val/test %s), %d classes, vocabulary of %d tokens, tokens per text: median "
            "%.0f, max %d",
            source,
            len(keep),
            "/".join(str(sizes[s]) for s in ("train", "val", "test")),
            len(self.class_names),
            len(self.vocab),
            float(lengths.median()),
            int(lengths.max()),
        )

    def on_before_batch_transfer(self, batch: Batch, dataloader_idx: int) -> Batch:
        ids, labels, lengths = batch
        # Trimmed to the batch's longest text (padding beyond it only costs compute), on the host before the
        # transfer: reading the longest length there needs no wait for a GPU.
        return ids[:, : int(lengths.max())], labels, lengths


def check_count(key: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"datamodule.{key}={value!r} must be an integer >= {minimum}.")
