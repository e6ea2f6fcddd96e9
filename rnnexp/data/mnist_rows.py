"""MNIST-family images read row by row: 28 time steps of 28 pixels, one label per image."""

from __future__ import annotations

import gzip
import math
import shutil
import struct
from pathlib import Path

import numpy as np
import torch
from torchvision import datasets as tv_datasets

from rnnexp.config.values import require_bool, require_int
from rnnexp.data.batching import TensorBatchDataset
from rnnexp.data.tensor_datamodule import TensorDataModule
from rnnexp.errors import ConfigError, DataError

VARIANTS: dict[str, type[tv_datasets.MNIST]] = {
    "mnist": tv_datasets.MNIST,
    "fashion": tv_datasets.FashionMNIST,
    "kmnist": tv_datasets.KMNIST,
}
IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def offline_hint(variant: str, raw: Path) -> str:
    """What to do without network: where the files go, and an offline source where one exists."""
    hint = f"Put the four IDX files (gzipped or extracted) into {raw} from a machine with network"
    debian = "/usr/share/datasets/fashion-mnist"
    if variant == "fashion":
        return (
            f"{hint}, or use Debian's package dataset-fashion-mnist: `apt-get install dataset-fashion-mnist && "
            f"mkdir -p {raw} && cp {debian}/*.gz {raw}/`. Or point datamodule.data_dir at a torchvision root "
            "that already has them."
        )
    return (
        f"{hint}, or point datamodule.data_dir at a torchvision root that already has them. Offline, "
        f"datamodule.variant=fashion can use the real Fashion-MNIST files of Debian's package dataset-fashion-mnist."
    )


def raw_folder(data_dir: str | Path, variant: str) -> Path:
    """Where torchvision keeps a variant's IDX files: ``<data_dir>/<ClassName>/raw``."""
    return Path(data_dir) / VARIANTS[variant].__name__ / "raw"


IDX_ITEM_BYTES = {0x08: 1, 0x09: 1, 0x0B: 2, 0x0C: 4, 0x0D: 4, 0x0E: 8}  # IDX type code -> bytes per value
REDOWNLOAD = "Delete it and download again (datamodule.download=true), or copy an intact file there."


def extract_gzipped(raw: Path) -> None:
    """Unpack ``<name>.gz`` next to itself when only the gzipped IDX file is present (torchvision reads raw)."""
    for name in IDX_FILES:
        target, packed = raw / name, raw / f"{name}.gz"
        if not target.exists() and packed.exists():
            try:
                with gzip.open(packed, "rb") as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst)
            except (OSError, EOFError) as err:  # BadGzipFile is an OSError; a cut-off stream ends in EOFError
                target.unlink(missing_ok=True)  # a half-written file would pass for a present one next time
                raise DataError(f"{packed} is not a complete gzip file ({err}). {REDOWNLOAD}") from None


