"""Every series recipe (conf/experiment) composes and reads the real data that aeon or statsmodels ships,
with the archive's split sizes; the two series searches compose with a recipe."""

from __future__ import annotations

import pytest

from rnnexp.training import instantiate
from tests.conftest import compose_config

# recipe: (train, test) series for classification; None for forecasting
RECIPES = {
    "gunpoint": (50, 150, 1, 2),
    "italy_power_demand": (67, 1029, 1, 2),
    "arrowhead": (36, 175, 1, 3),
    "basic_motions": (40, 40, 6, 4),
    "japanese_vowels": (270, 370, 12, 9),
    "pickup_gesture": (50, 50, 1, 10),
}


@pytest.mark.parametrize("name", RECIPES)
def test_classification_recipe_reads_the_archive_split(name, tmp_path):
    cfg = compose_config([f"experiment={name}"], tmp_path)
    datamodule = instantiate(cfg.datamodule)
    datamodule.setup("fit")
    train, test, channels, classes = RECIPES[name]
    sizes = {split: len(datamodule.datasets[split]) for split in ("train", "val", "test")}
    assert sizes["train"] + sizes["val"] == train and sizes["test"] == test
    assert datamodule.input_size == channels and datamodule.output_size == classes
    variable = len(datamodule.datasets["test"].tensors) == 3
    assert variable == (name in ("japanese_vowels", "pickup_gesture"))


@pytest.mark.parametrize("name", ["airline_forecast", "co2_forecast"])
def test_forecast_recipe_reads_its_series(name, tmp_path):
    cfg = compose_config([f"experiment={name}"], tmp_path)
    datamodule = instantiate(cfg.datamodule)
    datamodule.setup("fit")
    assert cfg.task.season == cfg.datamodule.season
    context, future = datamodule.datasets["test"].tensors
    assert context.shape[1:] == (cfg.datamodule.seq_len, 1) and future.shape[1:] == (
        cfg.datamodule.horizon,
        1,
    )
    assert not context.isnan().any()


@pytest.mark.parametrize(
    "recipe, search",
    [("airline_forecast", "series_forecast_optuna"), ("gunpoint", "series_classification_optuna")],
)
def test_series_searches_compose_with_a_recipe(recipe, search, tmp_path):
    cfg = compose_config([f"experiment={recipe}", f"hparams_search={search}"], tmp_path)
    assert cfg.datamodule.path.startswith("aeon:")
