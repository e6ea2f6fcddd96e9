"""Shared fixtures: compose the real configs, and write small datasets in the real file formats."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import DictConfig

from rnnexp.data.mnist_rows import write_idx
from rnnexp.training import compose_config

ROOT = Path(__file__).resolve().parents[1]

os.environ.setdefault("WANDB_MODE", "offline")


@pytest.fixture(autouse=True)
def keep_torch_threads():
    """A test that sets torch's thread count (the benchmarks do) must not change later tests: in-process
    results are compared bit for bit with subprocess runs, and the reduction order follows the threads."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def make_cfg(tmp_path: Path) -> Callable[..., DictConfig]:
    """``make_cfg("model=gru", ...)``: a composed config writing into this test's tmp_path."""

    def make(*overrides: str) -> DictConfig:
        return compose_config(list(overrides), tmp_path / "run")

    return make


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python train.py <args>`` from the repository root, offline, as a user types it."""
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "train.py", *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def bar_images(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A row-image task an RNN must remember across rows: class k lights up row 4 + 2k, plus noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=count)
    images = rng.integers(0, 60, size=(count, 28, 28))
    images[np.arange(count), 4 + 2 * labels, :] = 255
    return images.astype(np.uint8), labels.astype(np.uint8)


@pytest.fixture
def fake_mnist_root(tmp_path: Path) -> Callable[..., Path]:
    """``fake_mnist_root(n_train, n_test, variant_folder="MNIST")``: a torchvision root of tiny IDX files."""

    def make(n_train: int = 256, n_test: int = 64, folder: str = "MNIST", seed: int = 0) -> Path:
        root = tmp_path / "data"
        raw = root / folder / "raw"
        for prefix, count, split_seed in (("train", n_train, seed), ("t10k", n_test, seed + 1)):
            images, labels = bar_images(count, split_seed)
            write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
            write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
        return root

    return make
