"""Token ids in, one label per text or per token out: an embedding in front of ``RecurrentNet``.

The vocabulary, the label names and the tokenizer live in the network, so a checkpoint alone is enough to
read new text (``python -m rnnexp.predict``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from rnnexp.data.tokens import Tokenizer, TokenVocabulary
from rnnexp.errors import ConfigError
from rnnexp.models.recurrent import Hidden, RecurrentNet, RecurrentSpec


def check_embedding_dim(embedding_dim: Any) -> None:
    if isinstance(embedding_dim, bool) or not isinstance(embedding_dim, int) or embedding_dim <= 0:
        raise ConfigError(f"task.embedding_dim={embedding_dim!r} must be a positive integer (e.g. 64).")


class TokenRecurrentNet(nn.Module):
    """Ids ``(batch, time)`` int64 (``<pad>`` = 0 after each row's end) and lengths ``(batch,)`` in; logits
    ``(batch, labels)`` (``per_step=False``: one label per text, read out by ``spec.pooling``) or
    ``(batch, time, labels)`` (``per_step=True``: one label per token; padded positions hold junk the task
    masks). With lengths the recurrent layer reads a packed batch, so padding never changes a prediction.
    """

    def __init__(
        self,
        spec: RecurrentSpec,
        vocab: TokenVocabulary,
        labels: Sequence[str],
        embedding_dim: int,
        per_step: bool,
        tokenizer: Tokenizer,
    ):
        super().__init__()
        check_embedding_dim(embedding_dim)
        self.spec = spec
        self.vocab = vocab
        self.labels = list(labels)
        self.embedding_dim = embedding_dim
        self.tokenizer = tokenizer
        self.embedding = nn.Embedding(len(vocab), embedding_dim, padding_idx=vocab.pad_id)
        self.recurrent = RecurrentNet(spec, embedding_dim, len(self.labels), per_step=per_step)

    @property
    def per_step(self) -> bool:
        return self.recurrent.per_step

    @property
    def output_size(self) -> int:
        return self.recurrent.output_size

    def forward(
        self, ids: torch.Tensor, hidden: Hidden | None = None, lengths: torch.Tensor | None = None
    ) -> torch.Tensor:
        if lengths is not None and not self.per_step and bool((lengths == ids.shape[1]).all()):
            lengths = None  # no row is padded: the unpacked path computes the same, without packing's cost
        return self.recurrent(self.embedding(ids), hidden, lengths)

    def encode(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor, list[list[str]]]:
        """Padded ids, lengths and the tokens of ``texts``, read with the training tokenizer."""
        tokens = [self.tokenizer(text) for text in texts]
        ids, lengths = self.vocab.encode_padded(tokens)
        return ids, lengths, tokens

    def describe(self) -> dict[str, Any]:
        """Everything needed to rebuild this network, vocabulary and labels included (stored in checkpoints)."""
        return {
            "spec": self.spec.as_dict(),
            "vocab": self.vocab.to_dict(),
            "labels": list(self.labels),
            "embedding_dim": self.embedding_dim,
            "per_step": self.per_step,
            "tokenizer": self.tokenizer.to_dict(),
        }

    @classmethod
    def from_description(cls, description: Mapping[str, Any]) -> TokenRecurrentNet:
        return cls(
            RecurrentSpec.coerce(description["spec"]),
            TokenVocabulary.from_dict(description["vocab"]),
            labels=description["labels"],
            embedding_dim=description["embedding_dim"],
            per_step=description["per_step"],
            tokenizer=Tokenizer(**description["tokenizer"]),
        )