def check_idx_file(path: Path) -> tuple[int, ...]:
    """The shape an IDX file declares, after checking that its header is valid and its size matches it
    (a truncated download, or an HTML error page saved under the file's name, fails here by name)."""
    size = path.stat().st_size
    with path.open("rb") as file:
        head = file.read(4)
        if len(head) < 4 or head[:2] != b"\x00\x00" or head[2] not in IDX_ITEM_BYTES:
            raise DataError(
                f"{path} is not an IDX file (it starts with {head!r}, not 0x00 0x00 <type> <dims>); it may be "
                f"an error page or another format. {REDOWNLOAD}"
            )
        dims = file.read(4 * head[3])
    if len(dims) < 4 * head[3]:
        raise DataError(f"{path} is truncated inside its header ({size} bytes). {REDOWNLOAD}")
    shape = tuple(int.from_bytes(dims[i : i + 4], "big") for i in range(0, len(dims), 4))
    expected = 4 + len(dims) + IDX_ITEM_BYTES[head[2]] * math.prod(shape)
    if size != expected:
        state = "truncated" if size < expected else "longer than its header says"
        raise DataError(
            f"{path} is {state}: its header declares shape {shape}, which takes {expected} bytes, but the file "
            f"has {size}. {REDOWNLOAD}"
        )
    return shape


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write ``array`` (uint8) in the IDX format of the MNIST files: magic, dims, then raw bytes (to bring
    one's own images, and for tests and benchmarks that need real files without a download)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.tobytes())


def check_label_range(labels: torch.Tensor, path: Path, num_classes: int, variant: str) -> None:
    """Every label must name one of the classes; a stray value would otherwise end training mid-epoch in
    torch's cross-entropy ("Target 12 is out of bounds")."""
    bad = ((labels < 0) | (labels >= num_classes)).nonzero()
    if len(bad):
        first = int(bad[0])
        raise DataError(
            f"{path}: label {int(labels[first])} at index {first} is outside the class range 0..{num_classes - 1} "
            f"of datamodule.variant={variant} ({len(bad)} of {len(labels)} labels are). The file is corrupt or of "
            f"another dataset; {REDOWNLOAD}"
        )


def pixel_mean_std(images: torch.Tensor) -> tuple[float, float]:
    """Exact mean and std of uint8 pixels scaled to [0, 1], from a 256-bin histogram (no float copy)."""
    counts = torch.bincount(images.flatten(), minlength=256).double()
    values = torch.arange(256, dtype=torch.float64) / 255.0
    mean = (counts * values).sum() / counts.sum()
    var = (counts * (values - mean) ** 2).sum() / counts.sum()
    return mean.item(), max(var.sqrt().item(), 1e-6)


class MnistImages(TensorDataModule):
    """MNIST / Fashion-MNIST / KMNIST as ``(N, 28, 28)`` uint8 tensors in memory, with their labels: finding,
    checking and loading the IDX files, shared by every datamodule that reads them.

    Bytes stay uint8 until a batch reaches its device (4x less to copy), where they become standardised
    floats in ``on_after_batch_transfer``.
    """

    def __init__(
        self,
        variant: str = "mnist",
        data_dir: str = "data",
        download: bool = True,
        val_size: int = 5000,
        batch_size: int = 128,
        split_seed: int = 0,
    ):
        super().__init__(batch_size)
        if variant not in VARIANTS:
            raise ConfigError(f"datamodule.variant={variant!r} is unknown; choose one of {sorted(VARIANTS)}.")
        require_int("datamodule.batch_size", batch_size, 1, 128)
        require_int("datamodule.val_size", val_size, 0, 5000)
        require_int("datamodule.split_seed", split_seed, 0, 0)
        require_bool("datamodule.download", download)
        self.save_hyperparameters(logger=False)  # train() logs the resolved config itself
        self.variant = variant
        self.data_dir = Path(data_dir)
        self.class_names: list[str] = list(VARIANTS[variant].classes)
        self.mean, self.std = 0.0, 1.0

    @property
    def raw(self) -> Path:
        return raw_folder(self.data_dir, self.variant)

    def _missing_files(self) -> list[str]:
        return [name for name in IDX_FILES if not (self.raw / name).exists()]

    def prepare_data(self) -> None:
        if self.raw.exists():
            extract_gzipped(self.raw)
        if not self._missing_files():
            return
        problem = f"{self.variant} files are missing in {self.raw}: {', '.join(self._missing_files())}."
        if not self.hparams.download:
            raise DataError(f"{problem} datamodule.download=false. " + offline_hint(self.variant, self.raw))
        try:
            for train in (True, False):
                VARIANTS[self.variant](str(self.data_dir), train=train, download=True)
        except Exception as err:  # torchvision raises RuntimeError / URLError / OSError when offline
            lines = [line.strip() for line in str(err).splitlines() if line.strip()]
            reason = lines[-1] if lines else type(err).__name__  # torchvision's last line holds the cause
            raise DataError(
                f"{problem} Downloading them failed ({reason}). " + offline_hint(self.variant, self.raw)
            ) from None

    def _load(self, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        prefix = "train" if train else "t10k"
        for name in (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"):
            check_idx_file(self.raw / name)
        try:
            split = VARIANTS[self.variant](str(self.data_dir), train=train, download=False)
        except Exception as err:
            raise DataError(
                f"Could not read the {self.variant} {'training' if train else 'test'} IDX files in {self.raw} "
                f"({type(err).__name__}: {err}). They may be truncated or corrupt: delete them and download "
                "again, or copy intact files there."
            ) from None
        images, labels = split.data, split.targets
        if (
            images.dim() != 3
            or tuple(images.shape[1:]) != (28, 28)
            or images.shape[0] != labels.shape[0]
            or images.dtype != torch.uint8
        ):
            raise DataError(
                f"{self.raw}: expected uint8 images of shape (N, 28, 28) and N labels, got images "
                f"{tuple(images.shape)} {images.dtype} and {labels.shape[0]} labels."
            )
        labels = labels.long()
        check_label_range(
            labels, self.raw / f"{prefix}-labels-idx1-ubyte", len(self.class_names), self.variant
        )
        return images, labels

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        self.prepare_data()  # idempotent; makes setup work when called outside a Trainer
        images, labels = self._load(train=True)
        val = self.hparams.val_size
        if val >= len(images):
            raise ConfigError(
                f"datamodule.val_size={val} leaves no training images: {self.raw} holds {len(images)}."
            )
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(self.hparams.split_seed))
        train_idx, val_idx = order[val:], order[:val]
        self.mean, self.std = pixel_mean_std(images[train_idx])
        self.datasets["train"] = TensorBatchDataset(images[train_idx], labels[train_idx])
        self.datasets["val"] = TensorBatchDataset(images[val_idx], labels[val_idx])
        self.datasets["test"] = TensorBatchDataset(*self._load(train=False))

    def standardise(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 ``(batch, 28, 28)`` -> floats with the training pixels' mean 0 and std 1."""
        return (images.float() / 255.0 - self.mean) / self.std

    def on_after_batch_transfer(self, batch: tuple[torch.Tensor, torch.Tensor], dataloader_idx: int):
        images, labels = batch
        return self.standardise(images), labels


class MnistRows(MnistImages):
    """MNIST-family images read row by row: ``(batch, time=rows, features=cols)``, one label per image."""

    input_size = 28
    output_size = 10
    per_step = False
