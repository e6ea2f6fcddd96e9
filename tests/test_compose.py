"""Every model × datamodule composes from the real configs and runs one fast_dev_run step."""

import pytest

from rnnexp.errors import ConfigError
from rnnexp.tasks import SequenceClassifier, SequenceRegressor
from rnnexp.training import train

MODELS = ["rnn", "lstm", "gru"]
SMALL = ["model.hidden_size=8", "trainer=debug", "callbacks=none"]


def datamodule_overrides(name: str, fake_mnist_root) -> list[str]:
    if name == "mnist_rows":
        root = fake_mnist_root(n_train=40, n_test=16)
        return ["datamodule=mnist_rows", f"datamodule.data_dir={root}", "datamodule.download=false",
                "datamodule.val_size=8", "datamodule.batch_size=8"]  # fmt: skip
    return ["datamodule=sine", "datamodule.num_sequences=32", "datamodule.batch_size=8"]


@pytest.mark.parametrize("datamodule", ["sine", "mnist_rows"])
@pytest.mark.parametrize("model", MODELS)
def test_model_and_datamodule_compose_and_run_a_step(make_cfg, fake_mnist_root, model, datamodule):
    cfg = make_cfg(f"model={model}", *SMALL, *datamodule_overrides(datamodule, fake_mnist_root))
    results, objects = train(cfg)
    assert objects["task"].net.spec.cell == model
    assert objects["trainer"].global_step == 1
    assert results["test"]["test/loss"] > 0


def test_the_datamodule_chooses_the_task_and_what_is_monitored(make_cfg):
    sine, mnist = make_cfg(), make_cfg("datamodule=mnist_rows")
    assert sine.task._target_.endswith("SequenceRegressor") and sine.monitor.mode == "min"
    assert mnist.task._target_.endswith("SequenceClassifier") and mnist.monitor.mode == "max"
    assert mnist.callbacks.model_checkpoint.monitor == "val/acc"
    assert mnist.optimized_metric == "val/acc_best"


def test_defaults_are_an_lstm_on_sine_with_clipping_and_adamw(make_cfg):
    cfg = make_cfg()
    assert cfg.model.cell == "lstm" and cfg.datamodule._target_.endswith("SineWaves")
    assert cfg.trainer.gradient_clip_val == 1.0 and cfg.trainer.gradient_clip_algorithm == "norm"
    assert cfg.optimizer._target_ == "torch.optim.AdamW"
    # sine's measured best is a constant rate (issue 23, BENCHMARKS.md "Defaults"); other datamodules decay it
    assert cfg.scheduler._target_.endswith("StepLR") and cfg.scheduler.gamma == 1.0
    assert make_cfg("datamodule=mnist_rows").scheduler._target_.endswith("CosineAnnealingLR")
    # sine_forecast's measured best is cosine decay (BENCHMARKS.md "sine_forecast")
    assert make_cfg("datamodule=sine_forecast").scheduler._target_.endswith("CosineAnnealingLR")
    assert make_cfg("scheduler=cosine").scheduler._target_.endswith(
        "CosineAnnealingLR"
    )  # the user still chooses
    assert "scheduler" not in make_cfg("~scheduler")


@pytest.mark.parametrize(
    "override",
    ["model.hidden_size=0", "model.dropout=1.5", "model.nonlinearity=relu", "model.cell=transformer"],
)
def test_bad_model_values_fail_before_any_data_is_read(make_cfg, tmp_path, override):
    # The MNIST files do not exist and download is off: reaching the data would raise DataError instead.
    cfg = make_cfg("datamodule=mnist_rows", f"datamodule.data_dir={tmp_path}/none", "datamodule.download=false",
                   override)  # fmt: skip
    with pytest.raises(ConfigError, match=override.split("=")[0].replace(".", r"\.")):
        train(cfg)


def test_the_built_task_matches_the_datamodule(make_cfg, fake_mnist_root):
    root = fake_mnist_root(n_train=40, n_test=16)
    cfg = make_cfg("datamodule=mnist_rows", f"datamodule.data_dir={root}", "datamodule.val_size=8",
                   "model=gru", "model.pooling=mean", *SMALL)  # fmt: skip
    _, objects = train(cfg)
    task = objects["task"]
    assert isinstance(task, SequenceClassifier)
    assert (task.net.rnn.input_size, task.net.head.out_features) == (28, 10)  # sizes from the data
    sine_task = train(make_cfg(*SMALL, "datamodule.num_sequences=16"))[1]["task"]
    assert isinstance(sine_task, SequenceRegressor) and sine_task.net.per_step


def test_gpu_trainer_asks_for_bf16_and_falls_back_to_fp16_where_the_gpu_lacks_it(make_cfg):
    from rnnexp.training import supported_precision

    cfg = make_cfg("trainer=gpu")
    assert cfg.trainer.accelerator == "gpu" and cfg.trainer.precision == "bf16-mixed"
    assert supported_precision("bf16-mixed", "gpu", bf16_supported=True) == "bf16-mixed"
    assert supported_precision("bf16-mixed", "gpu", bf16_supported=False) == "16-mixed"
    assert supported_precision("32-true", "gpu", bf16_supported=False) == "32-true"
    assert (
        supported_precision("bf16-mixed", "cpu", bf16_supported=False) == "bf16-mixed"
    )  # CPU autocast has bf16
