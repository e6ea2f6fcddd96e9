"""Pairs of character strings for sequence to sequence: generated (addition, reversal) or read from a TSV file.

Every split is kept as padded id tensors with lengths, ``(pairs, longest)``; a batch is one slice of them.
"""

from __future__ import annotations

import codecs
import logging
from pathlib import Path

import numpy as np
import torch

from rnnexp.data.batching import TensorBatchDataset
from rnnexp.data.splits import split_sizes
from rnnexp.data.tensor_datamodule import TensorDataModule
from rnnexp.data.vocab import PairVocabulary
from rnnexp.errors import ConfigError, DataError

log = logging.getLogger(__name__)

TASKS = ("addition", "reverse")
Pairs = list[tuple[str, str]]
Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def addition_pairs(count: int, digits: int, seed: int) -> Pairs:
    """``"535+61" -> "596"``, as Keras' addition_rnn example: each operand has 1 to ``digits`` digits, and
    a sum and its swapped twin count once (``a+b`` and ``b+a`` are one question)."""
    rng = np.random.default_rng(seed)
    distinct = (10**digits) * (10**digits + 1) // 2
    if count > distinct:
        raise ConfigError(
            f"datamodule.num_pairs={count} is more than the {distinct} distinct sums of numbers with up to "
            f"datamodule.digits={digits} digits; lower num_pairs or raise digits."
        )
    seen: dict[tuple[int, int], tuple[int, int]] = {}  # the unordered pair -> the order it was drawn in
    while len(seen) < count:
        widths = rng.integers(1, digits + 1, size=(2, count))
        numbers = rng.integers(0, 10**widths)  # up to `width` digits each, as Keras draws them
        for a, b in zip(numbers[0].tolist(), numbers[1].tolist(), strict=True):
            seen.setdefault((min(a, b), max(a, b)), (a, b))
            if len(seen) == count:
                break
    return [(f"{a}+{b}", str(a + b)) for a, b in seen.values()]


def reverse_pairs(count: int, min_length: int, max_length: int, alphabet: str, seed: int) -> Pairs:
    """Random strings of ``alphabet`` and the same strings reversed, each string once."""
    if not alphabet:
        raise ConfigError("datamodule.alphabet is empty; give the characters to draw from (e.g. abcdefghij).")
    if not 1 <= min_length <= max_length:
        raise ConfigError(
            f"datamodule.min_length={min_length} and datamodule.max_length={max_length} must satisfy "
            "1 <= min_length <= max_length."
        )
    distinct = sum(len(set(alphabet)) ** n for n in range(min_length, max_length + 1))
    if count > distinct:
        raise ConfigError(
            f"datamodule.num_pairs={count} is more than the {distinct} distinct strings of "
            f"{min_length}..{max_length} characters of {alphabet!r}; lower num_pairs or raise max_length."
        )
    rng = np.random.default_rng(seed)
    letters = np.array(list(alphabet))
    seen: dict[str, None] = {}
    while len(seen) < count:
        lengths = rng.integers(min_length, max_length + 1, size=count)
        draws = letters[rng.integers(0, len(letters), size=(count, max_length))]
        for row, length in zip(draws, lengths.tolist(), strict=True):
            seen.setdefault("".join(row[:length]))
            if len(seen) == count:
                break
    return [(text, text[::-1]) for text in seen]


def read_pairs(path: Path, max_bad_fraction: float) -> Pairs:
    """``source<TAB>target`` lines of a UTF-8 file (columns after the second are ignored, e.g. Tatoeba's
    attribution). Blank lines are skipped; bad lines (no tab, an empty side, undecodable bytes) are skipped
    with a warning naming them, and refused when more than ``max_bad_fraction`` of the lines are bad."""
    if not path.is_file():
        raise DataError(f"Pair file {path} does not exist; pass a UTF-8 file of source<TAB>target lines.")
    pairs: Pairs = []
    bad: list[tuple[int, str]] = []
    data = path.read_bytes().removeprefix(codecs.BOM_UTF8)  # a leading byte-order mark is encoding, not text
    for number, raw in enumerate(data.split(b"\n"), start=1):
        raw = raw.rstrip(b"\r")
        if not raw.strip():
            continue
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            bad.append((number, f"undecodable byte at column {err.start + 1}"))
            continue
        if "\t" not in line:
            bad.append((number, "no tab"))
            continue
        source, target = line.split("\t")[:2]
        if not source or not target:
            bad.append((number, f"empty {'source' if not source else 'target'}"))
            continue
        pairs.append((source, target))
    total = len(pairs) + len(bad)
    if total == 0:
        raise DataError(
            f"Pair file {path} holds no pairs (it is empty or blank); pass a UTF-8 file of source<TAB>target "
            "lines as datamodule.path."
        )
    if bad:
        shown = "; ".join(f"line {number}: {why}" for number, why in bad[:5])
        more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
        if len(bad) > max_bad_fraction * total:
            raise DataError(
                f"Pair file {path}: {len(bad)} of {total} lines are not source<TAB>target pairs ({shown}{more}), "
                f"more than datamodule.max_bad_fraction={max_bad_fraction}. Is it a TSV file of pairs? Fix the "
                "lines, or raise datamodule.max_bad_fraction to skip them."
            )
        log.warning("Pair file %s: skipped %d bad lines of %d: %s%s", path, len(bad), total, shown, more)
    return pairs


