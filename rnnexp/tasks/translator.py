"""Sequence to sequence on characters: teacher-forced training, free-running evaluation scored by exact match."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import TensorBoardLogger, WandbLogger
from torch.nn import functional as F
from torchmetrics import MaxMetric, MeanMetric, Metric

from rnnexp.data.char_pairs import CharPairs
from rnnexp.errors import ConfigError
from rnnexp.models.char_seq2seq import CharSeq2Seq
from rnnexp.models.recurrent import RecurrentSpec
from rnnexp.tasks.base import OptimizerFactory, SchedulerFactory, SequenceTask
from rnnexp.tasks.step_metrics import accumulate

SAMPLES_FILE = "translations.txt"  # in the run directory


def output_length(configured: int | None, longest_target: int) -> int:
    """The decoder's step limit: the configured one, else the longest training target, ``<end>`` and 2 more."""
    return configured if configured is not None else longest_target + 3


def score_outputs(
    outputs: torch.Tensor, target: torch.Tensor, target_lengths: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per sequence: whether the output equals the target (``<end>`` included, nothing after it), ``(batch,)``
    bool, and how many of the target's positions it got right, ``(batch,)``. Both are ids padded after
    ``<end>`` with the same pad id."""
    width = max(outputs.shape[1], target.shape[1])
    outputs = F.pad(outputs, (0, width - outputs.shape[1]), value=0)
    target = F.pad(target, (0, width - target.shape[1]), value=0)
    return (outputs == target).all(dim=1), right_characters(outputs, target, target_lengths)


def right_characters(
    predicted: torch.Tensor, target: torch.Tensor, target_lengths: torch.Tensor
) -> torch.Tensor:
    """``score_outputs``' second half for teacher-forced predictions ``(batch, T)``, as wide as the target:
    how many of the target's positions each sequence got right, ``(batch,)``. Per training step, so without
    the padding to a common width and the exact-match test it does not need."""
    inside = torch.arange(target.shape[1], device=target.device) < target_lengths[:, None]
    return ((predicted == target) & inside).sum(dim=1)


def publish_table(trainer: pl.Trainer, name: str, columns: list[str], rows: list[list[str]]) -> Path | None:
    """Append a table to ``<run dir>/translations.txt`` and send it to TensorBoard (Markdown) and wandb (a
    table); rank 0 only."""
    if not trainer.is_global_zero:
        return None
    epoch, step = trainer.current_epoch, trainer.global_step
    widths = [max(len(col), *(len(row[i]) for row in rows)) for i, col in enumerate(columns)]
    lines = [
        " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in [columns, *rows]
    ]
    path = Path(trainer.default_root_dir) / SAMPLES_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        out.write(f"===== {name} | epoch {epoch} | step {step}\n" + "\n".join(lines) + "\n\n")
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            escape = [[f"`{cell}`" for cell in row] for row in rows]
            markdown = [f"| {' | '.join(columns)} |", "|" + "---|" * len(columns)]
            markdown += [f"| {' | '.join(row)} |" for row in escape]
            logger.experiment.add_text(name, "\n".join(markdown), global_step=step)
        elif isinstance(logger, WandbLogger):
            logger.log_table(key=name, columns=["epoch", *columns], data=[[epoch, *row] for row in rows])
    return path


class CharTranslator(SequenceTask):
    """Cross-entropy of every target character (``<end>`` included, padding ignored) under teacher forcing.

    Each training step feeds the true previous character with probability ``teacher_forcing`` (per step and
    sequence), else the decoder's own choice. Validation and test decode free-running (greedy, or beam search
    with ``beam_size``) and never read the target; they log ``<stage>/exact_match`` (the whole output right),
    ``<stage>/char_acc`` (target positions right) and the teacher-forced ``<stage>/loss``; ``train/char_acc``
    is teacher-forced. At each validation ``num_samples`` rows (source, truth, output) are published.
    """

    allows_bidirectional_model = True  # the encoder reads the whole source; the decoder is unidirectional

    def __init__(
        self,
        net: CharSeq2Seq,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        scheduler_monitor: str | None = None,
        log_figures: bool = True,
        embedding_dim: int = 64,
        max_output_length: int | None = None,
        teacher_forcing: float = 1.0,
        beam_size: int = 1,
        num_samples: int = 8,
    ):
        super().__init__(net, optimizer, scheduler, scheduler_monitor, log_figures)
        if not 0.0 <= teacher_forcing <= 1.0:
            raise ConfigError(
                f"task.teacher_forcing={teacher_forcing!r} is a probability; it must be in [0, 1]."
            )
        for key, value, least in (("beam_size", beam_size, 1), ("num_samples", num_samples, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ConfigError(f"task.{key}={value!r} must be an integer >= {least}.")
        for stage in ("train", "val", "test"):
            setattr(self, f"{stage}_char_acc", MeanMetric(nan_strategy="ignore"))
        self.val_exact_match, self.test_exact_match = MeanMetric(), MeanMetric()
        self.val_exact_match_best = MaxMetric()
        self.first_val_batch: tuple[torch.Tensor, ...] | None = None

    @classmethod
    def net_options(cls, task_cfg: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "embedding_dim": task_cfg["embedding_dim"],
            "max_output_length": task_cfg["max_output_length"],
        }

    @classmethod
    def build_net(
        cls,
        spec: RecurrentSpec,
        datamodule: pl.LightningDataModule,
        embedding_dim: int,
        max_output_length: int | None,
    ) -> CharSeq2Seq:
        """The vocabulary sizes the network, so the pairs are made or read here, after the cheap checks."""
        if not isinstance(datamodule, CharPairs):
            raise ConfigError(
                f"task=translator needs datamodule=char_pairs, got {type(datamodule).__name__}; use "
                "datamodule=char_pairs (it selects this task)."
            )
        datamodule.setup("fit")
        length = output_length(max_output_length, datamodule.max_target_length)
        return CharSeq2Seq(spec, datamodule.vocab, embedding_dim, length)

    # The parts of a batch: what the encoder reads, and the target ids with their lengths.
    def split_batch(
        self, batch: tuple[torch.Tensor, ...]
    ) -> tuple[tuple[torch.Tensor, ...], torch.Tensor, torch.Tensor]:
        source, source_lengths, target, target_lengths = batch
        return (source, source_lengths), target, target_lengths

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy per target character; logits ``(batch, T, vocab)``, ids ``(batch, T)``."""
        return F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=self.net.vocab.pad_id
        )

    def model_step(self, batch: tuple[torch.Tensor, ...], stage: str) -> dict[str, torch.Tensor]:
        inputs, target, target_lengths = self.split_batch(batch)
        ratio, generator = 1.0, None
        if stage == "train" and self.hparams.teacher_forcing < 1.0:
            # A private generator seeded by the step: the draws shift no other random numbers, and a resumed
            # run draws the same ones.
            generator = torch.Generator(device=target.device)
            generator.manual_seed(torch.initial_seed() + self.global_step)
            ratio = self.hparams.teacher_forcing
        logits = self.net(*inputs, target, teacher_forcing=ratio, generator=generator)
        loss = self.loss(logits, target)
        characters = target_lengths.sum()
        accumulate(getattr(self, f"{stage}_loss"), loss.detach(), weight=characters)
        if stage == "train":
            right = right_characters(logits.detach().argmax(-1), target, target_lengths)
        else:
            outputs = self.net.generate(*inputs, beam_size=self.hparams.beam_size)  # the target is not passed
            exact, right = score_outputs(outputs, target, target_lengths)
            accumulate(getattr(self, f"{stage}_exact_match"), exact.float())
            self.update_output_metrics(stage, outputs, batch)
        accumulate(getattr(self, f"{stage}_char_acc"), right.sum() / characters, weight=characters)
        return {"loss": loss} if stage == "train" else {"loss": loss, "outputs": outputs}

    def update_output_metrics(
        self, stage: str, outputs: torch.Tensor, batch: tuple[torch.Tensor, ...]
    ) -> None:
        """Extra metrics of the free-running outputs (the captioner reads captions as classes); none here."""

    def log_epoch_metrics(self, stage: str) -> None:
        super().log_epoch_metrics(stage)
        self.log(f"{stage}/char_acc", getattr(self, f"{stage}_char_acc"))
        if stage != "train":
            self.log(f"{stage}/exact_match", getattr(self, f"{stage}_exact_match"), prog_bar=True)

    def best_tracker(self) -> tuple[str, Metric, Metric]:
        return "val/exact_match_best", self.val_exact_match_best, self.val_exact_match

    def validation_step(self, batch, batch_idx: int) -> dict[str, torch.Tensor]:
        if batch_idx == 0:
            self.first_val_batch = tuple(part[: self.hparams.num_samples] for part in batch)
        return super().validation_step(batch, batch_idx)

    def sample_rows(
        self, batch: tuple[torch.Tensor, ...], outputs: torch.Tensor
    ) -> tuple[list[str], list[list[str]]]:
        """Column names and rows of the sample table."""
        (source, source_lengths), target, _ = self.split_batch(batch)
        vocab = self.net.vocab
        rows = [
            [vocab.decode_until_end(s[:n]), vocab.decode_until_end(t), vocab.decode_until_end(o)]
            for s, n, t, o in zip(
                source.cpu(), source_lengths.tolist(), target.cpu(), outputs.cpu(), strict=True
            )
        ]
        return ["source", "truth", "output"], rows

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        if self.trainer.sanity_checking or not self.first_val_batch or self.hparams.num_samples == 0:
            return
        inputs, _, _ = self.split_batch(self.first_val_batch)
        with torch.no_grad():
            outputs = self.net.generate(*inputs, beam_size=self.hparams.beam_size)
        columns, rows = self.sample_rows(self.first_val_batch, outputs)
        publish_table(self.trainer, "val/samples", columns, rows)
