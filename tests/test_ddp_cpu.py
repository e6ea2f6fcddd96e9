"""DDP on CPU: 2 gloo processes, each rank reads its own shard, validation metrics are synced across ranks;
under a Hydra multirun the ranks are spawned from the job."""

import json
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from torch.nn import functional as F

from rnnexp.data.batching import EpochBatchSampler
from rnnexp.lifecycle.checkpoint import load_task
from rnnexp.lifecycle.launch import strategy_for_launch
from rnnexp.training import train
from tests.conftest import compose_config
from tests.resilience import TINY_RUN, run_cli


def shards(size: int, world_size: int, equal: bool, epoch: int = 0) -> list[list[int]]:
    out = []
    for rank in range(world_size):
        sampler = EpochBatchSampler(
            size, 4, True, seed=5, rank=rank, world_size=world_size, equal_shards=equal
        )
        sampler.set_epoch(epoch)
        out.append([i for batch in sampler for i in batch.tolist()])
        assert len(sampler) == len(list(sampler))
    return out


def test_evaluation_shards_split_the_data_exactly():
    parts = shards(size=11, world_size=3, equal=False)
    assert sorted(i for part in parts for i in part) == list(range(11))  # every example scored once
    assert [len(p) for p in parts] == [4, 4, 3]


def test_training_shards_are_disjoint_equal_and_padded_like_distributed_sampler():
    parts = shards(size=11, world_size=2, equal=True)
    assert [len(p) for p in parts] == [6, 6]  # the same number of steps on every rank
    assert set(parts[0]) | set(parts[1]) == set(range(11))
    assert len(set(parts[0]) & set(parts[1])) == 1  # one example repeated to pad 11 to 12
    assert shards(11, 2, True, epoch=1) != parts  # each epoch reshuffles, on every rank alike


def test_ddp_becomes_ddp_spawn_under_a_multirun_unless_slurm_started_the_ranks(monkeypatch):
    assert strategy_for_launch("ddp", multirun=False) == "ddp"
    assert strategy_for_launch("ddp", multirun=True) == "ddp_spawn"
    assert strategy_for_launch("auto", multirun=True) == "auto"
    monkeypatch.setenv("SLURM_NTASKS", "2")
    monkeypatch.setenv("SLURM_JOB_NAME", "train")
    assert strategy_for_launch("ddp", multirun=True) == "ddp"


class RecordShards(pl.Callback):
    """Writes what each rank read and the validation loss it saw to ``<folder>/rank<r>.json``."""

    def __init__(self, folder: str):
        self.folder = folder
        self.record: dict = {"train": [], "val": [], "val_loss": []}

    def on_train_epoch_start(self, trainer, pl_module):
        self.record.update(rank=trainer.global_rank, world_size=trainer.world_size)
        self.record["train"].append(trainer.train_dataloader.sampler.shard().tolist())
        self.record["val"] = trainer.val_dataloaders.sampler.shard().tolist()

    def on_validation_end(self, trainer, pl_module):
        if not trainer.sanity_checking:
            self.record["val_loss"].append(float(trainer.callback_metrics["val/loss"]))

    def on_train_end(self, trainer, pl_module):
        Path(self.folder, f"rank{trainer.global_rank}.json").write_text(json.dumps(self.record))


def test_two_cpu_processes_read_disjoint_shards_and_sync_validation_metrics(tmp_path):
    cfg = compose_config([*TINY_RUN, "trainer=ddp_cpu", "trainer.strategy=ddp_spawn", "trainer.max_epochs=2",
                          "test=false", "+callbacks.record._target_=tests.test_ddp_cpu.RecordShards",
                          f"+callbacks.record.folder={tmp_path}"], tmp_path / "run")  # fmt: skip
    results, objects = train(cfg)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    for epoch in range(2):
        first, second = (set(r["train"][epoch]) for r in ranks)
        assert not first & second and first | second == set(range(64))  # 64 training sequences, no overlap
    assert set(ranks[0]["val"]) | set(ranks[1]["val"]) == set(range(8)) and not set(ranks[0]["val"]) & set(
        ranks[1]["val"]
    )
    assert ranks[0]["val_loss"] == ranks[1]["val_loss"]  # torchmetrics synced the ranks' sums

    # The synced value is the loss over the whole validation set, as one process computes it.
    task = load_task(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt")
    datamodule = objects["datamodule"]
    datamodule.setup("fit")  # the spawned ranks read the data; this process has not yet
    inputs, targets = datamodule.datasets["val"].tensors
    with torch.no_grad():
        whole = F.mse_loss(task(inputs), targets).item()
    assert ranks[0]["val_loss"][-1] == pytest.approx(whole, rel=1e-5)
    assert results["val"]["val/loss"] == ranks[0]["val_loss"][-1]
    assert (results["epochs"], results["global_step"]) == (2, 2 * 4)  # 32 sequences a rank, batches of 8


@pytest.mark.slow
def test_ddp_cpu_runs_from_the_command_line_and_in_a_multirun(tmp_path):
    single = run_cli(*TINY_RUN, "trainer=ddp_cpu", "test=false", f"hydra.run.dir={tmp_path / 'single'}")
    assert single.returncode == 0, single.stderr[-3000:]
    assert (
        json.loads((tmp_path / "single" / "results.json").read_text())["global_step"] == 3 * 4
    )  # 32 / 8 a rank
    sweep = run_cli(
        "-m", *TINY_RUN, "trainer=ddp_cpu", "test=false", "seed=1,2", f"hydra.sweep.dir={tmp_path / 'sweep'}"
    )
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    assert "ddp_spawn" in sweep.stdout + sweep.stderr
    for job in ("0", "1"):
        assert json.loads((tmp_path / "sweep" / job / "results.json").read_text())["global_step"] == 12
