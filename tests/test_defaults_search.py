"""The search behind char_pairs' defaults (hparams_search=char_pairs_optuna) composes, optimises its metric in
the right direction, and every corner of its space passes the config check (the constant schedule included),
so each trial can start; the dates generator writes a file char_pairs reads."""

from __future__ import annotations

from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

from benchmarks.dates_pairs import date_pairs
from rnnexp.config.checks import check_config
from rnnexp.data.char_pairs import read_pairs
from rnnexp.training import compose_config
from tests.test_sweeps import search_space_corners


def test_char_pairs_search_maximises_exact_match_and_every_corner_passes_the_checks(tmp_path):
    cfg = compose_config(["hparams_search=char_pairs_optuna"], tmp_path)
    sweeper = HydraConfig.get().sweeper
    assert cfg.optimized_metric == "val/exact_match_best" and sweeper.direction == "maximize"
    assert cfg.monitor.mode == "max" and sweeper.sampler.seed == 1234
    params = OmegaConf.to_container(sweeper.params)
    corners = search_space_corners(params)
    assert any("scheduler=constant" in corner for corner in corners)
    for corner in corners:
        check_config(compose_config(["hparams_search=char_pairs_optuna", *corner], tmp_path))


def test_the_constant_schedule_keeps_the_rate(tmp_path):
    import torch
    from hydra.utils import instantiate

    cfg = compose_config(["datamodule=char_pairs", "scheduler=constant"], tmp_path)
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=3e-3)
    scheduler = instantiate(cfg.scheduler)(optimizer=optimizer)
    for _ in range(5):
        optimizer.step()
        scheduler.step()
    assert scheduler.get_last_lr() == [3e-3]


def test_generated_dates_are_distinct_iso_pairs_char_pairs_reads(tmp_path):
    pairs = date_pairs(300, seed=0)
    assert len({source for source, _ in pairs}) == 300
    assert all(len(iso) == 10 and iso[4] == iso[7] == "-" for _, iso in pairs)
    path = tmp_path / "dates.tsv"
    path.write_text("".join(f"{a}\t{b}\n" for a, b in pairs), encoding="utf-8")
    assert read_pairs(path, max_bad_fraction=0.0) == pairs
    assert date_pairs(300, seed=0) == pairs  # the seed fixes the file


def test_searched_datamodule_defaults_compose_and_the_user_or_a_recipe_still_chooses(make_cfg):
    """Issue 23's searched defaults (BENCHMARKS.md "Defaults") reach the composed config, and neither hides
    a choice: a command-line value or a recipe, composed later, wins over them."""
    series, forecast = make_cfg("datamodule=series"), make_cfg("datamodule=series_forecast")
    assert series.scheduler._target_.endswith("StepLR") and series.scheduler.gamma == 1.0
    assert forecast.scheduler._target_.endswith("CosineAnnealingLR") and forecast.datamodule.relative is True
    assert make_cfg("datamodule=series_forecast", "datamodule.relative=false").datamodule.relative is False
    assert make_cfg("datamodule=series", "scheduler=cosine").scheduler._target_.endswith("CosineAnnealingLR")
    adding = make_cfg("datamodule=adding")
    assert adding.optimizer._target_ == "torch.optim.AdamW" and adding.optimizer.lr == 1e-2
    assert make_cfg("datamodule=adding", "optimizer.lr=1e-3").optimizer.lr == 1e-3
    recipe = make_cfg("experiment=adding_problem")
    assert recipe.optimizer._target_ == "torch.optim.Adam" and recipe.optimizer.lr == 1e-3
    assert make_cfg("datamodule=sine").optimizer.lr == 3e-3  # the global rate elsewhere


def test_part_two_defaults_set_model_keys_a_user_or_recipe_still_overrides(make_cfg):
    """The image and text datamodules' searched defaults (BENCHMARKS.md "Second pass") reach the composed
    config, including the model keys two of them set (text_classes: mean pooling; tagging: bidirectional),
    whatever cell is chosen; a command-line value or a recipe still wins."""
    rows, pixels = make_cfg("datamodule=mnist_rows"), make_cfg("datamodule=mnist_pixels")
    assert rows.datamodule.batch_size == 64 and rows.scheduler._target_.endswith("CosineAnnealingLR")
    assert pixels.datamodule.batch_size == 64
    assert make_cfg("datamodule=image_captions").datamodule.batch_size == 128  # the previous default won
    texts = make_cfg("datamodule=text_classes", "model=gru")
    assert texts.model.cell == "gru" and texts.model.pooling == "mean" and texts.datamodule.batch_size == 16
    assert make_cfg("datamodule=text_classes", "model.pooling=last").model.pooling == "last"
    tags = make_cfg("datamodule=tagging")
    assert tags.model.bidirectional is True and tags.datamodule.batch_size == 8
    assert make_cfg("datamodule=tagging", "model.bidirectional=false").model.bidirectional is False
    recipe = make_cfg("experiment=turkish_web_pos")
    assert recipe.datamodule.batch_size == 32 and recipe.model.hidden_size == 64
    assert make_cfg("datamodule=sine").model.pooling == "last"  # the model's own default elsewhere
