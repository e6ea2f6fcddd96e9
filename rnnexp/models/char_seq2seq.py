"""Sequence to sequence on characters: embedding -> recurrent encoder over packed sequences -> its final state
-> character decoder (greedy or beam search)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from rnnexp.data.vocab import PairVocabulary
from rnnexp.errors import ConfigError
from rnnexp.models.char_decoder import CharDecoder
from rnnexp.models.recurrent import Hidden, RecurrentSpec, build_recurrent_layer
from rnnexp.models.seq2seq import EncoderBridge


def check_positive(key: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{key}={value!r} must be a positive integer.")


class CharSeq2Seq(nn.Module):
    """Source ids ``(batch, S)`` with lengths ``(batch,)`` -> target logits ``(batch, T, vocab)`` (training) or
    ids ``(batch, max_output_length)`` (generation).

    The encoder is any ``model`` spec (cell, layers, bidirectional) and reads packed sequences, so padding
    costs no compute and a short source's final state is that of its last character. ``EncoderBridge`` turns
    that state into the decoder's (the same cell, unidirectional). Source and target share one vocabulary and
    one embedding. The vocabulary lives here, so a checkpoint alone can translate.
    """

    def __init__(
        self, spec: RecurrentSpec, vocab: PairVocabulary, embedding_dim: int, max_output_length: int
    ):
        super().__init__()
        check_positive("task.embedding_dim", embedding_dim)
        check_positive("task.max_output_length", max_output_length)
        self.spec, self.vocab = spec, vocab
        self.embedding_dim, self.max_output_length = embedding_dim, max_output_length
        self.decoder = CharDecoder(spec, vocab, embedding_dim)
        self.encoder = build_recurrent_layer(spec, embedding_dim)
        self.bridge = EncoderBridge(spec)

    def encode(self, source: torch.Tensor, source_lengths: torch.Tensor) -> Hidden:
        """The decoder's initial state from the source; each sequence stops at its own length."""
        embedded = self.decoder.embedding(source)  # (batch, S, embedding_dim)
        packed = pack_padded_sequence(embedded, source_lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, hidden = self.encoder(packed)  # in the batch's original order
        return self.bridge(hidden)

    def forward(
        self,
        source: torch.Tensor,
        source_lengths: torch.Tensor,
        target: torch.Tensor,
        teacher_forcing: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Logits ``(batch, T, vocab)`` for every step of ``target`` (training and the evaluation loss)."""
        return self.decoder.teacher_forced(
            self.encode(source, source_lengths), target, teacher_forcing, generator
        )

    def generate(
        self, source: torch.Tensor, source_lengths: torch.Tensor, beam_size: int = 1
    ) -> torch.Tensor:
        """Output ids ``(batch, max_output_length)``, ``<pad>`` after ``<end>``; no target involved."""
        return self.decoder.generate(self.encode(source, source_lengths), self.max_output_length, beam_size)

    def describe(self) -> dict[str, Any]:
        """Everything needed to rebuild this network, vocabulary included (stored in checkpoints)."""
        return {
            "spec": self.spec.as_dict(),
            "vocab": self.vocab.to_dict(),
            "embedding_dim": self.embedding_dim,
            "max_output_length": self.max_output_length,
        }

    @classmethod
    def from_description(cls, description: Mapping[str, Any]) -> CharSeq2Seq:
        return cls(
            RecurrentSpec.coerce(description["spec"]),
            PairVocabulary.from_dict(description["vocab"]),
            embedding_dim=description["embedding_dim"],
            max_output_length=description["max_output_length"],
        )
