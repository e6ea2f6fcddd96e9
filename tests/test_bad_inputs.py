"""Bad inputs fail with one paragraph naming the file and the problem: corrupt or truncated IDX files, a
checkpoint from another model config or a broken one; a NaN loss stops (or, if configured, skips the step)
naming the step, the loss and the last gradient norm, and keeps the last good checkpoint."""

import gzip
import math

import pytest
import torch

from rnnexp.data import MnistRows
from rnnexp.errors import ConfigError, DataError, TrainingError
from rnnexp.lifecycle.checkpoint import read_checkpoint
from rnnexp.lifecycle.non_finite import NonFiniteLossGuard
from rnnexp.training import train
from tests.resilience import fault

QUICK = ["datamodule.num_sequences=80", "datamodule.batch_size=8", "model.hidden_size=8", "trainer.max_epochs=1",
         "task.log_figures=false", "~callbacks.progress_bar", "+trainer.enable_progress_bar=false",
         "trainer.enable_model_summary=false", "test=false"]  # fmt: skip


def mnist(root) -> MnistRows:
    return MnistRows(data_dir=str(root), download=False, val_size=5)


def test_a_truncated_idx_file_is_named_with_the_sizes(fake_mnist_root):
    images = fake_mnist_root(n_train=50, n_test=10) / "MNIST" / "raw" / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:1000])
    with pytest.raises(DataError) as err:
        mnist(images.parents[2]).setup("fit")
    message = str(err.value)
    assert f"{images} is truncated" in message and "shape (50, 28, 28)" in message and "has 1000" in message
    assert "\n" not in message


def test_a_file_that_is_not_idx_is_named(fake_mnist_root):
    labels = fake_mnist_root(n_train=50, n_test=10) / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    labels.write_bytes(b"<!DOCTYPE html><html>rate limited</html>")  # what a failed download may leave
    with pytest.raises(DataError, match=rf"{labels} is not an IDX file .*'<!DO'"):
        mnist(labels.parents[2]).setup("fit")


def test_a_corrupt_gzip_is_named_and_leaves_no_half_file(fake_mnist_root):
    raw = fake_mnist_root(n_train=50, n_test=10) / "MNIST" / "raw"
    target = raw / "train-labels-idx1-ubyte"
    packed = raw / "train-labels-idx1-ubyte.gz"
    packed.write_bytes(gzip.compress(target.read_bytes())[:20])  # cut off mid-stream
    target.unlink()
    with pytest.raises(DataError, match=rf"{packed} is not a complete gzip file"):
        mnist(raw.parents[1]).setup("fit")
    assert not target.exists()


def test_a_checkpoint_of_another_model_config_names_the_file_and_the_keys(make_cfg, tmp_path):
    results, _ = train(make_cfg(*QUICK, "model=gru"))
    checkpoint = results["best_ckpt_path"]
    with pytest.raises(DataError) as err:
        train(make_cfg(*QUICK, "model=lstm", "model.hidden_size=16", f"ckpt_path={checkpoint}"))
    message = str(err.value)
    assert message.startswith(f"Checkpoint {checkpoint} does not fit the configured model")
    assert "model.cell is 'gru' in the checkpoint but 'lstm' in the config" in message
    assert "model.hidden_size is 8 in the checkpoint but 16 in the config" in message


def test_a_broken_checkpoint_file_is_named(tmp_path):
    broken = tmp_path / "last.ckpt"
    torch.save({"state_dict": {}}, broken)
    broken.write_bytes(broken.read_bytes()[:50])
    with pytest.raises(DataError, match=rf"Checkpoint {broken} cannot be read"):
        read_checkpoint(broken)


def test_a_checkpoint_with_code_in_it_is_refused(tmp_path):
    # weights_only loading refuses a pickle that names a function (a malicious one would name os.system).
    unsafe = tmp_path / "unsafe.ckpt"
    torch.save({"rnnexp": {}, "hook": math.sqrt}, unsafe)
    with pytest.raises(DataError, match=rf"Checkpoint {unsafe} cannot be read"):
        read_checkpoint(unsafe)


def test_a_nan_loss_stops_naming_step_loss_and_grad_norm_and_keeps_the_last_good_checkpoint(make_cfg):
    cfg = make_cfg(
        *QUICK, "callbacks.step_checkpoint.every_n_train_steps=2", *fault("PoisonBatch", steps=[5])
    )
    with pytest.raises(TrainingError) as err:
        train(cfg)
    message = str(err.value)
    assert "The training loss became nan at global step 5 (epoch 0)" in message
    assert "the gradient norm before clipping at the previous step was" in message and "n/a" not in message
    kept = message.split("The newest checkpoint, written before this step, is ")[1].split(". ")[0]
    assert kept.endswith("step0000004.ckpt")
    weights = read_checkpoint(kept)["state_dict"]
    assert all(torch.isfinite(w).all() for w in weights.values())


def test_skip_mode_drops_the_bad_steps_and_finishes(make_cfg):
    cfg = make_cfg(*QUICK, "callbacks.non_finite_loss.action=skip", *fault("PoisonBatch", steps=[2, 5]))
    with pytest.warns(
        UserWarning, match=r"loss became nan at global step 5 .*Skipped this update \(2 skipped"
    ):
        results, objects = train(cfg)
    assert results["train"]["train/skipped_steps"] == 2.0
    assert math.isfinite(results["val"]["val/loss"])
    assert all(torch.isfinite(p).all() for p in objects["task"].parameters())


def test_skip_mode_still_stops_when_every_step_is_bad(make_cfg):
    cfg = make_cfg(*QUICK, "callbacks.non_finite_loss.action=skip", "callbacks.non_finite_loss.max_consecutive_skips=2",
                   *fault("PoisonBatch", steps=[1, 2, 3, 4]))  # fmt: skip
    with pytest.raises(
        TrainingError, match=r"global step 3 .*3 non-finite steps in a row .*max_consecutive_skips=2"
    ):
        train(cfg)


def test_an_unknown_action_names_the_key():
    with pytest.raises(ConfigError, match=r"callbacks\.non_finite_loss\.action='ignore'"):
        NonFiniteLossGuard(action="ignore")
