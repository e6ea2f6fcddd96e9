"""Translate a string with a character sequence-to-sequence model.

From a checkpoint: ``python -m rnnexp.translate ckpt_path=<run>/checkpoints/last.ckpt source="535+61"``
(options in ``conf/translate.yaml``; ``beam_size=5`` for beam search). Prints the output.
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from rnnexp.config.tools import check_tool_config
from rnnexp.errors import RnnexpError
from rnnexp.lifecycle.checkpoint import load_translation_model
from rnnexp.models.translation import translate

CONF_DIR = (
    Path(__file__).resolve().parents[1] / "conf"
)  # absolute: works under -m and when called from Python


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="translate")
def main(cfg: DictConfig) -> None:
    try:
        check_tool_config(
            cfg, "rnnexp.translate", {"ckpt_path": "<run dir>/checkpoints/last.ckpt", "source": "535+61"}
        )
        net = load_translation_model(cfg.ckpt_path, map_location=cfg.device)
        (output,) = translate(net, [str(cfg.source)], cfg.beam_size)
    except RnnexpError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
    print(output)


if __name__ == "__main__":
    main()
