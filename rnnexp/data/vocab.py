"""Characters ↔ integer ids, with one id for unseen characters (language models) and, for sequence-to-sequence
models, the extra symbols that pad, start and end a sequence."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch

UNKNOWN = "\ufffd"  # Unicode's replacement character: what a decoder shows for a symbol it cannot map


class Vocabulary:
    """Sorted distinct characters after the special symbols (``SPECIALS``); here only the unknown symbol,
    id 0, so characters absent from the training text (e.g. in validation or a prompt) still have an id.

    Encoding works on code points with numpy (``searchsorted``), so a corpus of millions of characters is
    encoded without a Python loop.
    """

    SPECIALS: tuple[str, ...] = (UNKNOWN,)

    def __init__(self, chars: Iterable[str]):
        chars = sorted(set(chars) - set(self.SPECIALS))
        if any(len(c) != 1 for c in chars):
            raise ValueError("Vocabulary takes single characters")
        self.chars: list[str] = [*self.SPECIALS, *chars]
        self.index = {c: i for i, c in enumerate(self.chars)}
        self.unknown_id = self.index[UNKNOWN]
        self._code_points = np.array([ord(c) for c in chars], dtype=np.int64)  # sorted, without specials

    @classmethod
    def from_text(cls, text: str) -> Vocabulary:
        return cls(set(text))

    def __len__(self) -> int:
        return len(self.chars)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self.chars == other.chars

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} symbols)"

    @property
    def characters(self) -> str:
        """The characters with an id of their own (no special symbol)."""
        return "".join(self.chars[len(self.SPECIALS) :])

    def missing(self, text: str) -> list[str]:
        """The distinct characters of ``text`` that have no id of their own, in order of appearance."""
        return [c for c in dict.fromkeys(text) if c not in self.index]

    def encode(self, text: str) -> torch.Tensor:
        """Ids of ``text``, shape ``(len(text),)``, int64; unseen characters become the unknown id."""
        points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
        if len(self._code_points) == 0:
            return torch.full((len(points),), self.unknown_id, dtype=torch.long)
        slot = np.searchsorted(self._code_points, points).clip(max=len(self._code_points) - 1)
        ids = np.where(self._code_points[slot] == points, slot + len(self.SPECIALS), self.unknown_id)
        return torch.from_numpy(ids)

    def decode(self, ids: torch.Tensor | Iterable[int]) -> str:
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else ids
        return "".join(self.chars[i] for i in ids)

    def to_dict(self) -> dict[str, Any]:
        """Plain types only, so a checkpoint holding it loads with ``weights_only=True``."""
        return {"chars": self.characters, "unknown": UNKNOWN}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Vocabulary:
        return cls(data["chars"])


PAD, START, END = "<pad>", "<start>", "<end>"


class PairVocabulary(Vocabulary):
    """The characters of a sequence-to-sequence task plus ``<pad>`` (id 0), ``<start>``, ``<end>`` and the
    unknown symbol; one vocabulary serves the source and the target side."""

    SPECIALS = (PAD, START, END, UNKNOWN)
    pad_id, start_id, end_id = 0, 1, 2

    def encode_padded(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Ids ``(len(texts), longest)`` padded with ``<pad>``, and the lengths ``(len(texts),)``: one
        ``encode`` of the joined texts, scattered into place by a mask (no loop over the texts)."""
        lengths = torch.tensor([len(text) for text in texts], dtype=torch.long)
        width = int(lengths.max()) if len(texts) else 0
        padded = torch.full((len(texts), width), self.pad_id, dtype=torch.long)
        padded[torch.arange(width) < lengths[:, None]] = self.encode("".join(texts))
        return padded, lengths

    def decode_until_end(self, ids: torch.Tensor | Iterable[int]) -> str:
        """The characters before the first ``<end>`` (special symbols dropped): what a decoder said."""
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        if self.end_id in ids:
            ids = ids[: ids.index(self.end_id)]
        return "".join(self.chars[i] for i in ids if i >= len(self.SPECIALS) or i == self.unknown_id)
