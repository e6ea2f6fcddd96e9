"""Sampling text from a character model: temperature and top-k draws, seeded, never the unknown symbol."""

from __future__ import annotations

import torch

from rnnexp.data.vocab import Vocabulary
from rnnexp.errors import ConfigError
from rnnexp.models.char_rnn import CharRNN


def check_prompt(vocab: Vocabulary, prompt: str, key: str = "prompt") -> None:
    """Refuse a prompt the model cannot read: empty, or with characters it never saw in training."""
    if not prompt:
        raise ConfigError(
            f"{key} is empty; the model needs at least one character to start from (e.g. {key}=A)."
        )
    missing = vocab.missing(prompt)
    if missing:
        raise ConfigError(
            f"{key}={prompt!r} has characters outside the model's vocabulary: "
            f"{', '.join(repr(c) for c in missing)}. The vocabulary has {len(vocab) - 1} characters: "
            f"{''.join(vocab.chars[1:])!r}."
        )


def check_sampling_options(temperature: float, top_k: int | None, length: int, prefix: str = "") -> None:
    """Refuse impossible options; ``prefix`` makes the message name the config key (e.g. ``task.sample_``)."""
    if isinstance(length, bool) or not isinstance(length, int) or length < 0:
        raise ConfigError(
            f"{prefix}length={length!r} must be a non-negative integer (characters to generate)."
        )
    if isinstance(temperature, bool) or not isinstance(temperature, int | float) or temperature <= 0:
        raise ConfigError(
            f"{prefix}temperature={temperature!r} must be > 0 (below 1 is more conservative, e.g. 0.8)."
        )
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k <= 0):
        raise ConfigError(
            f"{prefix}top_k={top_k!r} must be a positive integer, or null to sample from all characters."
        )


def next_ids(
    logits: torch.Tensor, temperature: float, top_k: int | None, generator: torch.Generator
) -> torch.Tensor:
    """One draw per row of ``logits`` ``(batch, vocab)`` → ids ``(batch, 1)``; never the unknown symbol."""
    logits = logits.float() / temperature
    logits[:, 0] = float("-inf")  # id 0 is the unknown symbol: not a character to print
    if top_k is not None and top_k < logits.shape[-1] - 1:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator)


@torch.inference_mode()
def sample(
    net: CharRNN,
    prompt: str,
    length: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int = 0,
) -> str:
    """``length`` characters continuing ``prompt`` (the prompt itself not included).

    Draws come from a generator seeded with ``seed`` on the model's device, so the result depends on the
    arguments alone and the global random state (e.g. of a training run) is left untouched.
    """
    check_prompt(net.vocab, prompt)
    check_sampling_options(temperature, top_k, length)
    was_training = net.training
    net.eval()
    device = net.decoder.weight.device
    generator = torch.Generator(device=device).manual_seed(seed)
    ids = net.vocab.encode(prompt).to(device).unsqueeze(0)  # (1, prompt length)
    logits, hidden = net(ids)
    drawn = []
    for _ in range(length):
        ids = next_ids(logits[:, -1], temperature, top_k, generator)  # (1, 1)
        drawn.append(ids)
        logits, hidden = net(ids, hidden)
    net.train(was_training)
    # One transfer at the end: no per-character device sync while generating.
    return net.vocab.decode(torch.cat(drawn, dim=1)[0].cpu()) if drawn else ""
