"""Time-series classification from a user's files or the UCR/UEA archive (formats: ``rnnexp.data.series_files``).

Batches: inputs ``(batch, longest, channels)`` float32, right-padded with zeros, labels ``(batch,)`` int64,
and, when a split's series differ in length, ``lengths`` ``(batch,)`` int64 (the network packs them, so
padding never changes a prediction; ``model.pooling=mean`` averages real steps only). Class names are the
training labels, sorted (numerically when they are all numbers), and are shown in the confusion matrix.

The archive's own split is kept: ``test_path`` is the test split; validation is carved from the training file
(stratified by class, ``split_seed``). Without ``test_path`` the test split is carved the same way.
Normalisation (``normalize``): ``series`` z-normalises each series per channel over its own real steps (the
UCR convention), ``channel`` uses per-channel statistics of the training split only (stored in checkpoints as
the datamodule's state), ``none`` keeps the values.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from rnnexp.config.values import require_choice, require_int, require_number
from rnnexp.data.batching import TensorBatchDataset
from rnnexp.data.data_paths import resolve_data_path
from rnnexp.data.series_files import LabelledSeries, read_labelled_series
from rnnexp.data.tensor_datamodule import TensorDataModule
from rnnexp.errors import ConfigError, DataError

NORMALIZE = ("series", "channel", "none")


def sorted_classes(labels: np.ndarray) -> list[str]:
    """Distinct labels, numerically sorted when every label is a number, else alphabetically."""
    distinct = sorted(set(labels.tolist()))
    try:
        return sorted(distinct, key=float)
    except ValueError:
        return distinct


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(kept, carved)`` indices: ``round(fraction * n_c)`` of each class ``c`` carved (at least one when the
    class has two or more members), drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    carved = []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        take = round(fraction * len(members))
        if take == 0 and len(members) > 1 and fraction > 0:
            take = 1
        carved.append(members[:take])
    out = np.sort(np.concatenate(carved)) if carved else np.array([], dtype=np.int64)
    kept = np.setdiff1d(np.arange(len(labels)), out)
    return kept, out


def real_steps(lengths: torch.Tensor, longest: int) -> torch.Tensor:
    """``(count, longest, 1)`` bool mask of real steps."""
    return (torch.arange(longest)[None, :] < lengths[:, None]).unsqueeze(-1)


class SeriesClassification(TensorDataModule):
    """Labelled series from ``path`` (and ``test_path``) as padded tensors in memory."""

    per_step = False

    def __init__(
        self,
        path: str,
        test_path: str | None = None,
        label: str = "label",
        series_id: str | None = None,
        time: str | None = None,
        channels: list[str] | None = None,
        normalize: str = "series",
        val_fraction: float = 0.2,
        test_fraction: float = 0.2,
        split_seed: int = 0,
        batch_size: int = 32,
    ):
        super().__init__(batch_size)
        require_choice("datamodule.normalize", normalize, NORMALIZE)
        require_int("datamodule.batch_size", batch_size, 1, 32)
        require_int("datamodule.split_seed", split_seed, 0, 0)
        for key, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
            require_number(f"datamodule.{key}", value, 0.2, low=0.0, high=1.0, low_open=True, high_open=True)
        if test_path is None and val_fraction + test_fraction >= 1.0:
            raise ConfigError(
                f"datamodule.val_fraction={val_fraction} + datamodule.test_fraction={test_fraction} leave "
                "nothing to train on; their sum must be below 1 (or give datamodule.test_path)."
            )
        channels = list(channels) if channels is not None else None  # plain list: weights-only checkpoints
        self.save_hyperparameters(logger=False)
        self.class_names: list[str] = []
        self.channels = 0
        self.stats: dict[str, torch.Tensor] = {}  # normalize=channel: per-channel mean/std of train

    @property
    def input_size(self) -> int:
        self.read()
        return self.channels

    @property
    def output_size(self) -> int:
        self.read()
        return len(self.class_names)

    def read_file(self, value: str, key: str) -> LabelledSeries:
        hp = self.hparams
        path = resolve_data_path(value, key)
        return read_labelled_series(path, hp.label, hp.series_id, hp.time, hp.channels, key)

    def read(self) -> None:
        """Read, split and normalise once (the network's sizes need the class count before ``setup``)."""
        if self.datasets:
            return
        hp = self.hparams
        train = self.read_file(hp.path, "datamodule.path")
        test = self.read_file(hp.test_path, "datamodule.test_path") if hp.test_path is not None else None
        if test is not None and test.values.shape[2] != train.values.shape[2]:
            raise DataError(
                f"datamodule.test_path: {hp.test_path} has {test.values.shape[2]} channels but "
                f"{hp.path} has {train.values.shape[2]}; give the test file of the same dataset."
            )
        self.class_names = sorted_classes(train.labels)
        if len(self.class_names) < 2:
            raise DataError(
                f"datamodule.path: {hp.path} has a single class {self.class_names}; classification needs two or more."
            )
        index = {name: i for i, name in enumerate(self.class_names)}
        if test is not None:
            unknown = sorted(set(test.labels.tolist()) - set(index))
            if unknown:
                raise DataError(
                    f"datamodule.test_path: {hp.test_path} has labels {unknown} that the training file "
                    f"{hp.path} never has (its classes: {self.class_names}); give the matching training file."
                )
        kept, val = stratified_split(train.labels, hp.val_fraction, hp.split_seed)
        parts = {"val": val}
        if test is None:
            sub_kept, sub_test = stratified_split(
                train.labels[kept], hp.test_fraction / (1 - hp.val_fraction), hp.split_seed + 1
            )
            parts["train"], parts["test"] = kept[sub_kept], kept[sub_test]
        else:
            parts["train"] = kept
        longest = max(train.values.shape[1], test.values.shape[1] if test is not None else 0)
        self.channels = train.values.shape[2]
        splits: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
        for name in ("train", "val", "test"):
            source, rows = (
                (test, np.arange(len(test.labels)))
                if (name == "test" and test is not None)
                else (train, parts[name])
            )
            if len(rows) == 0:
                raise DataError(
                    f"datamodule: the {name} split of {hp.path} is empty ({len(train.labels)} training series); "
                    f"raise datamodule.{name}_fraction or give more series."
                )
            values = torch.from_numpy(np.nan_to_num(source.values[rows], nan=0.0))
            values = torch.nn.functional.pad(values, (0, 0, 0, longest - values.shape[1]))
            lengths = torch.from_numpy(source.lengths[rows])
            labels = torch.tensor([index[label] for label in source.labels[rows].tolist()], dtype=torch.int64)
            splits[name] = (values, labels, lengths)
        self.normalise(splits)
        for name, (values, labels, lengths) in splits.items():
            tensors = (values.float(), labels)
            if bool((lengths != values.shape[1]).any()):
                tensors = (*tensors, lengths)  # variable length: (inputs, targets, lengths) batches
            self.datasets[name] = TensorBatchDataset(*tensors)

    def normalise(self, splits: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]) -> None:
        """In place, per ``normalize``; padded steps stay zero."""
        how = self.hparams.normalize
        if how == "none":
            return
        if how == "channel":
            values, _, lengths = splits["train"]
            mask = real_steps(lengths, values.shape[1])
            count = mask.sum()
            mean = (values * mask).sum((0, 1)) / count
            std = (((values - mean) * mask).pow(2).sum((0, 1)) / count).sqrt()
            self.stats = {"mean": mean, "std": torch.where(std > 0, std, torch.ones_like(std))}
        for name, (values, labels, lengths) in splits.items():
            mask = real_steps(lengths, values.shape[1])
            if how == "channel":
                mean, std = self.stats["mean"], self.stats["std"]
            else:
                count = lengths.view(-1, 1, 1).to(values.dtype)
                mean = (values * mask).sum(1, keepdim=True) / count
                std = (((values - mean) * mask).pow(2).sum(1, keepdim=True) / count).sqrt()
                std = torch.where(std > 0, std, torch.ones_like(std))
            splits[name] = (((values - mean) / std) * mask, labels, lengths)

    def setup(self, stage: str | None = None) -> None:
        self.read()

    def state_dict(self) -> dict[str, Any]:
        """Class names and (``normalize=channel``) the training statistics, kept in every checkpoint."""
        return {"class_names": list(self.class_names), **self.stats}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        stored = state.get("class_names")
        if self.class_names and stored is not None and list(stored) != self.class_names:
            raise DataError(
                f"The checkpoint was trained on classes {list(stored)} but {self.hparams.path} now has "
                f"{self.class_names}; resume with the same data."
            )
