"""Train one recurrent model, or sweep many with -m: `python train.py model=gru`."""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from rnnexp.config.groups import refuse_unknown_choices
from rnnexp.run import run


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    return run(cfg)


if __name__ == "__main__":
    refuse_unknown_choices(sys.argv[1:], Path(__file__).resolve().parent / "conf")
    main()
