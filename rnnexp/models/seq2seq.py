"""Encoder-decoder (sequence-to-sequence) networks and the one decoder loop they share.

The loop (``decode``) is generic over two things a task chooses:

- the initial state: any ``Hidden`` shaped ``(layers, batch, hidden)`` (a pair for LSTM), from a recurrent
  encoder through ``EncoderBridge`` or from a vector (e.g. an image feature) through ``VectorBridge``;
- how a step's output becomes the next step's input (``NextInput``): the prediction itself for regression
  (``feed_prediction``), the embedding of the argmax or a sampled token for characters.

Training may feed the truth instead (teacher forcing, a ratio per step and sequence); evaluation never does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from rnnexp.models.recurrent import Hidden, RecurrentSpec, build_recurrent_layer, state_sizes

NextInput = Callable[[torch.Tensor], torch.Tensor]
"""A step's output ``(batch, 1, output_size)`` → the next step's input ``(batch, 1, input_size)``."""


def feed_prediction(output: torch.Tensor) -> torch.Tensor:
    """Regression: the decoder reads its own previous prediction."""
    return output


def hidden_parts(hidden: Hidden) -> tuple[torch.Tensor, ...]:
    return hidden if isinstance(hidden, tuple) else (hidden,)


def as_hidden(parts: tuple[torch.Tensor, ...] | list[torch.Tensor]) -> Hidden:
    return tuple(parts) if len(parts) > 1 else parts[0]


class RecurrentDecoder(nn.Module):
    """A unidirectional recurrent net with a linear readout: inputs ``(batch, time, input_size)`` and a state
    in, outputs ``(batch, time, output_size)`` and the final state out. ``decode`` runs it step by step."""

    def __init__(self, spec: RecurrentSpec, input_size: int, output_size: int):
        super().__init__()
        self.spec = replace(spec, bidirectional=False)  # it generates left to right: never bidirectional
        self.rnn = build_recurrent_layer(self.spec, input_size)
        self.head = nn.Linear(self.spec.hidden_size, output_size)

    def forward(self, inputs: torch.Tensor, hidden: Hidden) -> tuple[torch.Tensor, Hidden]:
        outputs, hidden = self.rnn(inputs, hidden)
        return self.head(outputs), hidden


def decode(
    decoder: RecurrentDecoder,
    start: torch.Tensor,
    state: Hidden,
    steps: int,
    next_input: NextInput = feed_prediction,
    teacher_inputs: torch.Tensor | None = None,
    teacher_forcing: float = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Outputs ``(batch, steps, output_size)`` of ``decoder`` started from ``state`` and reading ``start``
    ``(batch, 1, input_size)`` first.

    Step t+1 reads ``next_input(output of step t)``, or, with probability ``teacher_forcing`` (drawn per step
    and sequence from ``generator``), ``teacher_inputs[:, t]``: the true output of step t in input form,
    ``(batch, steps, input_size)`` (its last step is never read). A ratio of 1 runs the fused kernel once over
    the whole sequence; otherwise the loop is one batched step per time step.
    """
    if teacher_inputs is not None and teacher_forcing >= 1.0:
        inputs = torch.cat([start, teacher_inputs[:, : steps - 1]], dim=1)
        return decoder(inputs, state)[0]
    forcing = teacher_inputs is not None and teacher_forcing > 0.0
    outputs, step_input, hidden = [], start, state
    for t in range(steps):
        output, hidden = decoder(step_input, hidden)
        outputs.append(output)
        if t == steps - 1:
            break
        step_input = next_input(output)
        if forcing:
            batch = start.shape[0]
            draw = torch.rand(batch, 1, 1, generator=generator, device=start.device)
            step_input = torch.where(draw < teacher_forcing, teacher_inputs[:, t : t + 1], step_input)
    return torch.cat(outputs, dim=1)


