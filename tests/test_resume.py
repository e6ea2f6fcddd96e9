"""Resuming: `ckpt_path=last` finds the run's newest checkpoint, the batch order continues mid-epoch, and a
run killed with SIGKILL mid-epoch ends bit-identical to one that was never interrupted."""

import csv
import json
import os
from pathlib import Path

import pytest
import torch

from rnnexp.data.batching import EpochBatchSampler
from rnnexp.errors import ConfigError
from rnnexp.lifecycle.resume import config_changes, resolve_ckpt_path
from rnnexp.training import train
from tests.conftest import compose_config
from tests.resilience import TINY_RUN, fault, reference_run, run_cli, same_results


def csv_rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "csv" / "metrics.csv", newline="") as file:
        return list(csv.DictReader(file))


def touch(path: Path, mtime: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    os.utime(path, ns=(mtime, mtime))
    return path


def test_last_is_the_newest_checkpoint_of_the_run_directory(tmp_path):
    touch(tmp_path / "checkpoints" / "epoch003.ckpt", 2_000)
    newest = touch(tmp_path / "checkpoints" / "step0000450.ckpt", 3_000)
    touch(tmp_path / "checkpoints" / "last.ckpt", 1_000)
    assert resolve_ckpt_path("last", tmp_path) == newest
    assert resolve_ckpt_path(str(tmp_path), tmp_path / "elsewhere") == newest  # a run directory works too
    assert resolve_ckpt_path(None, tmp_path) is None


def test_last_without_a_checkpoint_says_which_directory_to_pass(tmp_path):
    with pytest.raises(ConfigError, match=r"ckpt_path=last.*has no checkpoint.*hydra\.run\.dir="):
        resolve_ckpt_path("last", tmp_path)
    assert resolve_ckpt_path("last", tmp_path, multirun=True) is None  # a sweep job that never started
    with pytest.raises(ConfigError, match=r"ckpt_path=nowhere\.ckpt does not exist"):
        resolve_ckpt_path("nowhere.ckpt", tmp_path)


def test_the_sampler_resumes_mid_epoch_with_the_batches_that_were_left():
    sampler = EpochBatchSampler(size=50, batch_size=8, shuffle=True, seed=3)
    sampler.set_epoch(2)
    full = [batch.tolist() for batch in sampler]
    sampler.set_epoch(2)
    iterator = iter(sampler)
    _ = [next(iterator) for _ in range(3)]
    state = sampler.state_dict()
    assert state == {"seed": 3, "epoch": 2, "batches_done": 3}

    torch.rand(100)  # the order must not depend on torch's global generator
    resumed = EpochBatchSampler(size=50, batch_size=8, shuffle=True, seed=0)
    resumed.load_state_dict(state)
    resumed.set_epoch(2)
    assert [batch.tolist() for batch in resumed] == full[3:]
    resumed.set_epoch(3)  # the skip applies to the interrupted epoch only
    assert len(list(resumed)) == len(full) == 7
    assert [batch.tolist() for batch in resumed] != full  # another epoch, another permutation


def test_config_changes_lists_what_differs_from_the_interrupted_run(make_cfg, tmp_path):
    from omegaconf import OmegaConf

    OmegaConf.save(make_cfg("optimizer.lr=0.001"), tmp_path / "config.yaml", resolve=True)
    changes = config_changes(tmp_path / "config.yaml", make_cfg("optimizer.lr=0.002", "ckpt_path=last"))
    assert changes == ["optimizer.lr: 0.001 -> 0.002"]  # ckpt_path differs by design and is not listed


def test_a_run_killed_mid_epoch_resumes_to_bit_identical_results(tmp_path, tmp_path_factory):
    reference, reference_dir = reference_run(tmp_path_factory)
    run_dir = tmp_path / "run"
    killed = run_cli(*TINY_RUN, f"hydra.run.dir={run_dir}", *fault("SignalAtStep", step=13))
    assert killed.returncode == -9, killed.stderr[-2000:]  # SIGKILL while epoch 1 (steps 8-15) runs
    assert not (run_dir / "results.json").exists()
    checkpoints = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert checkpoints == ["epoch000.ckpt", "last.ckpt", "step0000010.ckpt"]  # newest: step 10, mid-epoch

    # What `python train.py <same overrides> ckpt_path=last hydra.run.dir=<run dir>` runs:
    best_file = tmp_path / "best_at_resume.txt"
    results, _ = train(
        compose_config([*TINY_RUN, "ckpt_path=last", *fault("RecordBestAtResume", path=best_file)], run_dir)
    )
    epoch0_val_mse = float(next(r for r in csv_rows(reference_dir) if r["val/mse"])["val/mse"])
    assert float(best_file.read_text()) == pytest.approx(epoch0_val_mse)  # the best so far, restored
    assert same_results(results, reference), (results, reference)
    assert json.loads((run_dir / "results.json").read_text())["objective"] == reference["objective"]
    # The CSV log continues where the checkpoint was taken: the same rows as the uninterrupted run's.
    csv = Path("csv") / "metrics.csv"
    assert (run_dir / csv).read_text() == (reference_dir / csv).read_text()
