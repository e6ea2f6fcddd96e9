"""The Optuna sweeper's config: Hydra's sweep syntax becomes Optuna distributions, every pruner option
composes, and a direction that contradicts the monitored metric is refused before any trial runs."""

from __future__ import annotations

import re

import pytest
from hydra.core.hydra_config import HydraConfig
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from hydra_plugins.rnnexp_optuna_sweeper.optuna_sweeper import OptunaSweeper
from hydra_plugins.rnnexp_optuna_sweeper.search_space import search_space
from rnnexp.errors import ConfigError
from tests.conftest import compose_config


def test_sweep_syntax_becomes_optuna_distributions_and_the_command_line_wins():
    params = {
        "model": "choice(rnn, lstm)",
        "optimizer.lr": "tag(log, interval(1e-4, 3e-2))",
        "model.dropout": "interval(0.0, 0.4)",
        "model.num_layers": "range(1, 4)",
        "model.hidden_size": "choice(16, 32)",
    }
    space, fixed = search_space(params, ["model.hidden_size=choice(4,8)", "model=gru", "seed=3"])
    assert space["optimizer.lr"] == FloatDistribution(1e-4, 3e-2, log=True)
    assert space["model.dropout"] == FloatDistribution(0.0, 0.4)
    assert space["model.num_layers"] == IntDistribution(1, 3)  # range's stop is excluded, as in a grid
    assert space["model.hidden_size"] == CategoricalDistribution([4, 8])  # replaced by the command line
    assert "model" not in space and fixed == ["model=gru", "seed=3"]  # a plain value pins a searched key


def test_a_sweep_optuna_cannot_sample_is_named():
    with pytest.raises(ConfigError, match=re.escape("model.hidden_size=glob")):
        search_space({"model.hidden_size": "glob(*)"}, [])


@pytest.mark.parametrize(
    ("choice", "target"),
    [
        ("median", "MedianPruner"),
        ("hyperband", "HyperbandPruner"),
        ("successive_halving", "SuccessiveHalvingPruner"),
        ("none", "NopPruner"),
    ],
)
def test_every_pruner_option_composes_with_a_search(choice, target, tmp_path):
    compose_config(["hparams_search=sine_optuna", f"hydra/sweeper/pruner={choice}"], tmp_path)
    assert HydraConfig.get().sweeper.pruner._target_ == f"optuna.pruners.{target}"


def test_a_direction_against_the_monitored_metric_is_refused(tmp_path):
    cfg = compose_config(["hparams_search=sine_optuna"], tmp_path)  # val/mse: lower is better
    sweeper = OptunaSweeper(None, None, "maximize", "s", None, 1, 1, None, None, None)
    with pytest.raises(ConfigError, match=re.escape("set hydra.sweeper.direction=minimize")):
        sweeper.check_options(cfg)
