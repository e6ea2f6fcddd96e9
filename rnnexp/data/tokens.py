"""Text → tokens → ids for token-level models (text classification, tagging): a tokenizer a config can
describe (characters, words, or given whitespace-separated tokens), truncation to a maximum length, and a
vocabulary of tokens with ``<pad>`` (id 0) and ``<unk>`` (id 1).

The character ``Vocabulary`` of ``rnnexp.data.vocab`` is not reused: it has no padding id and no frequency
cut-off, and its id of a token is found by code point, which words do not have.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from rnnexp.errors import ConfigError

TOKENS = ("word", "char", "whitespace")
TRUNCATIONS = ("head", "tail", "both")
# Runs of letters/digits (with inner apostrophes: "don't", "l'homme"), or one punctuation mark.
WORD = re.compile(r"\w+(?:['’]\w+)*|[^\w\s]")
PAD, UNK = "<pad>", "<unk>"


@dataclass(frozen=True)
class Tokenizer:
    """How a text becomes tokens; stored in checkpoints so prediction reads text as training did.

    ``tokens``: ``word`` (letters/digits runs and single punctuation marks), ``char`` (every character,
    spaces included) or ``whitespace`` (tokens given, separated by spaces). ``max_length``: tokens kept per
    text (None: all); ``truncate`` says which: the ``head`` (first ones), the ``tail`` (last ones) or
    ``both`` (the first half and the last half, the head taking the odd one).
    """

    tokens: str = "word"
    lowercase: bool = True
    max_length: int | None = None
    truncate: str = "head"

    def __post_init__(self) -> None:
        if self.tokens not in TOKENS:
            raise ConfigError(f"datamodule.tokens={self.tokens!r} is unknown; choose one of {list(TOKENS)}.")
        if not isinstance(self.lowercase, bool):
            raise ConfigError(f"datamodule.lowercase={self.lowercase!r} must be true or false.")
        length = self.max_length
        if length is not None and (isinstance(length, bool) or not isinstance(length, int) or length < 1):
            raise ConfigError(
                f"datamodule.max_length={length!r} must be a positive integer or null (e.g. "
                "datamodule.max_length=400)."
            )
        if self.truncate not in TRUNCATIONS:
            raise ConfigError(
                f"datamodule.truncate={self.truncate!r} is unknown; choose one of {list(TRUNCATIONS)}."
            )

    def __call__(self, text: str) -> list[str]:
        if self.lowercase:
            text = text.lower()
        if self.tokens == "char":
            tokens = list(text)
        elif self.tokens == "word":
            tokens = WORD.findall(text)
        else:
            tokens = text.split()
        return self.cut(tokens)

    def cut(self, tokens: list[str]) -> list[str]:
        """At most ``max_length`` tokens, chosen by ``truncate``."""
        limit = self.max_length
        if limit is None or len(tokens) <= limit:
            return tokens
        if self.truncate == "head":
            return tokens[:limit]
        if self.truncate == "tail":
            return tokens[-limit:]
        head = (limit + 1) // 2
        return tokens[:head] + tokens[len(tokens) - (limit - head) :]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class TokenVocabulary:
    """``<pad>`` (id 0), ``<unk>`` (id 1), then the kept tokens, most frequent first (ties alphabetical)."""

    pad_id, unknown_id = 0, 1

    def __init__(self, tokens: Iterable[str]):
        self.tokens: list[str] = [PAD, UNK, *tokens]
        self.index = {token: i for i, token in enumerate(self.tokens)}
        if len(self.index) != len(self.tokens):
            raise ValueError("TokenVocabulary: tokens must be distinct and must not be <pad> or <unk>")

    @classmethod
    def build(
        cls, sequences: Iterable[Sequence[str]], min_freq: int = 1, max_size: int | None = None
    ) -> TokenVocabulary:
        """The tokens seen at least ``min_freq`` times, at most ``max_size`` of them (the most frequent)."""
        counts = Counter(token for sequence in sequences for token in sequence)
        counts.pop(PAD, None)
        counts.pop(UNK, None)
        kept = sorted((t for t, n in counts.items() if n >= min_freq), key=lambda t: (-counts[t], t))
        return cls(kept[:max_size] if max_size is not None else kept)

    def __len__(self) -> int:
        return len(self.tokens)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TokenVocabulary) and self.tokens == other.tokens

    def __repr__(self) -> str:
        return f"TokenVocabulary({len(self)} tokens)"

    def ids(self, tokens: Sequence[str]) -> list[int]:
        get, unk = self.index.get, self.unknown_id
        return [get(token, unk) for token in tokens]

    def encode_padded(self, sequences: Sequence[Sequence[str]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Ids ``(len(sequences), longest)`` int64 right-padded with ``<pad>``, and lengths ``(len,)`` int64.
        One lookup pass over all tokens, scattered into place by a mask."""
        lengths = torch.tensor([len(s) for s in sequences], dtype=torch.long)
        width = int(lengths.max()) if len(sequences) else 0
        flat = np.fromiter((self.index.get(t, self.unknown_id) for s in sequences for t in s), dtype=np.int64)
        padded = torch.full((len(sequences), width), self.pad_id, dtype=torch.long)
        padded[torch.arange(width) < lengths[:, None]] = torch.from_numpy(flat)
        return padded, lengths

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.tokens[i] for i in ids]

    def to_dict(self) -> dict[str, Any]:
        """Plain types only, so a checkpoint holding it loads with ``weights_only=True``."""
        return {"tokens": self.tokens[2:]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TokenVocabulary:
        return cls(data["tokens"])


def pad_targets(targets: Sequence[Sequence[int]], width: int, value: int = -100) -> torch.Tensor:
    """Per-token targets ``(len(targets), width)`` int64, ``value`` (cross-entropy's ignore index) after
    each sequence's end."""
    lengths = torch.tensor([len(t) for t in targets], dtype=torch.long)
    padded = torch.full((len(targets), width), value, dtype=torch.long)
    flat = torch.tensor([label for sequence in targets for label in sequence], dtype=torch.long)
    padded[torch.arange(width) < lengths[:, None]] = flat
    return padded
