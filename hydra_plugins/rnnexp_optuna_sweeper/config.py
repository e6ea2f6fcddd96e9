# No `from __future__ import annotations`: Hydra loads this module outside sys.modules, where dataclasses
# cannot resolve string annotations.
"""The sweeper's structured config and its choices, registered in Hydra's ConfigStore:
``hydra/sweeper=rnnexp_optuna``, ``hydra/sweeper/sampler=tpe|random``,
``hydra/sweeper/pruner=median|hyperband|successive_halving|none``."""

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore


@dataclass
class TPESamplerConf:
    _target_: str = "optuna.samplers.TPESampler"
    seed: int | None = None
    n_startup_trials: int = 10  # random trials before TPE starts modelling
    multivariate: bool = False
    constant_liar: bool = True  # trials in flight count as "running" so parallel workers spread out


@dataclass
class RandomSamplerConf:
    _target_: str = "optuna.samplers.RandomSampler"
    seed: int | None = None


@dataclass
class MedianPrunerConf:
    """Stop a trial whose value at a validation is worse than the median of earlier trials' at the same one."""

    _target_: str = "optuna.pruners.MedianPruner"
    n_startup_trials: int = 4  # finished trials before anything is pruned
    n_warmup_steps: int = 1  # validations before pruning may start (1: never at the first)
    interval_steps: int = 1


@dataclass
class HyperbandPrunerConf:
    _target_: str = "optuna.pruners.HyperbandPruner"
    min_resource: int = 1  # validations
    max_resource: Any = "auto"
    reduction_factor: int = 3


@dataclass
class SuccessiveHalvingPrunerConf:
    _target_: str = "optuna.pruners.SuccessiveHalvingPruner"
    min_resource: Any = "auto"
    reduction_factor: int = 4
    min_early_stopping_rate: int = 0


@dataclass
class NopPrunerConf:
    _target_: str = "optuna.pruners.NopPruner"


@dataclass
class OptunaSweeperConf:
    """``hydra.sweeper.*``. ``params`` maps a config key to Hydra's sweep syntax: ``choice(a, b)``,
    ``interval(lo, hi)``, ``tag(log, interval(lo, hi))``, ``range(start, stop, step)``."""

    _target_: str = "hydra_plugins.rnnexp_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    defaults: list[Any] = field(default_factory=lambda: ["_self_", {"sampler": "tpe"}, {"pruner": "none"}])
    sampler: Any = None
    pruner: Any = None
    direction: str = "minimize"  # or maximize: must match optimized_metric
    study_name: str | None = None
    # An Optuna RDB URL (sqlite:///..., postgresql://...) or journal:///<file> (Optuna's JournalStorage,
    # for a shared filesystem); null keeps the study in memory (it cannot be resumed or shared).
    storage: str | None = None
    n_trials: int = 20  # trials this process runs
    n_jobs: int = 1  # trials in flight at once on this machine
    threads_per_trial: int | None = None  # torch CPU threads of each trial; null: the CPUs / n_jobs
    max_study_trials: int | None = None  # stop asking once the study holds this many (all workers counted)
    params: dict[str, str] | None = None
    # Fork each trial's job from a process that imported torch + Lightning once (rnnexp.sweeps.job_processes);
    # false: `python train.py ...` per trial, as before (pays ~4 s of imports each).
    preload: bool = True


def register() -> None:
    store = ConfigStore.instance()
    store.store(group="hydra/sweeper", name="rnnexp_optuna", node=OptunaSweeperConf, provider="rnnexp")
    for name, node in (("tpe", TPESamplerConf), ("random", RandomSamplerConf)):
        store.store(group="hydra/sweeper/sampler", name=name, node=node, provider="rnnexp")
    pruners = {
        "median": MedianPrunerConf,
        "hyperband": HyperbandPrunerConf,
        "successive_halving": SuccessiveHalvingPrunerConf,
        "none": NopPrunerConf,
    }
    for name, node in pruners.items():
        store.store(group="hydra/sweeper/pruner", name=name, node=node, provider="rnnexp")


register()
