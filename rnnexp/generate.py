"""Sample text from a character-level language model.

From a checkpoint: ``python -m rnnexp.generate ckpt_path=<run>/checkpoints/last.ckpt prompt=ROMEO: length=500
temperature=0.8 top_k=20 seed=1`` (options in ``conf/generate.yaml``; quote prompts with spaces as
``'prompt="First Citizen:"'``). The same checkpoint, prompt, options and seed print the same text.
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from rnnexp.config.tools import check_tool_config
from rnnexp.errors import RnnexpError
from rnnexp.lifecycle.checkpoint import load_char_model
from rnnexp.models.sampling import sample

# The repository's configs, as an absolute path: Hydra then finds them both under `python -m rnnexp.generate`
# and when `main` is called from Python (a relative path would be resolved against the package).
CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="generate")
def main(cfg: DictConfig) -> None:
    try:
        check_tool_config(cfg, "rnnexp.generate", {"ckpt_path": "<run dir>/checkpoints/last.ckpt"})
        net = load_char_model(cfg.ckpt_path, map_location=cfg.device)
        text = sample(net, str(cfg.prompt), cfg.length, cfg.temperature, cfg.top_k, cfg.seed)
    except RnnexpError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
    print(cfg.prompt + text)


if __name__ == "__main__":
    main()
