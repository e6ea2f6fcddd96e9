"""Output locations are checked before anything is trained: a folder that cannot be made or written ends the
run (or the sweep) with one paragraph naming the key that chose it."""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from rnnexp.errors import ConfigError, explained_exit


def make_writable_dir(path: str | Path, key: str) -> Path:
    """Create ``path`` (with its parents) and prove it writable by writing a file there; ConfigError naming
    ``key`` otherwise."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        raise ConfigError(
            f"{key}={path} cannot be used for the run's outputs ({err.strerror or type(err).__name__}: "
            f"{err.filename or path}). Point {key} at a folder you can write to (e.g. {key}=/tmp/rnnexp-runs) "
            "or fix the folder's permissions."
        ) from None
    return path


class CheckOutputDir(Callback):
    """Hydra callback (conf/hydra/default.yaml): the run's or the sweep's folder is made and proven writable
    before Hydra writes its own files there (Hydra's OSError would be a traceback)."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        with explained_exit():
            make_writable_dir(config.hydra.run.dir, "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        # Hydra sets its config (what `${hydra:runtime.cwd}` reads, e.g. in paths.root_dir) only when a job
        # starts; the sweeper reads hydra.sweep.dir before that, so a multirun without an explicit
        # hydra.sweep.dir would die on "HydraConfig was not set". Set it from the sweep's config now.
        # A copy: set_config makes the `hydra` node of the config it is given read-only, and sweepers still
        # write to theirs (e.g. an absolute hydra.sweep.dir).
        HydraConfig.instance().set_config(copy.deepcopy(config))
        with explained_exit():
            make_writable_dir(config.hydra.sweep.dir, "hydra.sweep.dir")
