"""Classify a text, or tag its tokens, with a model trained by ``datamodule=text_classes`` or ``tagging``.

``python -m rnnexp.predict ckpt_path=<run>/checkpoints/last.ckpt text="Shares fell sharply"`` prints the class
and its probability (``top=3``: the three likeliest); for a tagger, each token and its tag, one per line.
Options in ``conf/predict.yaml``. The text is read as in training (the checkpoint holds the tokenizer and the
vocabulary); a tagger reads tokens separated by spaces.
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig

from rnnexp.errors import ConfigError, RnnexpError
from rnnexp.lifecycle.checkpoint import load_net_of_kind
from rnnexp.models.token_net import TokenRecurrentNet

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"  # absolute: works under -m and from Python


def load_token_model(path: str | Path, map_location: str | torch.device = "cpu") -> TokenRecurrentNet:
    """The network of a ``datamodule=text_classes`` or ``datamodule=tagging`` run's checkpoint."""
    return load_net_of_kind(
        path, "TokenRecurrentNet", "text classifier or tagger", "text_classes or tagging", map_location
    )


@torch.no_grad()
def predict(net: TokenRecurrentNet, text: str, top: int = 1) -> list[str]:
    """The lines ``predict`` prints: ``<class>\\t<probability>`` for the ``top`` likeliest classes, or for a
    tagger ``<token>\\t<tag>`` per token. Refuses a text without tokens (ConfigError)."""
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
    return [
        f"{net.labels[i]}\t{p:.4f}" for p, i in zip(best.values.tolist(), best.indices.tolist(), strict=True)
    ]


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="predict")
def main(cfg: DictConfig) -> None:
    try:
        net = load_token_model(cfg.ckpt_path, map_location=cfg.device)
        lines = predict(net, str(cfg.text), cfg.top)
    except RnnexpError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
