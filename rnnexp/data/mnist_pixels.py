"""Sequential (pixel) MNIST: MNIST-family images read one pixel per step, 784 steps, one label per image;
with ``permute``, the pixels in one fixed random order (permuted sequential MNIST).

Definitions: Le, Jaitly & Hinton 2015 ("A Simple Way to Initialize Recurrent Networks of Rectified Linear
Units", §4.2): pixels read in scan-line order, top-left to bottom-right, the label predicted after the last
pixel; the permuted variant applies one random permutation, the same for every image. ``downsample``
average-pools the image first (2: 14 x 14 = 196 steps, 4: 7 x 7 = 49 steps): not the published task, a
cheaper one for CPUs, and every result from it must say so.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch.nn import functional as F

from rnnexp.config.values import require_bool, require_choice, require_int
from rnnexp.data.mnist_rows import MnistImages
from rnnexp.errors import ConfigError

log = logging.getLogger(__name__)

SIDE = 28
DOWNSAMPLE_FACTORS = (1, 2, 4, 7, 14)  # divisors of 28: 784, 196, 49, 16, 4 steps


def pixel_permutation(steps: int, seed: int) -> torch.Tensor:
    """The pixel order of permuted sequential MNIST: ``(steps,)`` int64, a function of ``seed`` alone."""
    return torch.randperm(steps, generator=torch.Generator().manual_seed(seed))


class MnistPixels(MnistImages):
    """MNIST-family images as ``(batch, time=pixels, features=1)``, one label per image (many-to-one).

    Images stay ``(N, 28, 28)`` uint8 in memory; on its device a batch is standardised (the training pixels'
    mean and std), average-pooled by ``downsample``, flattened row by row and, with ``permute``, reordered by
    the permutation drawn from ``permute_seed``. The permutation is part of the task the network learns, so it
    is stored in every checkpoint (``state_dict``) and restored from it (``load_state_dict``).
    """

    input_size = 1
    output_size = 10
    per_step = False

    def __init__(
        self,
        variant: str = "mnist",
        data_dir: str = "data",
        download: bool = True,
        val_size: int = 5000,
        batch_size: int = 128,
        split_seed: int = 0,
        permute: bool = False,
        permute_seed: int = 0,
        downsample: int = 1,
    ):
        super().__init__(variant, data_dir, download, val_size, batch_size, split_seed)
        require_bool("datamodule.permute", permute)
        require_int("datamodule.permute_seed", permute_seed, 0, 0)
        require_choice("datamodule.downsample", downsample, DOWNSAMPLE_FACTORS)
        self.save_hyperparameters(logger=False)
        self.side = SIDE // downsample
        self.permutation: torch.Tensor | None = (
            pixel_permutation(self.side * self.side, permute_seed) if permute else None
        )
        self._device_permutation: torch.Tensor | None = None

    @property
    def steps(self) -> int:
        """Time steps per image: ``(28 / downsample) ** 2``."""
        return self.side * self.side

    def pixel_sequences(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 ``(batch, 28, 28)`` -> standardised ``(batch, steps, 1)`` in reading order."""
        pixels = self.standardise(images)
        factor = self.hparams.downsample
        if factor > 1:
            pixels = F.avg_pool2d(pixels.unsqueeze(1), factor).squeeze(1)
        pixels = pixels.flatten(1)  # row by row: (batch, steps)
        if self.permutation is not None:
            if self._device_permutation is None or self._device_permutation.device != pixels.device:
                self._device_permutation = self.permutation.to(pixels.device)
            pixels = pixels[:, self._device_permutation]
        return pixels.unsqueeze(-1)

    def on_after_batch_transfer(self, batch: tuple[torch.Tensor, torch.Tensor], dataloader_idx: int):
        images, labels = batch
        return self.pixel_sequences(images), labels

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps: the permutation (permuted runs only), with the seed that drew it."""
        if self.permutation is None:
            return {}
        return {"permutation": self.permutation.clone(), "permute_seed": self.hparams.permute_seed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Adopt a checkpoint's permutation: the network learned that pixel order, whatever the config says
        now; a config that cannot hold it (no permutation, another number of steps) is refused."""
        stored = state.get("permutation")
        if stored is None:
            return
        if self.permutation is None or stored.numel() != self.steps:
            raise ConfigError(
                f"The checkpoint was trained on permuted pixels ({stored.numel()} steps, permute_seed="
                f"{state.get('permute_seed')}), but this run has datamodule.permute={self.hparams.permute} "
                f"with {self.steps} steps (datamodule.downsample={self.hparams.downsample}). Set "
                "datamodule.permute=true and the checkpoint's datamodule.downsample, or start a new run."
            )
        if not torch.equal(stored, self.permutation):
            log.warning(
                "datamodule.permute_seed=%s draws another pixel order than the checkpoint's (permute_seed=%s); "
                "using the checkpoint's, which the network was trained on.",
                self.hparams.permute_seed,
                state.get("permute_seed"),
            )
        self.permutation = stored.clone().long()
        self._device_permutation = None
