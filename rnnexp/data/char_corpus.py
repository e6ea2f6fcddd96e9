"""A text file as a character-level language-modelling dataset: contiguous splits laid out for truncated
backpropagation through time (or cut into independent chunks, for comparison)."""

from __future__ import annotations

import codecs
import logging
import os
import tempfile
import urllib.request
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from rnnexp.config.values import require_bool, require_number
from rnnexp.data.batching import TensorBatchDataset, tensor_batches
from rnnexp.data.splits import split_sizes
from rnnexp.data.streams import StreamBatches, rank_streams, stream_loader
from rnnexp.data.vocab import Vocabulary
from rnnexp.errors import ConfigError, DataError

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


def read_text(path: Path) -> str:
    """The whole file as text (without a leading UTF-8 byte-order mark), refusing what cannot be a corpus (missing, empty, binary, not UTF-8)."""
    if not path.is_file():
        raise DataError(f"Text corpus {path} does not exist; pass an existing UTF-8 file as datamodule.path.")
    raw = path.read_bytes().removeprefix(codecs.BOM_UTF8)  # a leading byte-order mark is encoding, not text
    if not raw:
        raise DataError(
            f"Text corpus {path} is empty; pass a UTF-8 text file with content as datamodule.path."
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(
            f"Text corpus {path} is not UTF-8 text (undecodable byte at offset {err.start}); it may be a "
            "binary file. Pass a UTF-8 text file as datamodule.path, or convert it first (e.g. iconv -t UTF-8)."
        ) from None
    if "\x00" in text:
        raise DataError(
            f"Text corpus {path} contains NUL bytes, so it is a binary file rather than text; pass a UTF-8 text "
            "file as datamodule.path."
        )
    return text


def download(url: str, target: Path, timeout_s: float = 30.0) -> None:
    """Fetch ``url`` into ``target`` atomically (a temporary file renamed), so a broken transfer leaves nothing."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        payload = response.read()
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(payload)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def chunk(ids: torch.Tensor, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Independent windows: inputs and next-character targets, each ``(chunks, seq_len)``."""
    count = (ids.numel() - 1) // seq_len
    inputs = ids[: count * seq_len].view(count, seq_len)
    targets = ids[1 : count * seq_len + 1].view(count, seq_len)
    return inputs, targets


class CharCorpus(pl.LightningDataModule):
    """Character-level language modelling on one UTF-8 text file.

    Train/val/test are contiguous slices of the file (in that order). The vocabulary comes from the
    training slice; characters seen only in val/test map to the unknown id. With ``tbptt`` each split is
    ``batch_size`` parallel streams served in order, ``seq_len`` characters at a time, for a task that
    carries its hidden state across batches; without it, the splits are cut into independent
    ``seq_len``-character chunks and the training chunks are shuffled.
    """

    per_step = True
    # The target of each character is the next one, which is the next input (rnnexp.config.checks).
    targets_are_future_inputs = True
    target_description = "a language model predicts each next character, which is the next input"

    def __init__(
        self,
        path: str | None = None,
        url: str | None = None,
        download_path: str | None = None,
        val_fraction: float = 0.05,
        test_fraction: float = 0.05,
        batch_size: int = 64,
        seq_len: int = 128,
        tbptt: bool = True,
    ):
        super().__init__()
        for key, value in (("batch_size", batch_size), ("seq_len", seq_len)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"datamodule.{key}={value!r} must be a positive integer.")
        if path is None and download_path is None:
            raise ConfigError(
                "datamodule.path and datamodule.download_path are both null: pass a text file as "
                "datamodule.path=/some/file.txt."
            )
        for key, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
            require_number(f"datamodule.{key}", value, 0.05, low=0.0, high=1.0, high_open=True)
        require_bool("datamodule.tbptt", tbptt)
        if val_fraction + test_fraction >= 1.0:
            raise ConfigError(
                f"datamodule.val_fraction={val_fraction} and datamodule.test_fraction={test_fraction} leave no "
                "text for training; their sum must be below 1."
            )
        self.save_hyperparameters(logger=False)  # train() logs the resolved config itself
        self.batch_size = batch_size
        self.seq_len = seq_len
        self.tbptt = tbptt
        self.vocab: Vocabulary | None = None
        self.ids: dict[str, torch.Tensor] = {}  # each split's character ids, (characters,)

    @property
    def corpus_path(self) -> Path:
        return Path(self.hparams.path or self.hparams.download_path).expanduser()

    @property
    def vocab_size(self) -> int:
        if self.vocab is None:
            raise RuntimeError("CharCorpus.setup() must run before the vocabulary is known")
        return len(self.vocab)

    input_size = output_size = vocab_size

    def prepare_data(self) -> None:
        """Download the default corpus when no ``path`` is given and it is not on disk yet."""
        if self.hparams.path is not None or self.corpus_path.is_file():
            return
        url = self.hparams.url
        hint = (
            f"Pass your own text with datamodule.path=/some/file.txt, or put the corpus at {self.corpus_path} "
            "by hand."
        )
        if not url:
            raise DataError(
                f"The default corpus {self.corpus_path} is missing and datamodule.url is null. {hint}"
            )
        log.info("Downloading %s to %s", url, self.corpus_path)
        try:
            download(url, self.corpus_path)
        except Exception as err:  # URLError, timeouts, OSError: no network, proxy, unwritable folder
            reason = getattr(err, "reason", None) or err
            raise DataError(
                f"The default corpus {self.corpus_path} is missing and downloading it from {url} failed "
                f"({type(err).__name__}: {reason}). {hint}"
            ) from None

    def setup(self, stage: str | None = None) -> None:
        if self.ids:
            return
        self.prepare_data()  # idempotent; lets setup work outside a Trainer (e.g. in build_net)
        text = read_text(self.corpus_path)
        sizes = split_sizes(len(text), self.hparams.val_fraction, self.hparams.test_fraction)
        starts = [0, sizes[0], sizes[0] + sizes[1], len(text)]
        pieces = {name: text[starts[i] : starts[i + 1]] for i, name in enumerate(SPLITS)}
        self.vocab = Vocabulary.from_text(pieces["train"])
        for name, piece in pieces.items():
            if piece:
                self.ids[name] = self.vocab.encode(piece)  # (characters,)
                self.dataset(name)  # fails now, not at the first batch, when a split is too short
        log.info(
            "Corpus %s: %d characters (train/val/test %s), vocabulary of %d symbols",
            self.corpus_path,
            len(text),
            "/".join(str(s) for s in sizes),
            len(self.vocab),
        )

    def dataset(self, split: str, rank: int = 0, world_size: int = 1) -> Dataset:
        """One rank's share of a split: its own ``batch_size`` streams (TBPTT), or all chunks (a sampler
        shards them)."""
        ids = self.ids[split]
        if self.tbptt:
            streams = rank_streams(ids, self.batch_size, rank, world_size)
            if streams.shape[1] < 2:
                raise ConfigError(
                    f"The {split} split of {self.corpus_path} has {ids.numel()} characters, too few for "
                    f"datamodule.batch_size={self.batch_size} streams (x {world_size} processes) of at least 2 "
                    "characters; lower datamodule.batch_size, raise the split's fraction, or use a longer text."
                )
            return StreamBatches(streams, self.seq_len)
        if ids.numel() <= self.seq_len:
            raise ConfigError(
                f"The {split} split of {self.corpus_path} has {ids.numel()} characters, fewer than one chunk "
                f"of datamodule.seq_len={self.seq_len} + 1; lower datamodule.seq_len, raise the split's "
                "fraction, or use a longer text."
            )
        return TensorBatchDataset(*chunk(ids, self.seq_len))

    def _loader(self, split: str, shuffle: bool) -> DataLoader | list:
        if split not in self.ids:
            return []  # a zero fraction: Lightning skips the stage
        trainer = self.trainer
        rank, world_size = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        dataset = self.dataset(split, rank, world_size)
        if isinstance(dataset, StreamBatches):
            return stream_loader(dataset)
        return tensor_batches(dataset, self.batch_size, shuffle=shuffle, trainer=trainer)

    def train_dataloader(self) -> DataLoader | list:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader | list:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader | list:
        return self._loader("test", shuffle=False)
