"""Character-level language modelling with truncated backpropagation through time."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import TensorBoardLogger, WandbLogger
from pytorch_lightning.utilities.rank_zero import rank_zero_warn
from torch.nn import functional as F
from torchmetrics import Metric, MinMetric

from rnnexp.data.char_corpus import CharCorpus
from rnnexp.errors import ConfigError
from rnnexp.lifecycle.checkpoint import CARRIED_HIDDEN
from rnnexp.models.char_rnn import CharRNN, check_language_model_options, repackage_hidden
from rnnexp.models.recurrent import Hidden, RecurrentSpec
from rnnexp.models.sampling import check_prompt, check_sampling_options, sample
from rnnexp.tasks.base import OptimizerFactory, SchedulerFactory, SequenceTask

STAGES = ("train", "val", "test")


class CharLanguageModel(SequenceTask):
    """Next-character cross-entropy, logged per stage in nats/char (``<stage>/loss``), bits/char
    (``<stage>/bpc``) and perplexity (``<stage>/ppl``), plus the best ``val/loss``.

    With ``carry_hidden`` (truncated BPTT, for the datamodule's ordered streams) the final hidden state of
    each batch, detached, starts the next batch of the same stage; it is reset at the start of every
    training epoch and every validation/test pass. Checkpoints hold the training state (every rank's), so a
    run resumed mid-epoch continues each stream from it. Without it every batch starts from zeros. At the end of
    each validation epoch a sample of ``sample_length`` characters is logged (TensorBoard, wandb, and
    ``samples.txt`` in the run directory).
    """

    def __init__(
        self,
        net: CharRNN,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        scheduler_monitor: str | None = None,
        log_figures: bool = True,
        embedding_dim: int = 128,
        tie_weights: bool = False,
        carry_hidden: bool = True,
        sample_length: int = 200,
        sample_prompt: str | None = None,
        sample_temperature: float = 0.8,
        sample_top_k: int | None = None,
        sample_seed: int = 0,
    ):
        super().__init__(net, optimizer, scheduler, scheduler_monitor, log_figures)
        if (net.embedding_dim, net.tie_weights) != (embedding_dim, tie_weights):
            raise ValueError("CharLanguageModel: embedding_dim/tie_weights differ from the network's")
        if sample_prompt is not None:
            check_prompt(net.vocab, sample_prompt, key="task.sample_prompt")
        check_sampling_options(sample_temperature, sample_top_k, sample_length, prefix="task.sample_")
        self.carried: dict[str, Hidden | None] = dict.fromkeys(STAGES)
        self.resumed_train_state: dict[str, Any] | None = None  # from a checkpoint, for the next train batch
        self.val_loss_best = MinMetric()
        self.first_val_ids: torch.Tensor | None = None  # starts the sample when no prompt is configured

    @classmethod
    def net_options(cls, task_cfg: Mapping[str, Any]) -> dict[str, Any]:
        return {"embedding_dim": task_cfg["embedding_dim"], "tie_weights": task_cfg["tie_weights"]}

    @classmethod
    def build_net(
        cls, spec: RecurrentSpec, datamodule: pl.LightningDataModule, embedding_dim: int, tie_weights: bool
    ) -> CharRNN:
        """The vocabulary sizes the network, so the corpus is read here, after the cheap checks."""
        check_language_model_options(spec, embedding_dim, tie_weights)
        if not isinstance(datamodule, CharCorpus):
            raise ConfigError(
                f"task=language_model needs datamodule=text, got {type(datamodule).__name__}; "
                "use datamodule=text (it selects this task)."
            )
        datamodule.prepare_data()
        datamodule.setup("fit")
        return CharRNN(spec, datamodule.vocab, embedding_dim, tie_weights)

    def setup(self, stage: str) -> None:
        tbptt = getattr(self.trainer.datamodule, "tbptt", None)
        if tbptt is not None and tbptt != self.hparams.carry_hidden:
            raise ConfigError(
                f"task.carry_hidden={self.hparams.carry_hidden} disagrees with datamodule.tbptt={tbptt}: "
                "the hidden state can only be carried across ordered streams. Leave task.carry_hidden at its "
                "default ${datamodule.tbptt}."
            )

    def forward(self, ids: torch.Tensor, hidden: Hidden | None = None) -> tuple[torch.Tensor, Hidden]:
        return self.net(ids, hidden)

    def loss(self, preds: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy in nats per character; logits ``(batch, time, vocab)``, ids ``(batch, time)``."""
        return F.cross_entropy(preds.reshape(-1, preds.shape[-1]), targets.reshape(-1))

    def model_step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> dict[str, torch.Tensor]:
        inputs, targets = batch  # ids, (batch, time) each; targets are the inputs shifted by one character
        logits, hidden = self(inputs, self.carried[stage] if self.hparams.carry_hidden else None)
        if self.hparams.carry_hidden:
            self.carried[stage] = repackage_hidden(hidden)
        loss = self.loss(logits, targets)
        # Weighted per character, so a short last window counts less; logged once, at the end of the epoch.
        getattr(self, f"{stage}_loss").update(loss.detach(), weight=targets.numel())
        return {"loss": loss}

    def validation_step(self, batch, batch_idx: int) -> dict[str, torch.Tensor]:
        if batch_idx == 0:
            self.first_val_ids = batch[0][0, :1]
        return super().validation_step(batch, batch_idx)

    def log_epoch_metrics(self, stage: str) -> None:
        """The epoch's mean nats per character (``<stage>/loss``), also as bits per character and perplexity."""
        super().log_epoch_metrics(stage)
        nats = getattr(self, f"{stage}_loss").compute()
        self.log(f"{stage}/bpc", nats / math.log(2), prog_bar=stage == "val")
        self.log(f"{stage}/ppl", nats.exp())

    def on_train_epoch_start(self) -> None:
        self.carried["train"] = None

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        if self.resumed_train_state is not None:
            state, self.resumed_train_state = self.resumed_train_state, None
            self.carried["train"] = restored_hidden(state, self.trainer, batch_idx, self.device)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        hidden = self.carried["train"]
        if self.hparams.carry_hidden and hidden is not None:  # None on every rank alike: no collective hangs
            checkpoint[CARRIED_HIDDEN] = carried_hidden_state(hidden, self.trainer, self.all_gather)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.resumed_train_state = checkpoint.get(CARRIED_HIDDEN)

    def on_validation_epoch_start(self) -> None:
        self.carried["val"] = None

    def on_test_epoch_start(self) -> None:
        self.carried["test"] = None

    def best_tracker(self) -> tuple[str, Metric, Metric]:
        return "val/loss_best", self.val_loss_best, self.val_loss

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        if self.trainer.sanity_checking:
            return
        hp = self.hparams
        prompt = hp.sample_prompt
        if prompt is None and self.first_val_ids is not None:
            prompt = self.net.vocab.decode(self.first_val_ids.cpu())
        if hp.sample_length > 0 and prompt and self.trainer.is_global_zero:
            text = sample(
                self.net, prompt, hp.sample_length, hp.sample_temperature, hp.sample_top_k, hp.sample_seed
            )
            publish_text(self.trainer, "val/sample", prompt + text)


def carried_hidden_state(
    hidden: Hidden, trainer: pl.Trainer, all_gather: Callable[[torch.Tensor], torch.Tensor]
) -> dict[str, Any]:
    """The training hidden state for a checkpoint, with where it belongs: the batch of which epoch it starts.

    Every rank carries the state of its own streams, and only rank 0 writes the file, so the states of all
    ranks are gathered into one tensor per part (h, and c for LSTM): ``(world_size, layers, batch, hidden)``.
    Called on every rank, as Lightning saves checkpoints (a collective here is safe).
    """
    parts = hidden if isinstance(hidden, tuple) else (hidden,)
    world_size = trainer.world_size
    gathered = [all_gather(part) if world_size > 1 else part.unsqueeze(0) for part in parts]
    return {
        "epoch": trainer.current_epoch,
        "next_batch": trainer.fit_loop.epoch_loop.batch_idx + 1,  # the batch it was carried into
        "world_size": world_size,
        "parts": [part.cpu() for part in gathered],
    }


def restored_hidden(
    state: dict[str, Any], trainer: pl.Trainer, batch_idx: int, device: torch.device
) -> Hidden | None:
    """This rank's hidden state from a checkpoint, when the first batch after resuming is the one it was
    carried into; otherwise (a checkpoint taken at the end of an epoch, whose next batch starts a new
    epoch from zeros) None."""
    if (state["epoch"], state["next_batch"]) != (trainer.current_epoch, batch_idx):
        return None
    if state["world_size"] != trainer.world_size:
        rank_zero_warn(
            f"The checkpoint was written by {state['world_size']} processes and this run has "
            f"{trainer.world_size}, so the text streams are laid out differently: the hidden state carried "
            "into this epoch's remaining batches starts from zeros instead."
        )
        return None
    parts = tuple(part[trainer.global_rank].to(device) for part in state["parts"])
    return parts if len(parts) == 2 else parts[0]


def publish_text(trainer: pl.Trainer, name: str, text: str) -> Path | None:
    """Append ``text`` to ``<run dir>/samples.txt`` and send it to the loggers that display text (rank 0)."""
    if not trainer.is_global_zero:
        return None
    epoch, step = trainer.current_epoch, trainer.global_step
    path = Path(trainer.default_root_dir) / "samples.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        out.write(f"===== {name} | epoch {epoch} | step {step}\n{text}\n\n")
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            # Indented lines are a Markdown code block: TensorBoard keeps line breaks and spacing.
            block = "\n".join("    " + line for line in text.splitlines())
            logger.experiment.add_text(name, block, global_step=step)
        elif isinstance(logger, WandbLogger):
            logger.log_text(key=name, columns=["epoch", "step", "text"], data=[[epoch, step, text]])
    return path
