"""MNIST-family images captioned with their class name ("ankle boot", "seven"): one image in, characters out."""

from __future__ import annotations

import torch

from rnnexp.data.mnist_rows import MnistImages
from rnnexp.data.vocab import PairVocabulary
from rnnexp.errors import ConfigError

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def default_captions(class_names: list[str]) -> list[str]:
    """Lower-case class names; torchvision's MNIST names ("7 - seven") keep only the word."""
    return [name.split(" - ")[-1].lower() for name in class_names]


class ImageCaptions(MnistImages):
    """The IDX files ``MnistRows`` reads (same code), each label turned into its caption.

    Batches on the device are ``(images (batch, 28, 28) standardised floats, captions (batch, T) ids ending with
    <end>, caption lengths (batch,), labels (batch,))``; the captions come from one small table per class.
    """

    def __init__(
        self,
        variant: str = "fashion",
        data_dir: str = "data",
        download: bool = True,
        val_size: int = 5000,
        batch_size: int = 128,
        split_seed: int = 0,
        captions: list[str] | None = None,
    ):
        super().__init__(variant, data_dir, download, val_size, batch_size, split_seed)
        captions = list(captions) if captions is not None else default_captions(self.class_names)
        if len(captions) != len(self.class_names) or not all(captions):
            raise ConfigError(
                f"datamodule.captions needs one non-empty caption per class of {variant} "
                f"({len(self.class_names)}: {self.class_names}); got {captions!r}."
            )
        self.captions = captions
        self.vocab = PairVocabulary("".join(captions))
        ids, lengths = self.vocab.encode_padded(captions)
        ids = torch.nn.functional.pad(ids, (0, 1), value=self.vocab.pad_id)
        ids[torch.arange(len(captions)), lengths] = self.vocab.end_id
        self.caption_ids, self.caption_lengths = ids, lengths + 1  # (classes, longest + 1), (classes,)
        self.max_target_length = int(lengths.max())

    def on_after_batch_transfer(self, batch: tuple[torch.Tensor, torch.Tensor], dataloader_idx: int) -> Batch:
        images, labels = batch
        table = self.caption_ids.to(labels.device)
        lengths = self.caption_lengths.to(labels.device)[labels]
        return self.standardise(images), table[labels], lengths, labels
