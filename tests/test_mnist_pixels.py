"""Sequential MNIST: the IDX images of mnist_rows read one pixel per step in scan-line order, downsampled on
request, and in a permuted order fixed by its seed that a checkpoint keeps."""

import pytest
import torch
from torch.nn import functional as F

from rnnexp.data.mnist_pixels import MnistPixels, pixel_permutation
from rnnexp.errors import ConfigError
from rnnexp.lifecycle.checkpoint import read_checkpoint
from rnnexp.training import train


def loaded(root, **kwargs) -> MnistPixels:
    dm = MnistPixels(data_dir=str(root), download=False, val_size=10, batch_size=16, **kwargs)
    dm.setup("fit")
    return dm


def first_batch(dm: MnistPixels, split: str = "val") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(raw uint8 images, pixel sequences, labels)`` of a split's first batch."""
    images, labels = next(iter(dm.val_dataloader() if split == "val" else dm.test_dataloader()))
    sequences, same_labels = dm.on_after_batch_transfer((images, labels), 0)
    assert torch.equal(same_labels, labels)
    return images, sequences, labels


def test_pixels_are_read_one_per_step_in_scan_line_order(fake_mnist_root):
    dm = loaded(fake_mnist_root(n_train=60, n_test=20))
    images, sequences, _ = first_batch(dm)
    assert sequences.shape == (10, 784, 1) and dm.steps == 784
    torch.testing.assert_close(sequences[:, :, 0], dm.standardise(images).flatten(1))
    torch.testing.assert_close(sequences[3, 28 * 5 + 7, 0], dm.standardise(images)[3, 5, 7])  # row 5, col 7


def test_downsample_average_pools_before_reading(fake_mnist_root):
    dm = loaded(fake_mnist_root(n_train=60, n_test=20), downsample=4)
    images, sequences, _ = first_batch(dm, "test")
    assert sequences.shape == (16, 49, 1) and dm.steps == 49
    pooled = F.avg_pool2d(dm.standardise(images).unsqueeze(1), 4).flatten(1)
    torch.testing.assert_close(sequences[:, :, 0], pooled)


def test_the_permutation_is_fixed_by_its_seed_and_reorders_every_image_alike(fake_mnist_root):
    root = fake_mnist_root(n_train=60, n_test=20)
    plain, a, b, other = (
        loaded(root),
        loaded(root, permute=True, permute_seed=3),
        loaded(root, permute=True, permute_seed=3),
        loaded(root, permute=True, permute_seed=4),
    )
    assert torch.equal(a.permutation, b.permutation) and not torch.equal(a.permutation, other.permutation)
    assert torch.equal(a.permutation.sort().values, torch.arange(784))  # a permutation, nothing lost
    _, ordered, _ = first_batch(plain)
    _, permuted, _ = first_batch(a)
    torch.testing.assert_close(permuted, ordered[:, a.permutation])
    assert plain.state_dict() == {}  # nothing to keep without a permutation


def test_the_permutation_survives_a_checkpoint(fake_mnist_root, make_cfg):
    root = fake_mnist_root(n_train=80, n_test=16)
    cfg = make_cfg(
        "datamodule=mnist_pixels",
        f"datamodule.data_dir={root}",
        "datamodule.download=false",
        "datamodule.val_size=16",
        "datamodule.batch_size=16",
        "datamodule.permute=true",
        "datamodule.permute_seed=5",
        "datamodule.downsample=7",  # 16 steps: a fast run
        "model=gru",
        "model.hidden_size=8",
        "trainer.max_steps=2",
        "trainer.log_every_n_steps=1",
        "trainer.enable_model_summary=false",
        "~callbacks.progress_bar",
        "test=false",
        "num_threads=1",
    )
    results, objects = train(cfg)
    checkpoint = read_checkpoint(results["best_ckpt_path"])  # weights_only: plain tensors and ints
    stored = checkpoint["MnistPixels"]
    assert torch.equal(stored["permutation"], pixel_permutation(16, 5)) and stored["permute_seed"] == 5

    # Another seed in the config: the checkpoint's order wins when Lightning restores the run.
    later = loaded(root, permute=True, permute_seed=6, downsample=7)
    assert not torch.equal(later.permutation, stored["permutation"])
    trainer = objects["trainer"]
    trainer.test(objects["task"], datamodule=later, ckpt_path=results["best_ckpt_path"], weights_only=True)
    assert torch.equal(later.permutation, stored["permutation"])

    # A config that cannot hold it is refused by name.
    with pytest.raises(ConfigError, match=r"datamodule\.permute=False"):
        loaded(root, downsample=7).load_state_dict(stored)
    with pytest.raises(ConfigError, match=r"datamodule\.downsample=4"):
        loaded(root, permute=True, downsample=4).load_state_dict(stored)


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [({"downsample": 3}, "datamodule.downsample=3"), ({"permute": "yes"}, "datamodule.permute='yes'")],
)
def test_bad_values_name_their_key(kwargs, key):
    with pytest.raises(ConfigError, match=key):
        MnistPixels(**kwargs)
