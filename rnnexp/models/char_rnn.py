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

INITS = ("torch", "uniform")  # task.init: how the embedding and the decoder start (see CharRNN)


def check_language_model_options(
    spec: RecurrentSpec, embedding_dim: int, tie_weights: bool, init: str = "torch"
) -> None:
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
    if init not in INITS:
        raise ConfigError(f"task.init={init!r} is unknown; choose one of {list(INITS)}.")
    if tie_weights and init == "torch":
        raise ConfigError(
            "task.tie_weights=true with task.init=torch would start the decoder from the embedding's N(0, 1) "
            "weights, whose logits are far too large to train; use task.init=uniform with tied weights."
        )


class CharRNN(nn.Module):
    """Ids ``(batch, time)`` and an optional hidden state in; logits ``(batch, time, vocab)`` and the final
    hidden state out. The vocabulary lives here so a checkpoint alone is enough to generate text.

    With ``tie_weights`` the decoder reuses the embedding matrix (Press & Wolf, 2017).

    ``init`` (``task.init``) is how the embedding and the decoder start:

    - ``torch``: PyTorch's own defaults, the embedding N(0, 1) and the decoder Kaiming-uniform, as a plain
      char-rnn loop has them. With embedding and LSTM 256 wide this matched such a loop's bits/char, where
      ``uniform`` with embedding 64 was ~25% worse after 80 steps (BENCHMARKS.md, "Equal budget").
    - ``uniform``: U(-0.1, 0.1) for both and a zero decoder bias, the word-LM recipe of Zaremba et al. /
      PyTorch's examples; needed with ``tie_weights``, where N(0, 1) weights give far too large logits.
    """

    def __init__(
        self,
        spec: RecurrentSpec,
        vocab: Vocabulary,
        embedding_dim: int,
        tie_weights: bool = False,
        init: str = "torch",
    ):
        super().__init__()
        check_language_model_options(spec, embedding_dim, tie_weights, init)
        self.spec = spec
        self.vocab = vocab
        self.embedding_dim = embedding_dim
        self.tie_weights = tie_weights
        self.init = init
        self.embedding = nn.Embedding(len(vocab), embedding_dim)
        self.rnn = build_recurrent_layer(spec, embedding_dim)
        self.decoder = nn.Linear(spec.hidden_size, len(vocab))
        if init == "uniform":
            nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
            nn.init.zeros_(self.decoder.bias)
        if tie_weights:
            self.decoder.weight = self.embedding.weight
        elif init == "uniform":
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
        }  # not `init`: how a new network starts; a described one gets its weights from the checkpoint

    @classmethod
    def from_description(cls, description: Mapping[str, Any]) -> CharRNN:
        return cls(
            RecurrentSpec.coerce(description["spec"]),
            Vocabulary.from_dict(description["vocab"]),
            embedding_dim=description["embedding_dim"],
            tie_weights=description["tie_weights"],
            init="uniform",  # any start will do (the weights are loaded next); uniform is valid when tied
        )
