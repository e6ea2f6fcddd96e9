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
from omegaconf import DictConfig

from rnnexp.errors import RnnexpError
from rnnexp.lifecycle.checkpoint import load_token_model
from rnnexp.models.token_prediction import predict_lines

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"  # absolute: works under -m and from Python


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="predict")
def main(cfg: DictConfig) -> None:
    try:
        net = load_token_model(cfg.ckpt_path, map_location=cfg.device)
        lines = predict_lines(net, str(cfg.text), cfg.top)
    except RnnexpError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
