"""Sentences with one tag per token, from CoNLL-U (Universal Dependencies; parsed by the ``conllu`` package)
or two-column CoNLL (``token tag`` lines, a blank line between sentences).

Every split is kept as padded word ids with per-token tags; a batch is ``(ids (batch, time), tags (batch,
time), lengths (batch,))`` with tag ``-100`` (cross-entropy's ignore index) at padded positions, trimmed on the
device to its longest sentence.
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import conllu
import torch

from rnnexp.data.batching import TensorBatchDataset
from rnnexp.data.data_paths import resolve_data_path
from rnnexp.data.splits import split_sizes
from rnnexp.data.tensor_datamodule import TensorDataModule
from rnnexp.data.text_classes import check_count
from rnnexp.data.tokens import Tokenizer, TokenVocabulary, pad_targets
from rnnexp.errors import ConfigError, DataError

log = logging.getLogger(__name__)

FORMATS = ("auto", "conllu", "columns")
CONLLU_FIELDS = ("id", "form", "lemma", "upos", "xpos", "feats", "head", "deprel", "deps", "misc")
CONLLU_ID = re.compile(r"^(\d+)(-\d+|\.\d+)?$")  # a word, a multi-word token range, or an empty node
Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


@dataclass
class TaggedSentences:
    tokens: list[list[str]]
    tags: list[list[str]]


def file_format(path: Path, configured: str) -> str:
    if configured != "auto":
        return configured
    return "conllu" if path.suffix.lower() == ".conllu" else "columns"


def read_text(path: Path) -> str:
    if not path.is_file():
        raise DataError(f"{path} does not exist; pass a CoNLL-U (.conllu) or two-column CoNLL file.")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"{path} is not UTF-8 text (byte {err.start}); convert it to UTF-8.") from None


def check_conllu_lines(path: Path, text: str, tag_field: int) -> None:
    """Every token line has CoNLL-U's ten tab-separated fields, a valid ID and a tag; the first that does
    not is named by its line number (the parser itself reports no line)."""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        problem = None
        if len(fields) != 10:
            problem = f"has {len(fields)} tab-separated fields, CoNLL-U token lines have 10"
        elif not CONLLU_ID.match(fields[0]):
            problem = (
                f"has the ID {fields[0]!r}, not a word number (1, 2, ...), range (1-2) or empty node (1.1)"
            )
        elif fields[0].isdigit() and fields[tag_field] in ("", "_"):
            problem = f"has no {CONLLU_FIELDS[tag_field]} (the tag column, datamodule.tag_column)"
        if problem:
            raise DataError(
                f"{path}, line {number} {problem}: {line[:80]!r}. Fix the line (tabs, not spaces, between the "
                "fields), or choose another datamodule.tag_column."
            )


def read_conllu(path: Path, tag_column: str) -> TaggedSentences:
    """Words (multi-word token ranges and empty nodes are skipped) and their ``tag_column`` field."""
    text = read_text(path)
    check_conllu_lines(path, text, CONLLU_FIELDS.index(tag_column))
    tokens, tags = [], []
    try:
        for sentence in conllu.parse_incr(io.StringIO(text)):
            words = [token for token in sentence if isinstance(token["id"], int)]
            if words:
                tokens.append([str(token["form"]) for token in words])
                tags.append([str(token[tag_column]) for token in words])
    except conllu.exceptions.ParseException as err:
        raise DataError(f"{path} is not valid CoNLL-U ({err}); fix the file.") from None
    return TaggedSentences(tokens, tags)


def read_columns(path: Path, tag_column: int) -> TaggedSentences:
    """Whitespace-separated columns, the token first and the tag in column ``tag_column`` (0-based;
    negative counts from the end); blank lines end sentences; ``-DOCSTART-`` lines are skipped."""
    tokens, tags, sentence, sentence_tags = [], [], [], []
    needed = tag_column + 1 if tag_column >= 0 else -tag_column
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0] == "-DOCSTART-":
            if sentence:
                tokens.append(sentence)
                tags.append(sentence_tags)
                sentence, sentence_tags = [], []
            continue
        if len(fields) < max(2, needed):
            raise DataError(
                f"{path}, line {number} has {len(fields)} column(s), but the token and its tag (column "
                f"{tag_column}, datamodule.tag_column) need {max(2, needed)}: {line[:80]!r}. Fix the line, or "
                "set datamodule.format=conllu for a CoNLL-U file."
            )
        sentence.append(fields[0])
        sentence_tags.append(fields[tag_column])
    if sentence:
        tokens.append(sentence)
        tags.append(sentence_tags)
    return TaggedSentences(tokens, tags)


class Tagging(TensorDataModule):
    """Tagged sentences from ``path`` (and ``val_path``/``test_path`` when given, else seeded fractions of
    ``path``'s sentences). ``tag_column``: a CoNLL-U field name (``upos``, ``xpos``, ``deprel``, ...; null:
    ``upos``) or, for two-column files, a column index (null: the last column).

    Words are looked up in a vocabulary of the training words seen at least ``min_freq`` times; others read
    as ``<unk>``. ``min_freq: 2`` (the default) makes training's own rare words unknown, so the model learns
    what to do with a word it has never seen. The tags are the training tags; a tag seen only in validation
    or test is refused.
    """

    per_step = True

    def __init__(
        self,
        path: str | None = None,
        val_path: str | None = None,
        test_path: str | None = None,
        format: str = "auto",
        tag_column: str | int | None = None,
        lowercase: bool = False,
        min_freq: int = 2,
        max_size: int | None = None,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        batch_size: int = 32,
        seed: int = 0,
    ):
        super().__init__(batch_size)
        if path is None or str(path) == "":
            raise ConfigError(
                "datamodule.path is not set; pass a tagged corpus, e.g. datamodule.path=train.conllu (CoNLL-U) "
                "or a two-column `token tag` file."
            )
        if format not in FORMATS:
            raise ConfigError(f"datamodule.format={format!r} is unknown; choose one of {list(FORMATS)}.")
        fmt = file_format(resolve_data_path(path), format)
        if fmt == "conllu" and tag_column is not None and tag_column not in CONLLU_FIELDS[2:]:
            raise ConfigError(
                f"datamodule.tag_column={tag_column!r} is not a CoNLL-U field; choose one of "
                f"{list(CONLLU_FIELDS[2:])} (upos: universal part of speech)."
            )
        if (
            fmt == "columns"
            and tag_column is not None
            and (isinstance(tag_column, bool) or not isinstance(tag_column, int) or tag_column == 0)
        ):
            raise ConfigError(
                f"datamodule.tag_column={tag_column!r}: a two-column file's tag column is a column index "
                "(1 is the second column, -1 the last; 0 is the token), or null for the last column."
            )
        check_count("min_freq", min_freq, 1)
        check_count("batch_size", batch_size, 1)
        if max_size is not None:
            check_count("max_size", max_size, 1)
        # Tokens are given by the file: prediction reads whitespace-separated tokens the same way.
        self.tokenizer = Tokenizer("whitespace", lowercase, None, "head")
        split_sizes(
            1000, val_fraction if val_path is None else 0.0, test_fraction if test_path is None else 0.0
        )
        self.save_hyperparameters(logger=False)
        self.format = fmt
        self.vocab: TokenVocabulary | None = None
        self.class_names: list[str] = []

    def read(self, path: str) -> TaggedSentences:
        hp, resolved = self.hparams, resolve_data_path(path)
        if self.format == "conllu":
            data = read_conllu(resolved, "upos" if hp.tag_column is None else hp.tag_column)
        else:
            data = read_columns(resolved, -1 if hp.tag_column is None else hp.tag_column)
        if not data.tokens:
            raise DataError(f"{resolved} holds no sentences; pass a file of tagged sentences.")
        return data

    def splits(self) -> dict[str, TaggedSentences]:
        hp = self.hparams
        main = self.read(hp.path)
        given = {name: self.read(p) for name, p in (("val", hp.val_path), ("test", hp.test_path)) if p}
        fractions = {"val": hp.val_fraction, "test": hp.test_fraction}
        drawn = [name for name in ("val", "test") if name not in given]
        sizes = split_sizes(len(main.tokens), *(fractions[n] if n in drawn else 0.0 for n in ("val", "test")))
        order = torch.randperm(len(main.tokens), generator=torch.Generator().manual_seed(hp.seed)).tolist()
        bounds = {
            "train": (0, sizes[0]),
            "val": (sizes[0], sizes[0] + sizes[1]),
            "test": (sizes[0] + sizes[1], None),
        }
        result = {}
        for name in ("train", *drawn):
            rows = order[slice(*bounds[name])]
            result[name] = TaggedSentences([main.tokens[i] for i in rows], [main.tags[i] for i in rows])
        return {**result, **given}

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        hp = self.hparams
        splits = self.splits()
        tag_set = sorted({tag for sentence in splits["train"].tags for tag in sentence})
        if len(tag_set) < 2:
            raise DataError(
                f"{resolve_data_path(hp.path)}: every training token has the tag {tag_set[0]!r}; tagging needs "
                "at least two tags. Check datamodule.tag_column."
            )
        for name in ("val", "test"):
            if name in splits:
                unseen = sorted({t for s in splits[name].tags for t in s} - set(tag_set))
                if unseen:
                    raise DataError(
                        f"Tag {unseen[0]!r} is in the {name} split but never in train"
                        f"{f' (and {len(unseen) - 1} more)' if len(unseen) > 1 else ''}; a model cannot learn a "
                        "tag it never sees. Add sentences with it to the training file."
                    )
        self.class_names = tag_set
        tag_of = {tag: i for i, tag in enumerate(tag_set)}
        words = {
            name: [self.tokenizer.cut(self.lower(s)) for s in data.tokens] for name, data in splits.items()
        }
        self.vocab = TokenVocabulary.build(words["train"], hp.min_freq, hp.max_size)
        for name, data in splits.items():
            if data.tokens:
                ids, lengths = self.vocab.encode_padded(words[name])
                tags = pad_targets([[tag_of[t] for t in s] for s in data.tags], ids.shape[1])
                self.datasets[name] = TensorBatchDataset(ids, tags, lengths)
        if "val" not in self.datasets:
            raise DataError(
                "The validation split is empty; raise datamodule.val_fraction or set datamodule.val_path."
            )
        known = sum(
            int((ids > TokenVocabulary.unknown_id).sum()) for ids in [self.datasets["val"].tensors[0]]
        )
        total = int(self.datasets["val"].tensors[2].sum())
        log.info(
            "%d sentences (train/val/test %s), %d tags, vocabulary of %d words; %.1f%% of validation tokens "
            "unknown",
            sum(len(d.tokens) for d in splits.values()),
            "/".join(str(len(splits[n].tokens)) if n in splits else "0" for n in ("train", "val", "test")),
            len(tag_set),
            len(self.vocab),
            100.0 * (1 - known / max(total, 1)),
        )

    def lower(self, tokens: list[str]) -> list[str]:
        return [t.lower() for t in tokens] if self.hparams.lowercase else tokens

    def on_before_batch_transfer(self, batch: Batch, dataloader_idx: int) -> Batch:
        """Trimmed to the batch's longest sentence, on the host before the transfer (no wait for a GPU)."""
        ids, tags, lengths = batch
        width = int(lengths.max())
        return ids[:, :width], tags[:, :width], lengths