class CharPairs(TensorDataModule):
    """Source and target strings as padded ids with lengths; the target ends with ``<end>``.

    Batches are ``(source (batch, S), source_lengths (batch,), target (batch, T), target_lengths (batch,))``,
    trimmed on the device to the batch's longest sequence. The vocabulary comes from the training pairs
    (both sides), so characters seen only in val/test read as unknown.
    """

    def __init__(
        self,
        task: str = "addition",
        path: str | None = None,
        num_pairs: int = 50000,
        digits: int = 3,
        min_length: int = 3,
        max_length: int = 8,
        alphabet: str = "abcdefghijklmnopqrstuvwxyz",
        max_bad_fraction: float = 0.1,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        batch_size: int = 128,
        seed: int = 0,
    ):
        super().__init__(batch_size)
        if path is None and task not in TASKS:
            raise ConfigError(
                f"datamodule.task={task!r} is unknown; choose one of {list(TASKS)}, or set datamodule.path."
            )
        for key, value in (("num_pairs", num_pairs), ("digits", digits), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"datamodule.{key}={value!r} must be a positive integer.")
        if not 0.0 <= max_bad_fraction < 1.0:
            raise ConfigError(f"datamodule.max_bad_fraction={max_bad_fraction!r} must be in [0, 1).")
        split_sizes(1000, val_fraction, test_fraction)  # checks the fractions before any data is made
        self.save_hyperparameters(logger=False)  # train() logs the resolved config itself
        self.vocab: PairVocabulary | None = None
        self.max_target_length = 0  # longest training target, without <end>

    def pairs(self) -> Pairs:
        hp = self.hparams
        if hp.path is not None:
            return read_pairs(Path(hp.path).expanduser(), hp.max_bad_fraction)
        if hp.task == "addition":
            return addition_pairs(hp.num_pairs, hp.digits, hp.seed)
        return reverse_pairs(hp.num_pairs, hp.min_length, hp.max_length, hp.alphabet, hp.seed)

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        hp = self.hparams
        pairs = self.pairs()
        sizes = split_sizes(len(pairs), hp.val_fraction, hp.test_fraction)
        order = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(hp.seed)).tolist()
        bounds = [0, sizes[0], sizes[0] + sizes[1], len(pairs)]
        splits = {
            name: [pairs[i] for i in order[bounds[k] : bounds[k + 1]]]
            for k, name in enumerate(("train", "val", "test"))
        }
        self.vocab = PairVocabulary("".join(s + t for s, t in splits["train"]))
        self.max_target_length = max(len(t) for _, t in splits["train"])
        for name, chosen in splits.items():
            if chosen:
                self.datasets[name] = TensorBatchDataset(*self.encode(chosen))
        log.info(
            "%d pairs (train/val/test %s), vocabulary of %d symbols",
            len(pairs),
            "/".join(map(str, sizes)),
            len(self.vocab),
        )

    def encode(self, pairs: Pairs) -> Batch:
        """Padded source ids and lengths; target ids with ``<end>`` after the last character, and lengths
        counting it."""
        sources, targets = zip(*pairs, strict=True)
        source, source_lengths = self.vocab.encode_padded(list(sources))
        target, target_lengths = self.vocab.encode_padded(list(targets))
        target = torch.nn.functional.pad(target, (0, 1), value=self.vocab.pad_id)  # room for <end>
        target[torch.arange(len(pairs)), target_lengths] = self.vocab.end_id
        return source, source_lengths, target, target_lengths + 1

    def on_before_batch_transfer(self, batch: Batch, dataloader_idx: int) -> Batch:
        source, source_lengths, target, target_lengths = batch
        # Trimmed to this batch's longest sequences (padding beyond them would only cost compute), on the host
        # before the transfer: reading the longest length there needs no wait for a GPU.
        return (
            source[:, : int(source_lengths.max())],
            source_lengths,
            target[:, : int(target_lengths.max())],
            target_lengths,
        )
