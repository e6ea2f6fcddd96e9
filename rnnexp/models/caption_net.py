"""One-to-many: an image becomes one vector (a small MLP or CNN), the vector the decoder's initial state, and
the decoder spells the caption from ``<start>`` to ``<end>``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from rnnexp.data.vocab import PairVocabulary
from rnnexp.errors import ConfigError
from rnnexp.models.char_decoder import CharDecoder
from rnnexp.models.char_seq2seq import check_positive
from rnnexp.models.recurrent import Hidden, RecurrentSpec
from rnnexp.models.seq2seq import VectorBridge

IMAGE_ENCODERS = ("mlp", "cnn")


def build_image_encoder(kind: str, image_shape: Sequence[int], feature_size: int) -> nn.Module:
    """Images ``(batch, height, width)`` -> features ``(batch, feature_size)``."""
    height, width = image_shape
    if kind == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(height * width, feature_size), nn.ReLU())
    if kind == "cnn":
        return nn.Sequential(
            nn.Unflatten(1, (1, height)),  # (batch, 1 channel, height, width)
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(32 * (height // 4) * (width // 4), feature_size),
            nn.ReLU(),
        )
    raise ConfigError(f"task.image_encoder={kind!r} is unknown; choose one of {list(IMAGE_ENCODERS)}.")


class CaptionNet(nn.Module):
    """Images ``(batch, height, width)`` -> caption logits ``(batch, T, vocab)`` (training) or ids
    ``(batch, max_output_length)`` (generation), through ``VectorBridge`` and the character decoder."""

    def __init__(
        self,
        spec: RecurrentSpec,
        vocab: PairVocabulary,
        embedding_dim: int,
        max_output_length: int,
        image_encoder: str = "mlp",
        feature_size: int = 128,
        image_shape: Sequence[int] = (28, 28),
    ):
        super().__init__()
        check_positive("task.embedding_dim", embedding_dim)
        check_positive("task.feature_size", feature_size)
        check_positive("task.max_output_length", max_output_length)
        self.spec, self.vocab = spec, vocab
        self.embedding_dim, self.max_output_length = embedding_dim, max_output_length
        self.image_encoder_kind, self.feature_size, self.image_shape = (
            image_encoder,
            feature_size,
            tuple(image_shape),
        )
        self.image_encoder = build_image_encoder(image_encoder, self.image_shape, feature_size)
        self.bridge = VectorBridge(spec, feature_size)
        self.decoder = CharDecoder(spec, vocab, embedding_dim)

    def encode(self, images: torch.Tensor) -> Hidden:
        return self.bridge(self.image_encoder(images))

    def forward(
        self,
        images: torch.Tensor,
        target: torch.Tensor,
        teacher_forcing: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        return self.decoder.teacher_forced(self.encode(images), target, teacher_forcing, generator)

    def generate(self, images: torch.Tensor, beam_size: int = 1) -> torch.Tensor:
        return self.decoder.generate(self.encode(images), self.max_output_length, beam_size)

    def describe(self) -> dict[str, Any]:
        return {
            "spec": self.spec.as_dict(),
            "vocab": self.vocab.to_dict(),
            "embedding_dim": self.embedding_dim,
            "max_output_length": self.max_output_length,
            "image_encoder": self.image_encoder_kind,
            "feature_size": self.feature_size,
            "image_shape": list(self.image_shape),
        }

    @classmethod
    def from_description(cls, description: Mapping[str, Any]) -> CaptionNet:
        return cls(
            RecurrentSpec.coerce(description["spec"]),
            PairVocabulary.from_dict(description["vocab"]),
            embedding_dim=description["embedding_dim"],
            max_output_length=description["max_output_length"],
            image_encoder=description["image_encoder"],
            feature_size=description["feature_size"],
            image_shape=description["image_shape"],
        )
