"""The character-level language model: embedding → RNN/LSTM/GRU (from the ``model`` spec) → linear decoder."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from rnnexp.data.vocab import Vocabulary
from rnnexp.errors import ConfigError
from rnnexp.models.cell_layer import CellLayer
from rnnexp.models.recurrent import Hidden, RecurrentSpec, build_recurrent_layer


def check_language_model_options(spec: RecurrentSpec, embedding_dim: int, tie_weights: bool) -> None:
    """Refuse what cannot make a next-character model, before any data is read."""
    if spec.bidirectional:
        raise ConfigError(
            "model.bidirectional=true cannot be used for language modelling: the backward direction reads "
            "the characters after each position, including the one the model must predict, so the loss "
            "would be meaningless. Use model.bidirectional=false."
        )
    if isinstance(embedding_dim, bool) or not isinstance(embedding_dim, int) or embedding_dim <= 0:
        raise ConfigError(f"task.embedding_dim={embedding_dim!r} must be a positive integer.")
    if tie_weights and embedding_dim != spec.hidden_size:
        raise ConfigError(
            f"task.tie_weights=true shares the embedding with the decoder, so task.embedding_dim "
            f"({embedding_dim}) must equal model.hidden_size ({spec.hidden_size}); set "
            f"task.embedding_dim={spec.hidden_size} or task.tie_weights=false."
        )


class CharRNN(nn.Module):
    """Ids ``(batch, time)`` and an optional hidden state in; logits ``(batch, time, vocab)`` and the final
    hidden state out. The vocabulary lives here so a checkpoint alone is enough to generate text.

    With ``tie_weights`` the decoder reuses the embedding matrix (Press & Wolf, 2017).
    """

    def __init__(self, spec: RecurrentSpec, vocab: Vocabulary, embedding_dim: int, tie_weights: bool = False):
        super().__init__()
        check_language_model_options(spec, embedding_dim, tie_weights)
        self.spec = spec
        self.vocab = vocab
        self.embedding_dim = embedding_dim
        self.tie_weights = tie_weights
        self.embedding = nn.Embedding(len(vocab), embedding_dim)
        self.rnn = build_recurrent_layer(spec, embedding_dim)
        self.decoder = nn.Linear(spec.hidden_size, len(vocab))
        # Small uniform weights as in the classic recipe: N(0, 1) embeddings make tied logits far too large.
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)
        if tie_weights:
            self.decoder.weight = self.embedding.weight
        else:
            nn.init.uniform_(self.decoder.weight, -0.1, 0.1)

    @property
    def output_size(self) -> int:
        return len(self.vocab)

    def init_hidden(self, batch_size: int) -> Hidden:
        """The initial state ``(layers, batch, hidden)`` (a pair for LSTM; a generic cell's own initial
        state), on the parameters' device and dtype."""
        weight = self.decoder.weight
        if isinstance(self.rnn, CellLayer):
            return self.rnn.initial_hidden(batch_size, weight)
        shape = (self.spec.num_layers, batch_size, self.spec.hidden_size)
        if self.spec.cell == "lstm":
            return weight.new_zeros(shape), weight.new_zeros(shape)
        return weight.new_zeros(shape)

    def forward(self, ids: torch.Tensor, hidden: Hidden | None = None) -> tuple[torch.Tensor, Hidden]:
        outputs, hidden = self.rnn(self.embedding(ids), hidden)  # outputs: (batch, time, hidden)
        return self.decoder(outputs), hidden

    def describe(self) -> dict[str, Any]:
        """Everything needed to rebuild this network, vocabulary included (stored in checkpoints)."""
        return {
            "spec": self.spec.as_dict(),
            "vocab": self.vocab.to_dict(),
            "embedding_dim": self.embedding_dim,
            "tie_weights": self.tie_weights,
        }

    @classmethod
    def from_description(cls, description: Mapping[str, Any]) -> CharRNN:
        return cls(
            RecurrentSpec.coerce(description["spec"]),
            Vocabulary.from_dict(description["vocab"]),
            embedding_dim=description["embedding_dim"],
            tie_weights=description["tie_weights"],
        )
