"""Sweeps and runs that several test modules review: made once per pytest session, by the real CLI.

Not a conftest fixture on purpose: a module-level cache lets test_sweeps, test_review and test_notebooks
share one grid sweep without touching the shared conftest.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from rnnexp.training import train
from tests.conftest import bar_images, compose_config, run_cli, write_idx

# Two training batches and one validation/test batch of short sine sequences: a job takes about a second.
TINY_SINE = [
    "datamodule=sine",
    "datamodule.num_sequences=64",
    "datamodule.seq_len=16",
    "datamodule.batch_size=16",
    "model.hidden_size=8",
    "+trainer.limit_train_batches=2",
    "+trainer.limit_val_batches=1",
    "+trainer.limit_test_batches=1",
    "trainer.enable_model_summary=false",
    "callbacks.progress_bar=null",
    "print_config=false",
]
# optimizer.lr=1e30 throws the weights so far that the next loss is inf: NonFiniteLossGuard raises
# TrainingError, the way a real divergence does.
GRID = ["model=rnn,gru", "optimizer.lr=0.003,1e30", "trainer.max_epochs=2"]

_made: dict[str, Path] = {}


def grid_sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    """``-m model=rnn,gru optimizer.lr=0.003,1e30``: four jobs, the two with lr=1e30 fail."""
    if "grid" not in _made:
        sweep_dir = tmp_path_factory.mktemp("grid") / "sweep"
        proc = run_cli(*["-m", *GRID, *TINY_SINE, f"hydra.sweep.dir={sweep_dir}"])
        _made["grid"], _made["grid_proc"] = sweep_dir, proc  # type: ignore[assignment]
    return _made["grid"], _made["grid_proc"]  # type: ignore[return-value]


def mnist_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A classifier trained a few steps on tiny IDX files (the conftest's bar images) in the real format."""
    if "mnist" not in _made:
        base = tmp_path_factory.mktemp("mnist")
        for prefix, count, seed in (("train", 192, 0), ("t10k", 48, 1)):
            images, labels = bar_images(count, seed)
            write_idx(base / "data" / "MNIST" / "raw" / f"{prefix}-images-idx3-ubyte", images)
            write_idx(base / "data" / "MNIST" / "raw" / f"{prefix}-labels-idx1-ubyte", labels)
        cfg = compose_config(
            ["datamodule=mnist_rows", f"datamodule.data_dir={base / 'data'}", "datamodule.download=false",
             "datamodule.val_size=32", "datamodule.batch_size=32", "model.hidden_size=16",
             "trainer.max_epochs=2", "callbacks.progress_bar=null", "trainer.enable_model_summary=false"],
            base / "run",
        )  # fmt: skip
        train(cfg)
        _made["mnist"] = base / "run"
    return _made["mnist"]


def text_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A character model trained a few steps on a small corpus."""
    if "text" not in _made:
        base = tmp_path_factory.mktemp("text")
        corpus = base / "corpus.txt"
        corpus.write_text("the cat sat on the mat. the dog ran to the ball.\n" * 40, encoding="utf-8")
        cfg = compose_config(
            ["datamodule=text", f"datamodule.path={corpus}", "datamodule.batch_size=4", "datamodule.seq_len=16",
             "model.hidden_size=16", "task.embedding_dim=8", "task.sample_length=20", "trainer.max_epochs=1",
             "callbacks.progress_bar=null", "trainer.enable_model_summary=false"],
            base / "run",
        )  # fmt: skip
        train(cfg)
        _made["text"] = base / "run"
    return _made["text"]


def sine_mode_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A stateful sine run (tbptt streams) and a forecasting run, each a few steps on tiny data."""
    if "streams" not in _made:
        base = tmp_path_factory.mktemp("sine_modes")
        small = ["datamodule.num_sequences=64", "datamodule.seq_len=16", "datamodule.batch_size=8",
                 "model.hidden_size=8", "trainer.max_epochs=1", "callbacks.progress_bar=null",
                 "trainer.enable_model_summary=false", "task.log_figures=false"]  # fmt: skip
        train(compose_config(["datamodule.tbptt=true", *small], base / "streams"))
        train(compose_config(["datamodule=sine_forecast", "datamodule.horizon=5", *small], base / "forecast"))
        _made["streams"], _made["forecast"] = base / "streams", base / "forecast"
    return _made["streams"], _made["forecast"]
