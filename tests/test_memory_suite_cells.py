"""Every task of the long-range memory suite takes every cell of the `model` group (each YAML in conf/model,
so cells added later are covered): the composed run builds, and one training step gives a finite loss and a
gradient for every parameter. Its recipes and searches compose and pass the config checks."""

import pytest
import torch

from rnnexp.config.checks import check_config
from rnnexp.training import build_experiment
from tests.conftest import ROOT

CELLS = sorted(path.stem for path in (ROOT / "conf" / "model").glob("*.yaml"))
SMALL = {
    "adding": ["datamodule.seq_len=12", "datamodule.train_size=8", "datamodule.val_size=4",
               "datamodule.test_size=4", "datamodule.batch_size=4"],
    "copy_memory": ["datamodule.delay=5", "datamodule.length=3", "datamodule.train_size=8",
                    "datamodule.val_size=4", "datamodule.test_size=4", "datamodule.batch_size=4"],
    "mnist_pixels": ["datamodule.download=false", "datamodule.val_size=4", "datamodule.batch_size=4",
                     "datamodule.downsample=7", "datamodule.permute=true"],
}  # fmt: skip


@pytest.mark.parametrize("datamodule", sorted(SMALL))
@pytest.mark.parametrize("cell", CELLS)
def test_every_cell_trains_on_every_memory_task(datamodule, cell, make_cfg, fake_mnist_root):
    extra = (
        [f"datamodule.data_dir={fake_mnist_root(n_train=12, n_test=4)}"]
        if datamodule == "mnist_pixels"
        else []
    )
    cfg = make_cfg(
        f"datamodule={datamodule}", f"model={cell}", "model.hidden_size=8", *SMALL[datamodule], *extra
    )
    experiment = build_experiment(cfg)
    dm, task = experiment.datamodule, experiment.task
    dm.setup("fit")
    batch = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
    loss = task.training_step(batch, 0)  # the training step returns the loss alone
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None for p in task.parameters() if p.requires_grad)


RECIPES = {
    "experiment=adding_problem": "AddingProblem",
    "experiment=copy_memory": "CopyMemory",
    "experiment=pixel_mnist": "MnistPixels",
    "experiment=permuted_pixel_mnist": "MnistPixels",
    "hparams_search=adding_optuna": "AddingProblem",
    "hparams_search=copy_memory_optuna": "CopyMemory",
    "hparams_search=mnist_pixels_optuna": "MnistPixels",
}


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_recipes_and_searches_compose_and_pass_the_checks(recipe, make_cfg):
    cfg = make_cfg(recipe)
    check_config(cfg)
    assert cfg.datamodule._target_.endswith(RECIPES[recipe])
    if recipe.startswith("experiment"):
        assert cfg.callbacks.get("early_stopping") is None  # a plateau at the baseline is not convergence
    assert cfg.get("datamodule").get("permute", False) == recipe.endswith("permuted_pixel_mnist")
