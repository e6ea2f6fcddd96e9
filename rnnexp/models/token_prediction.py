"""What ``python -m rnnexp.predict`` prints for a text: its likeliest classes, or a tag per token."""

from __future__ import annotations

import torch

from rnnexp.errors import ConfigError
from rnnexp.models.token_net import TokenRecurrentNet


@torch.no_grad()
def predict_lines(net: TokenRecurrentNet, text: str, top: int = 1) -> list[str]:
    """``<class>\\t<probability>`` for the ``top`` likeliest classes, or for a tagger ``<token>\\t<tag>`` per
    token. The text is read by the checkpoint's own tokenizer and vocabulary (unknown tokens read as
    ``<unk>``). Refuses a ``top`` below 1 and a text without tokens (ConfigError)."""
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ConfigError(f"top={top!r} must be a positive integer (the number of classes printed).")
    ids, lengths, tokens = net.encode([text])
    if int(lengths[0]) == 0:
        raise ConfigError(f'text={text!r} has no tokens; pass some text, e.g. text="Shares fell sharply".')
    device = next(net.parameters()).device
    logits = net.eval()(ids.to(device), lengths=lengths)
    if net.per_step:
        tags = logits[0].argmax(dim=-1).tolist()
        return [f"{token}\t{net.labels[tag]}" for token, tag in zip(tokens[0], tags, strict=True)]
    probabilities = logits[0].softmax(dim=-1)
    best = probabilities.topk(min(top, len(net.labels)))
    pairs = zip(best.values.tolist(), best.indices.tolist(), strict=True)
    return [f"{net.labels[i]}\t{p:.4f}" for p, i in pairs]
