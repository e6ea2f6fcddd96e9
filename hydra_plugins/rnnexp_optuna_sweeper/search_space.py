"""Hydra's sweep syntax → Optuna distributions: ``choice(a, b)`` is categorical, ``interval(lo, hi)`` uniform,
``tag(log, interval(lo, hi))`` log-uniform, ``range(start, stop, step)`` a stepped int/float (stop excluded,
as in Hydra's grid). Anything that is not a sweep is a fixed override every trial gets."""

from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Glob, IntervalSweep, Override, RangeSweep
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import Trial

from rnnexp.errors import ConfigError


def draw(trial: Trial, key: str, dist: BaseDistribution) -> Any:
    """Suggest ``key`` from ``dist`` on a define-by-run trial (``study.ask()`` without a fixed space)."""
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(key, dist.choices)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(key, dist.low, dist.high, step=dist.step, log=dist.log)
    assert isinstance(dist, FloatDistribution)
    return trial.suggest_float(key, dist.low, dist.high, step=dist.step, log=dist.log)


def distribution(override: Override) -> BaseDistribution:
    """The Optuna distribution of one sweep override (``override.is_sweep_override()`` must hold)."""
    value = override.value()
    if override.is_choice_sweep() and not isinstance(value, Glob):  # glob() picks config files
        return CategoricalDistribution(list(override.sweep_iterator()))
    if override.is_range_sweep():
        assert isinstance(value, RangeSweep)
        numbers = (value.start, value.stop, value.step)
        if all(isinstance(n, int) for n in numbers):
            return IntDistribution(int(value.start), int(value.stop) - int(value.step), step=int(value.step))
        return FloatDistribution(value.start, value.stop - value.step, step=value.step)
    if override.is_interval_sweep():
        assert isinstance(value, IntervalSweep)
        log = "log" in value.tags
        if isinstance(value.start, int) and isinstance(value.end, int):
            return IntDistribution(value.start, value.end, log=log)
        return FloatDistribution(float(value.start), float(value.end), log=log)
    raise ConfigError(
        f"{override.input_line} (hydra.sweeper.params or the command line) is a sweep Optuna cannot "
        "sample; use choice(...), interval(lo, hi), tag(log, interval(lo, hi)) or range(start, stop, step)."
    )


def search_space(
    params: dict[str, str] | None, arguments: list[str]
) -> tuple[dict[str, BaseDistribution], list[str]]:
    """``(distributions, fixed overrides)`` from the config's ``params`` and the command line; a command-line
    override of a searched key replaces its range (a plain value pins it)."""
    parser = OverridesParser.create()
    merged: dict[str, Override] = {}
    for override in parser.parse_overrides([f"{k}={v}" for k, v in (params or {}).items()]):
        merged[override.get_key_element()] = override
    fixed: list[str] = []
    for override in parser.parse_overrides(arguments):
        key = override.get_key_element()
        if override.is_sweep_override():
            merged[key] = override
        else:
            merged.pop(key, None)
            fixed.append(override.input_line)
    space: dict[str, BaseDistribution] = {}
    for key, override in merged.items():
        if override.is_sweep_override():
            space[key] = distribution(override)
        else:
            fixed.append(f"{key}={override.get_value_element_as_str()}")
    return space, fixed


def override_value(value: Any) -> str:
    """A sampled value as Hydra override text (``true``, ``0.001``, ``gru``)."""
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "null"
    return str(value)
