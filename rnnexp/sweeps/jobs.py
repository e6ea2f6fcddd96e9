"""Which job of which sweep this run is: a grid job (Hydra multirun) or an Optuna trial's job (its own
process, told its trial by the ``optuna_trial`` config). Dashboards name runs after it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

# Overrides the Optuna sweeper adds to every trial's job: plumbing, not choices worth showing. (Sweeps made
# before issue 23 also added num_threads; it is shown now: a sweep may vary it on purpose.)
PLUMBING = ("optuna_trial.",)
NOT_DRAWN = "optuna_trial.not_drawn"


def drawn_overrides(overrides: list[str]) -> list[str]:
    """A job's overrides without the sweeper's plumbing and without the keys its trial did not draw
    (``optuna_trial.not_drawn``: they could not act, and ran at their neutral value); those show blank in the
    sweep's tables, not as a number that did nothing."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    not_drawn: set[str] = set()
    for override in parsed:
        if override.get_key_element() == NOT_DRAWN and isinstance(override.value(), list):
            not_drawn.update(str(key) for key in override.value())
    return [
        override.input_line
        for override in parsed
        if not override.get_key_element().lstrip("+~").startswith(PLUMBING)
        and override.get_key_element() not in not_drawn
    ]


@dataclass
class SweepJob:
    sweep_dir: Path
    number: int
    varying: dict[str, str]  # the job's values of the overrides that vary across the sweep

    @property
    def label(self) -> str:
        """``3-model=gru,lr=0.0031``: the job number and its values of what the sweep varies."""
        text = describe(self.varying)
        return f"{self.number}-{text}"[:120] if text else str(self.number)

    def group(self, replicate_keys: list[str]) -> str:
        """``model=gru,lr=0.0031``: what the sweep varies except the replicate keys (the same text as the
        comparison's group column for one sweep); ``all`` when only replicates vary."""
        return describe({k: v for k, v in self.varying.items() if k not in replicate_keys}) or "all"


def describe(values: dict[str, str]) -> str:
    """``{"model": "gru", "optimizer.lr": "0.003"}`` → ``model=gru,lr=0.003`` (full keys if short ones clash)."""
    short = {key.rsplit(".", 1)[-1]: value for key, value in values.items()}
    if len(short) < len(values):
        short = values
    return ",".join(f"{key}={value}" for key, value in short.items())


def replicate_id(cfg: DictConfig) -> str:
    """``seed=1``: this run's values of its replicate keys (``replicate_keys``, default seed)."""
    keys = list(cfg.get("replicate_keys") or ["seed"])
    return ",".join(f"{key}={OmegaConf.select(cfg, key)}" for key in keys)


def short_value(text: str) -> str:
    try:
        number = float(text)
    except ValueError:
        return text
    return text if number.is_integer() and "." not in text else f"{number:.3g}"


def varying_keys(sweep_dir: Path) -> set[str] | None:
    """Keys the sweep varies: its sweep overrides (``a=1,2``, ``choice(...)``) and the Optuna search space,
    read from the sweep's multirun.yaml (None when there is none)."""
    multirun = sweep_dir / "multirun.yaml"
    if not multirun.is_file():
        return None
    config = OmegaConf.load(multirun)
    keys = set((OmegaConf.select(config, "hydra.sweeper.params") or {}).keys())
    overrides = OmegaConf.select(config, "hydra.overrides.task") or []
    for override in OverridesParser.create().parse_overrides(list(overrides)):
        if override.is_sweep_override():
            keys.add(override.get_key_element())
    return keys


def in_multirun() -> bool:
    """Whether this process runs one job of a Hydra sweep (``-m``) rather than a single run (as
    ``rnnexp.lifecycle.launch.in_multirun``; this module is read by sweep summaries and reviews, which must
    not import torch and Lightning for it)."""
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def sweep_job(cfg: DictConfig) -> SweepJob | None:
    """This run's place in a sweep, or None for a single run."""
    number = OmegaConf.select(cfg, "optuna_trial.number")
    if number is not None:
        sweep_dir = Path(cfg.paths.output_dir).parent  # the sweeper runs trial N in <sweep dir>/N
    elif in_multirun():
        sweep_dir, number = Path(HydraConfig.get().sweep.dir), HydraConfig.get().job.num
    else:
        return None
    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    parsed = OverridesParser.create().parse_overrides(drawn_overrides(overrides))
    keys = varying_keys(sweep_dir)
    varying = {
        o.get_key_element(): short_value(o.get_value_element_as_str())
        for o in parsed
        if keys is None or o.get_key_element() in keys
    }
    return SweepJob(sweep_dir=sweep_dir.absolute(), number=int(number), varying=varying)
