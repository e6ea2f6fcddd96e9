"""Translating strings with a trained character sequence-to-sequence model (what ``rnnexp.translate`` runs)."""

from __future__ import annotations

import torch

from rnnexp.errors import ConfigError
from rnnexp.models.char_seq2seq import CharSeq2Seq


def check_source(net: CharSeq2Seq, source: str, key: str = "source") -> None:
    """Refuse a source the model cannot read: empty, or with characters it never saw in training."""
    if not source:
        raise ConfigError(f"{key} is empty; give a string to translate (e.g. {key}='535+61').")
    missing = net.vocab.missing(source)
    if missing:
        raise ConfigError(
            f"{key}={source!r} has characters outside the model's vocabulary: "
            f"{', '.join(repr(c) for c in missing)}. The model knows {len(net.vocab.characters)} characters: "
            f"{net.vocab.characters!r}."
        )


@torch.inference_mode()
def translate(net: CharSeq2Seq, sources: list[str], beam_size: int = 1) -> list[str]:
    """The model's output for each source string (decoded up to ``<end>``), all in one batch."""
    if isinstance(beam_size, bool) or not isinstance(beam_size, int) or beam_size <= 0:
        raise ConfigError(f"beam_size={beam_size!r} must be a positive integer (1 is greedy decoding).")
    for source in sources:
        check_source(net, source)
    was_training = net.training
    net.eval()
    device = next(net.parameters()).device
    ids, lengths = net.vocab.encode_padded(sources)
    outputs = net.generate(ids.to(device), lengths.to(device), beam_size=beam_size).cpu()
    net.train(was_training)
    return [net.vocab.decode_until_end(row) for row in outputs]
