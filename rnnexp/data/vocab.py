"""Characters ↔ integer ids for a character-level language model, with one id for unseen characters."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch

UNKNOWN = "\ufffd"  # Unicode's replacement character: what a decoder shows for a symbol it cannot map


class Vocabulary:
    """Sorted distinct characters; id 0 is the unknown symbol, so characters absent from the training
    text (e.g. in validation or a prompt) still have an id.

    Encoding works on code points with numpy (``searchsorted``), so a corpus of millions of characters is
    encoded without a Python loop.
    """

    def __init__(self, chars: Iterable[str]):
        chars = sorted(set(chars) - {UNKNOWN})
        if any(len(c) != 1 for c in chars):
            raise ValueError("Vocabulary takes single characters")
        self.chars: list[str] = [UNKNOWN, *chars]
        self.index = {c: i for i, c in enumerate(self.chars)}
        self._code_points = np.array([ord(c) for c in chars], dtype=np.int64)  # sorted, without UNKNOWN

    @classmethod
    def from_text(cls, text: str) -> Vocabulary:
        return cls(set(text))

    def __len__(self) -> int:
        return len(self.chars)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self.chars == other.chars

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} symbols)"

    def missing(self, text: str) -> list[str]:
        """The distinct characters of ``text`` that have no id of their own, in order of appearance."""
        return [c for c in dict.fromkeys(text) if c not in self.index]

    def encode(self, text: str) -> torch.Tensor:
        """Ids of ``text``, shape ``(len(text),)``, int64; unseen characters become 0 (unknown)."""
        points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
        if len(self._code_points) == 0:
            return torch.zeros(len(points), dtype=torch.long)
        slot = np.searchsorted(self._code_points, points).clip(max=len(self._code_points) - 1)
        ids = np.where(self._code_points[slot] == points, slot + 1, 0)
        return torch.from_numpy(ids)

    def decode(self, ids: torch.Tensor | Iterable[int]) -> str:
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else ids
        return "".join(self.chars[i] for i in ids)

    def to_dict(self) -> dict[str, Any]:
        """Plain types only, so a checkpoint holding it loads with ``weights_only=True``."""
        return {"chars": "".join(self.chars[1:]), "unknown": UNKNOWN}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Vocabulary:
        return cls(data["chars"])
