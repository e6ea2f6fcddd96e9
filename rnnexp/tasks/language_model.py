"""Character-level language modelling with truncated backpropagation through time."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import TensorBoardLogger, WandbLogger
from torch.nn import functional as F
from torchmetrics import Metric, MinMetric

from rnnexp.data.char_corpus import CharCorpus
from rnnexp.errors import ConfigError
from rnnexp.models.char_rnn import CharRNN, check_language_model_options
from rnnexp.models.recurrent import Hidden, RecurrentSpec
from rnnexp.models.sampling import check_prompt, check_sampling_options, sample
from rnnexp.tasks.base import OptimizerFactory, SchedulerFactory, SequenceTask
from rnnexp.tasks.carried_state import CarriesHiddenState
from rnnexp.tasks.step_metrics import accumulate


class CharLanguageModel(CarriesHiddenState, SequenceTask):
    """Next-character cross-entropy, logged per stage in nats/char (``<stage>/loss``), bits/char
    (``<stage>/bpc``) and perplexity (``<stage>/ppl``), plus the best ``val/loss``.

    With ``carry_hidden`` (truncated BPTT, for the datamodule's ordered streams) the final hidden state of
    each batch, detached, starts the next batch of the same stage (see ``CarriesHiddenState``: reset per
    epoch and pass, kept in checkpoints). Without it every batch starts from zeros. At the end of
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
        init: str = "torch",
        carry_hidden: bool = True,
        sample_length: int = 200,
        sample_prompt: str | None = None,
        sample_temperature: float = 0.8,
        sample_top_k: int | None = None,
        sample_seed: int = 0,
    ):
        super().__init__(net, optimizer, scheduler, scheduler_monitor, log_figures)
        # Not `init`: it is how a new network starts; a checkpoint from before task.init existed has no such
        # hparam (the default then differs from the uniform start its network records) and loads its weights.
        if (net.embedding_dim, net.tie_weights) != (embedding_dim, tie_weights):
            raise ValueError("CharLanguageModel: embedding_dim/tie_weights differ from the network's")
        if sample_prompt is not None:
            check_prompt(net.vocab, sample_prompt, key="task.sample_prompt")
        check_sampling_options(sample_temperature, sample_top_k, sample_length, prefix="task.sample_")
        self.init_carried_state(carry_hidden)
        self.val_loss_best = MinMetric()
        self.first_val_ids: torch.Tensor | None = None  # starts the sample when no prompt is configured

    @classmethod
    def net_options(cls, task_cfg: Mapping[str, Any]) -> dict[str, Any]:
        return {key: task_cfg[key] for key in ("embedding_dim", "tie_weights", "init")}

    @classmethod
    def build_net(
        cls,
        spec: RecurrentSpec,
        datamodule: pl.LightningDataModule,
        embedding_dim: int,
        tie_weights: bool,
        init: str = "torch",
    ) -> CharRNN:
        """The vocabulary sizes the network, so the corpus is read here, after the cheap checks."""
        check_language_model_options(spec, embedding_dim, tie_weights, init)
        if not isinstance(datamodule, CharCorpus):
            raise ConfigError(
                f"task=language_model needs datamodule=text, got {type(datamodule).__name__}; "
                "use datamodule=text (it selects this task)."
            )
        datamodule.prepare_data()
        datamodule.setup("fit")
        return CharRNN(spec, datamodule.vocab, embedding_dim, tie_weights, init)

    def forward(self, ids: torch.Tensor, hidden: Hidden | None = None) -> tuple[torch.Tensor, Hidden]:
        return self.net(ids, hidden)

    def loss(self, preds: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy in nats per character; logits ``(batch, time, vocab)``, ids ``(batch, time)``."""
        return F.cross_entropy(preds.reshape(-1, preds.shape[-1]), targets.reshape(-1))

    def model_step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> dict[str, torch.Tensor]:
        inputs, targets = batch  # ids, (batch, time) each; targets are the inputs shifted by one character
        logits, hidden = self(inputs, self.carried_start(stage))
        self.carry(stage, hidden)
        loss = self.loss(logits, targets)
        # Weighted per character, so a short last window counts less; logged once, at the end of the epoch.
        accumulate(getattr(self, f"{stage}_loss"), loss.detach(), weight=targets.numel())
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
