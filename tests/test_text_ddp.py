"""The language model under DDP on CPU (2 gloo processes): each rank reads its own block of text streams,
the character-weighted validation loss is synced across ranks, and a checkpoint holds every rank's carried
hidden state, so a run resumed mid-epoch continues each rank's streams exactly."""

import json
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from torch.nn import functional as F

from rnnexp.data.streams import StreamBatches, batchify
from rnnexp.lifecycle.checkpoint import load_task, read_checkpoint
from rnnexp.training import train
from tests.conftest import compose_config
from tests.test_text_resume import write_corpus


class RecordStreams(pl.Callback):
    """Writes what each rank's loaders served, its synced validation losses and its final carried training
    state to ``<folder>/rank<r>.json`` / ``rank<r>.pt``."""

    def __init__(self, folder: str):
        self.folder = Path(folder)
        self.record: dict = {"val_loss": []}

    def on_train_epoch_start(self, trainer, pl_module):
        self.record["train"] = trainer.train_dataloader.dataset.streams.tolist()
        self.record["val"] = trainer.val_dataloaders.dataset.streams.tolist()

    def on_validation_end(self, trainer, pl_module):
        if not trainer.sanity_checking:
            self.record["val_loss"].append(float(trainer.callback_metrics["val/loss"]))

    def on_train_end(self, trainer, pl_module):
        rank = trainer.global_rank
        (self.folder / f"rank{rank}.json").write_text(json.dumps(self.record))
        torch.save([part.cpu() for part in pl_module.carried["train"]], self.folder / f"rank{rank}.pt")


def whole_split_loss(task, streams: torch.Tensor, seq_len: int) -> float:
    """Nats per character over all ``streams`` in one process, the hidden state carried window to window."""
    total, count, hidden = 0.0, 0, None
    with torch.no_grad():
        for i in range(len(StreamBatches(streams, seq_len))):
            inputs, targets = StreamBatches(streams, seq_len)[i]
            logits, hidden = task(inputs, hidden)
            total += F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="sum").item()
            count += targets.numel()
    return total / count


@pytest.mark.slow
def test_two_processes_read_own_streams_sync_the_loss_and_resume_each_rank_exactly(tmp_path):
    corpus = write_corpus(tmp_path / "words.txt", characters=1200)
    # 4 streams a rank, 8 in all: 840 training characters → 105 a stream → 7 steps an epoch; 240 validation
    # characters → 30 a stream → 2 windows, so the validation pass carries its state too. No dropout: the
    # ranks' random generators are not part of what this test compares.
    overrides = [
        "datamodule=text", f"datamodule.path={corpus}", "datamodule.batch_size=4", "datamodule.seq_len=16",
        "datamodule.val_fraction=0.2", "datamodule.test_fraction=0.1", "model=lstm", "model.hidden_size=16",
        "task.embedding_dim=8", "task.sample_length=0", "trainer=ddp_cpu", "trainer.strategy=ddp_spawn",
        "trainer.max_epochs=2", "trainer.deterministic=true", "trainer.log_every_n_steps=2",
        "callbacks.step_checkpoint.every_n_train_steps=5", "~callbacks.progress_bar",
        "+trainer.enable_progress_bar=false", "trainer.enable_model_summary=false", "test=false",
        "+callbacks.record._target_=tests.test_text_ddp.RecordStreams",
    ]  # fmt: skip
    (tmp_path / "full").mkdir()
    cfg = compose_config([*overrides, f"+callbacks.record.folder={tmp_path / 'full'}"], tmp_path / "run")
    results, objects = train(cfg)
    assert (results["epochs"], results["global_step"]) == (2, 2 * 7)
    ranks = [json.loads((tmp_path / "full" / f"rank{r}.json").read_text()) for r in range(2)]

    datamodule = objects["datamodule"]
    for split in ("train", "val"):
        everything = batchify(datamodule.ids[split], 2 * 4)  # the 8 streams of both ranks, (8, length)
        read = [torch.tensor(rank[split]) for rank in ranks]
        assert [r.shape for r in read] == [(4, everything.shape[1])] * 2  # equal steps on every rank
        assert sorted(map(tuple, torch.cat(read).tolist())) == sorted(map(tuple, everything.tolist()))

    # torchmetrics summed both ranks' character-weighted losses: the loss over all 8 validation streams.
    assert (
        ranks[0]["val_loss"] == ranks[1]["val_loss"]
        and ranks[0]["val_loss"][-1] == results["val"]["val/loss"]
    )
    task = load_task(Path(results["run_dir"]) / "checkpoints" / "last.ckpt")
    whole = whole_split_loss(task, batchify(datamodule.ids["val"], 8), seq_len=16)
    assert ranks[0]["val_loss"][-1] == pytest.approx(whole, rel=1e-5)

    # The checkpoint holds each rank's own carried state (h and c), gathered from both processes.
    carried = read_checkpoint(Path(results["run_dir"]) / "checkpoints" / "last.ckpt")["carried_hidden"]
    assert carried["world_size"] == 2 and len(carried["parts"]) == 2
    for rank in range(2):
        final = torch.load(tmp_path / "full" / f"rank{rank}.pt", weights_only=True)
        assert all(torch.equal(part[rank], f) for part, f in zip(carried["parts"], final, strict=True))
    assert not torch.equal(carried["parts"][0][0], carried["parts"][0][1])

    # Resuming from the mid-epoch step checkpoint (step 10: epoch 1, 3 of 7 batches done) reaches the same
    # weights and metrics as the run that went through: each rank gets back its own hidden state and its own
    # share of the epoch's running training loss.
    step_ckpt = Path(results["run_dir"]) / "checkpoints" / "step0000010.ckpt"
    (tmp_path / "resumed").mkdir()
    resumed_cfg = compose_config(
        [*overrides, f"ckpt_path={step_ckpt}", f"+callbacks.record.folder={tmp_path / 'resumed'}"],
        tmp_path / "resumed_run",
    )
    resumed, _ = train(resumed_cfg)
    assert all(resumed[key] == results[key] for key in ("train", "val", "epochs", "global_step"))
    weights = [
        read_checkpoint(Path(r["run_dir"]) / "checkpoints" / "last.ckpt")["state_dict"]
        for r in (results, resumed)
    ]
    assert all(torch.equal(weights[0][key], weights[1][key]) for key in weights[0])
