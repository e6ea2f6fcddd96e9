"""A value that would have no effect is refused with its reason, or acts; never recorded as if it acted
(rnnexp.config.inert_values). The refusals themselves are rows of tests/test_checked_values.py's table; here:
the same keys act where their condition holds, every recipe and search still composes and passes, and the
Optuna sweeper does not draw a key that could not act."""

import json
from pathlib import Path

import optuna
import pytest
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import OmegaConf

from rnnexp.config.checks import check_config
from rnnexp.config.inert_values import RULES, inert_keys, neutral_value, unused_keys
from rnnexp.errors import ConfigError
from rnnexp.models.recurrent import build_recurrent_layer
from rnnexp.sweeps.jobs import drawn_overrides
from rnnexp.sweeps.records import load_sweep
from tests.conftest import ROOT
from tests.sweep_runs import TINY_SINE, run_cli
from tests.test_sweeps import search_space_corners

# Each compose takes about a second on the busy machine: the configs that hold the keys the rules watch
# (dropout with stacked layers, mean pooling, a pooling search) run by default, the rest with -m slow.
QUICK = {"shakespeare_char_lstm", "arrowhead", "sine_optuna", "text_classes_optuna"}


def configs(folder: str) -> list:
    names = sorted(p.stem for p in (ROOT / "conf" / folder).glob("*.yaml"))
    return [pytest.param(n, marks=() if n in QUICK else pytest.mark.slow) for n in names]


EXPERIMENTS, SEARCHES = configs("experiment"), configs("hparams_search")


def test_the_issue_example_is_refused_and_acts_with_two_layers(make_cfg):
    cfg = make_cfg("model=lstm", "model.num_layers=1", "model.dropout=0.5")
    with pytest.raises(
        ConfigError, match=r"model\.dropout=0\.5 has no effect.*model\.num_layers is 1"
    ) as err:
        check_config(cfg)
    assert "Fix: set model.num_layers>=2, or model.dropout=0." in str(err.value)
    cfg = make_cfg("model=lstm", "model.num_layers=2", "model.dropout=0.5")
    check_config(cfg)
    layer = build_recurrent_layer(instantiate(cfg.model), input_size=1)
    assert isinstance(layer, torch.nn.LSTM) and layer.dropout == 0.5  # it acts: torch drops between layers


@pytest.mark.parametrize(
    "overrides",
    [
        ["model=rnn", "model.nonlinearity=relu"],  # the fused rnn takes it
        ["datamodule=adding", "model.pooling=mean"],  # one target per sequence: pooled
        ["trainer.gradient_clip_val=0.5", "trainer.gradient_clip_algorithm=value"],
        ["optimizer=sgd", "optimizer.momentum=0.9", "+optimizer.nesterov=true"],
        ["optimizer=sgd", "optimizer.momentum=0.9", "+optimizer.dampening=0.1"],
        ["scheduler=constant", "scheduler.gamma=0.5", "scheduler.step_size=5"],
        ["datamodule=text", "task.sample_length=50", "task.sample_top_k=5", "task.sample_prompt=ROMEO"],
    ],
)
def test_each_key_is_accepted_where_it_acts(make_cfg, overrides):
    check_config(make_cfg(*overrides))


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_recipe_composes_and_holds_no_value_without_effect(make_cfg, name):
    cfg = make_cfg(f"experiment={name}")
    assert [rule.key for rule in inert_keys(cfg)] == []
    check_config(cfg)


@pytest.mark.parametrize("name", SEARCHES)
def test_every_search_corner_runs_once_the_sweeper_leaves_out_what_cannot_act(make_cfg, name):
    """What the sweeper does per trial: compose the drawn keys, ask which searched keys could not act, run
    them at their neutral value. Every corner of every search then passes the checks (no trial refused)."""
    make_cfg(f"hparams_search={name}")
    params = OmegaConf.to_container(HydraConfig.get().sweeper.params)
    for corner in search_space_corners(params):
        conditional = [o.split("=")[0] for o in corner if o.split("=")[0] in {r.key for r in RULES}]
        others = [o for o in corner if o.split("=")[0] not in conditional]
        unused = unused_keys(make_cfg(f"hparams_search={name}", *others), conditional)
        pinned = [f"{k}={neutral_value(k)}" for k in unused]
        pinned += [o for o in corner if o.split("=")[0] in conditional and o.split("=")[0] not in unused]
        check_config(make_cfg(f"hparams_search={name}", *others, *pinned))
        if "model.num_layers=1" in corner and "model.dropout" in conditional:
            assert "model.dropout" in unused


def test_a_trial_that_did_not_draw_a_key_shows_it_blank():
    overrides = ["model=lstm", "model.num_layers=1", "model.dropout=0.0", "optuna_trial.number=3",
                 "optuna_trial.not_drawn=[model.dropout]", "optimizer.lr=0.01"]  # fmt: skip
    assert drawn_overrides(overrides) == ["model=lstm", "model.num_layers=1", "optimizer.lr=0.01"]


@pytest.mark.slow  # a real search: four `train.py` trials (~1 min on 2 busy cores)
def test_a_search_does_not_draw_dropout_for_one_layer_trials(tmp_path):
    """sine_optuna's num_layers x dropout, seeded so that both depths come up: one-layer trials run with
    dropout 0, their Optuna params have no dropout, and the sweep's tables show it blank; two-layer trials
    draw it and run with the drawn value."""
    sweep_dir = tmp_path / "sweep"
    proc = run_cli(
        "-m", "hparams_search=sine_optuna", "hydra.sweeper.n_trials=4", "hydra.sweeper.params=null",
        "model=lstm", "model.num_layers=choice(1,2)", "model.dropout=interval(0.1,0.4)",
        "hydra.sweeper.sampler.seed=3", "trainer.max_epochs=1", *TINY_SINE, f"hydra.sweep.dir={sweep_dir}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    study = optuna.load_study(study_name="sine_optuna", storage=f"sqlite:///{sweep_dir / 'optuna.db'}")
    runs = load_sweep(sweep_dir).set_index("job")
    depths = set()
    for trial in study.trials:
        assert trial.state == optuna.trial.TrialState.COMPLETE
        depth = trial.params["model.num_layers"]
        depths.add(depth)
        ran = OmegaConf.load(sweep_dir / str(trial.number) / "config.yaml").model.dropout
        row = runs.loc[str(trial.number)]
        if depth == 1:
            assert "model.dropout" not in trial.params and ran == 0.0
            assert row["model.dropout"] != row["model.dropout"]  # NaN: not drawn, shown blank
        else:
            assert 0.1 <= trial.params["model.dropout"] <= 0.4 and ran == trial.params["model.dropout"]
            assert row["model.dropout"] == ran
        assert json.loads((Path(row["run_dir"]) / "results.json").read_text())["status"] == "completed"
    assert depths == {1, 2}
    assert "Traceback" not in proc.stdout + proc.stderr
