"""Optuna's own plots for any sweep: an Optuna sweep's stored study, or a grid turned into an in-memory
study (a grid is a set of finished trials). Optimization history, parameter slices, parallel coordinates,
parameter importances and the intermediate values of completed and pruned trials."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
from matplotlib.figure import Figure
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial

from rnnexp.sweeps.records import learning_curves, optuna_study, swept_parameters

log = logging.getLogger(__name__)
STATES = {"completed": TrialState.COMPLETE, "pruned": TrialState.PRUNED, "failed": TrialState.FAIL}


def plain(value: Any) -> Any:
    """numpy scalars → Python values Optuna can store."""
    return value.item() if isinstance(value, np.generic) else value


def distributions(runs: pd.DataFrame, params: list[str]) -> dict[str, BaseDistribution]:
    """Numbers with many levels as a float range (log when they span 20x or more), the rest as categories."""
    result: dict[str, BaseDistribution] = {}
    for param in params:
        values = runs[param].dropna()
        numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
        if numeric and values.nunique() > 6:
            low, high = float(values.min()), float(values.max())
            result[param] = FloatDistribution(low, high, log=low > 0 and high / low >= 20)
        else:
            result[param] = CategoricalDistribution(sorted({plain(v) for v in values}, key=str))
    return result


def study_from_runs(runs: pd.DataFrame) -> optuna.Study:
    """An in-memory study with one trial per finished job of a sweep (grid or Optuna), its swept values as
    parameters and the per-epoch monitored metric as intermediate values."""
    study = optuna.create_study(direction="maximize" if runs.attrs.get("mode") == "max" else "minimize")
    params = swept_parameters(runs)
    space = distributions(runs, params)
    metric = runs.attrs.get("optimized_metric", "").removesuffix("_best")
    for _, row in runs[runs["status"].isin(STATES)].iterrows():
        curves = learning_curves(row["run_dir"])
        steps = curves[metric].dropna() if metric in curves else pd.Series(dtype=float)
        state = STATES[row["status"]]
        value = row["objective"] if state == TrialState.COMPLETE else None
        if state == TrialState.PRUNED and len(steps):
            value = float(steps.iloc[-1])
        trial_params = {p: plain(row[p]) for p in params if not pd.isna(row[p])}
        study.add_trial(
            create_trial(
                state=state,
                value=None if value is None else float(value),
                params=trial_params,
                distributions={p: space[p] for p in trial_params},
                intermediate_values={int(k): float(v) for k, v in steps.items()},
            )
        )
    return study


def sweep_study(runs: pd.DataFrame, sweep_dirs: list[Path]) -> optuna.Study:
    """The stored study of an Optuna sweep (one folder), else a study built from the jobs."""
    if len(sweep_dirs) == 1 and (study := optuna_study(sweep_dirs[0])) is not None:
        return study
    return study_from_runs(runs)


def optuna_plots() -> dict[str, Callable[..., Any]]:
    from optuna.visualization import matplotlib as vis

    return {
        "Optimization history": vis.plot_optimization_history,
        "Objective against each parameter": vis.plot_slice,
        "Parallel coordinates": vis.plot_parallel_coordinate,
        "Parameter importances": vis.plot_param_importances,
        "Intermediate values (completed and pruned trials)": vis.plot_intermediate_values,
    }


def study_figures(study: optuna.Study) -> dict[str, Figure]:
    """Each of Optuna's plots that this study can show (a plot that needs more trials is left out)."""
    import matplotlib.pyplot as plt

    figures: dict[str, Figure] = {}
    for title, plot in optuna_plots().items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna marks its matplotlib backend experimental
            try:
                axes = plot(study)
            except (ValueError, RuntimeError, ZeroDivisionError) as err:
                log.info("Optuna plot %r skipped: %s", title, err)
                continue
        figure = np.atleast_1d(axes).flat[0].figure
        figure.set_size_inches(max(figure.get_size_inches()[0], 7), 4.5)
        plt.close(figure)  # pyplot made it; the caller shows or saves it
        figures[title] = figure
    return figures
