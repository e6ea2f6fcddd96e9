"""One-to-many captioning: an image in, its class name spelled character by character out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytorch_lightning as pl
import torch
from torchmetrics import MeanMetric

from rnnexp.data.image_captions import ImageCaptions
from rnnexp.errors import ConfigError
from rnnexp.models.caption_net import CaptionNet
from rnnexp.models.recurrent import RecurrentSpec
from rnnexp.tasks.base import OptimizerFactory, SchedulerFactory
from rnnexp.tasks.figures import plot_captions, publish_figure
from rnnexp.tasks.step_metrics import accumulate
from rnnexp.tasks.translator import CharTranslator, output_length, score_outputs

FIGURE_IMAGES = 16


def caption_classes(outputs: torch.Tensor, captions: torch.Tensor) -> torch.Tensor:
    """The class whose caption ``outputs (batch, L)`` spells exactly, or -1: ``captions (classes, T)`` is the
    datamodule's table, both padded after ``<end>``."""
    width = max(outputs.shape[1], captions.shape[1])
    outputs = torch.nn.functional.pad(outputs, (0, width - outputs.shape[1]))
    captions = torch.nn.functional.pad(captions.to(outputs.device), (0, width - captions.shape[1]))
    same = (outputs[:, None, :] == captions[None, :, :]).all(dim=2)  # (batch, classes)
    return torch.where(same.any(dim=1), same.float().argmax(dim=1), -1)


class ImageCaptioner(CharTranslator):
    """``CharTranslator``'s loss, decoding and metrics on (image, caption) pairs, plus ``<stage>/acc``: the
    generated caption read as a class (it names the true class exactly), comparable with the row
    classifier's ``test/acc``, and ``<stage>/no_class``: the fraction of captions that name no class at all.
    The test pass draws ``figures/test_captions.png``: test images with their generated captions."""

    def __init__(
        self,
        net: CaptionNet,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        scheduler_monitor: str | None = None,
        log_figures: bool = True,
        embedding_dim: int = 32,
        max_output_length: int | None = None,
        teacher_forcing: float = 1.0,
        beam_size: int = 1,
        num_samples: int = 8,
        image_encoder: str = "mlp",
        feature_size: int = 128,
    ):
        super().__init__(
            net,
            optimizer,
            scheduler,
            scheduler_monitor,
            log_figures,
            embedding_dim,
            max_output_length,
            teacher_forcing,
            beam_size,
            num_samples,
        )
        self.val_acc, self.test_acc = MeanMetric(), MeanMetric()
        self.val_no_class, self.test_no_class = MeanMetric(), MeanMetric()
        self.first_test_batch: tuple[torch.Tensor, ...] | None = None

    @classmethod
    def net_options(cls, task_cfg: Mapping[str, Any]) -> dict[str, Any]:
        return {
            **super().net_options(task_cfg),
            "image_encoder": task_cfg["image_encoder"],
            "feature_size": task_cfg["feature_size"],
        }

    @classmethod
    def build_net(
        cls,
        spec: RecurrentSpec,
        datamodule: pl.LightningDataModule,
        embedding_dim: int,
        max_output_length: int | None,
        image_encoder: str,
        feature_size: int,
    ) -> CaptionNet:
        if not isinstance(datamodule, ImageCaptions):
            raise ConfigError(
                f"task=captioner needs datamodule=image_captions, got {type(datamodule).__name__}; use "
                "datamodule=image_captions (it selects this task)."
            )
        length = output_length(max_output_length, datamodule.max_target_length)
        return CaptionNet(spec, datamodule.vocab, embedding_dim, length, image_encoder, feature_size)

    def split_batch(
        self, batch: tuple[torch.Tensor, ...]
    ) -> tuple[tuple[torch.Tensor, ...], torch.Tensor, torch.Tensor]:
        images, target, target_lengths, _ = batch
        return (images,), target, target_lengths

    def update_output_metrics(
        self, stage: str, outputs: torch.Tensor, batch: tuple[torch.Tensor, ...]
    ) -> None:
        labels = batch[3]
        classes = caption_classes(outputs, self.trainer.datamodule.caption_ids)
        accumulate(getattr(self, f"{stage}_acc"), (classes == labels).float())
        accumulate(getattr(self, f"{stage}_no_class"), (classes < 0).float())

    def log_epoch_metrics(self, stage: str) -> None:
        super().log_epoch_metrics(stage)
        if stage != "train":
            self.log(f"{stage}/acc", getattr(self, f"{stage}_acc"), prog_bar=True)
            self.log(f"{stage}/no_class", getattr(self, f"{stage}_no_class"))

    def sample_rows(
        self, batch: tuple[torch.Tensor, ...], outputs: torch.Tensor
    ) -> tuple[list[str], list[list[str]]]:
        _, target, _ = self.split_batch(batch)
        vocab = self.net.vocab
        rows = [
            [vocab.decode_until_end(t), vocab.decode_until_end(o)]
            for t, o in zip(target.cpu(), outputs.cpu(), strict=True)
        ]
        return ["truth", "output"], rows

    def test_step(self, batch, batch_idx: int) -> dict[str, torch.Tensor]:
        if batch_idx == 0:
            self.first_test_batch = tuple(part[:FIGURE_IMAGES] for part in batch)
        return super().test_step(batch, batch_idx)

    def on_test_epoch_end(self) -> None:
        super().on_test_epoch_end()
        if not self.hparams.log_figures or self.first_test_batch is None:
            return
        (images,), target, _ = self.split_batch(self.first_test_batch)
        with torch.no_grad():
            outputs = self.net.generate(images, beam_size=self.hparams.beam_size)
        vocab = self.net.vocab
        captions = [vocab.decode_until_end(o) for o in outputs.cpu()]
        truths = [vocab.decode_until_end(t) for t in target.cpu()]
        exact, _ = score_outputs(outputs, target, self.split_batch(self.first_test_batch)[2])
        title = f"test images and their generated captions ({int(exact.sum())}/{len(captions)} right)"
        publish_figure(
            self.trainer, "test/captions", plot_captions(images, captions, truths, title), per_epoch=False
        )
