"""Train one recurrent model, or sweep many with -m: `python train.py model=gru`."""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from rnnexp.config.groups import refuse_unknown_choices


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    # Imported here, not above: a sweep whose jobs run in other processes (hydra/launcher=parallel) never
    # imports torch and Lightning in its own process; in-process runs pay the same once.
    from rnnexp.run import run

    return run(cfg)


if __name__ == "__main__":
    refuse_unknown_choices(sys.argv[1:], Path(__file__).resolve().parent / "conf")
    main()