class EncoderBridge(nn.Module):
    """A recurrent encoder's final state ``(layers * directions, batch, hidden)`` → the decoder's initial
    state ``(layers, batch, hidden)``.

    Unidirectional: the state itself. Bidirectional: per layer, both directions' final states concatenated
    and mapped by a learned linear layer (one per part: h, and c for LSTM) — the backward direction has read
    the whole context too, so its summary is kept rather than dropped.
    """

    def __init__(self, spec: RecurrentSpec):
        super().__init__()
        self.spec = spec
        self.maps = nn.ModuleList(
            nn.Linear(2 * size, size) for size in (state_sizes(spec) if spec.bidirectional else ())
        )

    def forward(self, hidden: Hidden) -> Hidden:
        if not self.spec.bidirectional:
            return hidden
        bridged = []
        for part, linear in zip(hidden_parts(hidden), self.maps, strict=True):
            layers, batch, size = self.spec.num_layers, part.shape[1], part.shape[2]  # per part's width
            # (layers * 2, batch, hidden) → (layers, batch, 2 * hidden): forward and backward side by side
            both = part.view(layers, 2, batch, size).permute(0, 2, 1, 3).reshape(layers, batch, 2 * size)
            bridged.append(linear(both).contiguous())
        return as_hidden(bridged)


class VectorBridge(nn.Module):
    """A vector ``(batch, vector_size)`` (e.g. an image encoder's features) → a decoder's initial state
    ``(layers, batch, size)`` per part (a pair for LSTM, a cell's tuple), by a learned linear map per part."""

    def __init__(self, spec: RecurrentSpec, vector_size: int):
        super().__init__()
        self.spec = spec
        self.sizes = state_sizes(spec)
        self.maps = nn.ModuleList(nn.Linear(vector_size, spec.num_layers * size) for size in self.sizes)

    def forward(self, vector: torch.Tensor) -> Hidden:
        batch, layers = vector.shape[0], self.spec.num_layers
        return as_hidden(
            [
                m(vector).view(batch, layers, size).transpose(0, 1).contiguous()
                for m, size in zip(self.maps, self.sizes, strict=True)
            ]
        )


class EncoderDecoder(nn.Module):
    """Context ``(batch, seq_len, features)`` in, the next ``horizon`` values ``(batch, horizon, features)``
    out: the encoder (any ``model`` spec, bidirectional allowed) reads the context, ``EncoderBridge`` turns
    its final state into the decoder's, and the decoder (the same cell, unidirectional) starts from the last
    context value and reads its own previous prediction (or, teacher-forced, the truth).

    The forecast features are the input features (``input_size == output_size``), so a prediction can be read
    back in.
    """

    def __init__(self, spec: RecurrentSpec, input_size: int, output_size: int, horizon: int):
        super().__init__()
        if input_size != output_size:
            raise ValueError("EncoderDecoder forecasts its input features: input_size must equal output_size")
        self.spec, self.input_size, self.output_size, self.horizon = spec, input_size, output_size, horizon
        self.encoder = build_recurrent_layer(spec, input_size)
        self.bridge = EncoderBridge(spec)
        self.decoder = RecurrentDecoder(spec, output_size, output_size)

    def encode(self, context: torch.Tensor) -> Hidden:
        """The decoder's initial state from the whole context."""
        _, hidden = self.encoder(context)
        return self.bridge(hidden)

    def forward(
        self,
        context: torch.Tensor,
        future: torch.Tensor | None = None,
        teacher_forcing: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """The forecast; ``future`` (the true next values) is read only through teacher forcing."""
        return decode(
            self.decoder,
            start=context[:, -1:],
            state=self.encode(context),
            steps=self.horizon,
            next_input=feed_prediction,
            teacher_inputs=future,
            teacher_forcing=teacher_forcing if future is not None else 0.0,
            generator=generator,
        )

    def describe(self) -> dict[str, Any]:
        """Everything needed to rebuild this network (stored in checkpoints)."""
        return {
            "spec": self.spec.as_dict(),
            "input_size": self.input_size,
            "output_size": self.output_size,
            "horizon": self.horizon,
        }

    @classmethod
    def from_description(cls, description: Mapping[str, Any]) -> EncoderDecoder:
        return cls(
            RecurrentSpec.coerce(description["spec"]),
            input_size=description["input_size"],
            output_size=description["output_size"],
            horizon=description["horizon"],
        )
