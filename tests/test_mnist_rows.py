"""MnistRows: reads the real IDX format (gz or extracted) through torchvision, keeps uint8 tensors, and
says what to do when files are missing or broken."""

import gzip
import shutil

import pytest
import torch

from rnnexp.data import MnistRows
from rnnexp.errors import ConfigError, DataError


def test_reads_extracted_idx_files_into_uint8_tensors(fake_mnist_root):
    root = fake_mnist_root(n_train=120, n_test=30)
    dm = MnistRows(data_dir=str(root), download=False, val_size=20, batch_size=32)
    dm.setup("fit")
    images, labels = dm.datasets["train"].tensors
    assert images.shape == (100, 28, 28) and images.dtype == torch.uint8  # stored as bytes
    assert len(dm.datasets["val"]) == 20 and len(dm.datasets["test"]) == 30
    assert labels.dtype == torch.long and labels.min() >= 0 and labels.max() <= 9


def test_batches_become_standardised_rows_on_the_device(fake_mnist_root):
    dm = MnistRows(data_dir=str(fake_mnist_root(n_train=200)), download=False, val_size=10, batch_size=64)
    dm.setup("fit")
    pixels = torch.cat([dm.on_after_batch_transfer(b, 0)[0] for b in dm.train_dataloader()])
    assert pixels.shape == (190, 28, 28) and pixels.dtype == torch.float32  # (batch, time=rows, features)
    assert pixels.mean().item() == pytest.approx(0.0, abs=1e-4)
    assert pixels.std().item() == pytest.approx(1.0, abs=1e-3)


def test_gzipped_files_are_extracted_first(fake_mnist_root):
    root = fake_mnist_root(n_train=50, n_test=10, folder="FashionMNIST")
    raw = root / "FashionMNIST" / "raw"
    for path in list(raw.iterdir()):
        with open(path, "rb") as src, gzip.open(f"{path}.gz", "wb") as dst:
            shutil.copyfileobj(src, dst)
        path.unlink()
    dm = MnistRows(variant="fashion", data_dir=str(root), download=False, val_size=10)
    dm.setup("fit")
    assert len(dm.datasets["train"]) == 40
    assert dm.class_names[0] == "T-shirt/top"


def test_missing_files_without_download_say_where_to_put_them(tmp_path):
    dm = MnistRows(variant="fashion", data_dir=str(tmp_path), download=False)
    with pytest.raises(DataError) as err:
        dm.prepare_data()
    message = str(err.value)
    assert str(tmp_path / "FashionMNIST" / "raw") in message
    assert "train-images-idx3-ubyte" in message and "dataset-fashion-mnist" in message


def test_truncated_file_is_named(fake_mnist_root):
    root = fake_mnist_root(n_train=50, n_test=10)
    images = root / "MNIST" / "raw" / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:1000])
    with pytest.raises(DataError, match="MNIST/raw"):
        MnistRows(data_dir=str(root), download=False, val_size=5).setup("fit")


def test_val_size_larger_than_the_data_is_a_config_error(fake_mnist_root):
    dm = MnistRows(data_dir=str(fake_mnist_root(n_train=30)), download=False, val_size=30)
    with pytest.raises(ConfigError, match=r"datamodule\.val_size"):
        dm.setup("fit")


def test_unknown_variant_names_the_choices():
    with pytest.raises(ConfigError, match=r"datamodule\.variant='emnist'.*fashion"):
        MnistRows(variant="emnist")
