"""Time-series classification from files (datamodule=series_classification): the UCR/UEA formats and tables
give the same tensors, variable lengths are packed, normalisation is per series or per channel from train
only, class names reach the confusion matrix, and a variable-length two-channel .ts file is learned."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from rnnexp.data.series_classification import SeriesClassification, stratified_split
from rnnexp.training import train
from tests.conftest import compose_config

CLASSES = ("up", "down", "flat")


def toy_series(count: int, seed: int, channels: int = 2, lengths: tuple[int, int] = (8, 24)):
    """``count`` series ``(channels, length_i)`` and labels: channel 0 rises, falls or stays flat (noisy),
    the other channels are noise; lengths drawn from ``lengths`` (equal when both ends are equal)."""
    rng = np.random.default_rng(seed)
    series, labels = [], []
    for i in range(count):
        label = CLASSES[i % 3]
        length = int(rng.integers(lengths[0], lengths[1] + 1))
        slope = {"up": 1.0, "down": -1.0, "flat": 0.0}[label]
        values = 0.3 * rng.standard_normal((channels, length))
        values[0] += slope * np.linspace(0, 3, length) + rng.normal()
        series.append(values)
        labels.append(label)
    return series, labels


def write_ts(path: Path, series: list[np.ndarray], labels: list[str]) -> Path:
    """The UEA/UCR .ts format, as the archive writes it (``@equalLength false`` for varying lengths)."""
    equal = len({s.shape[1] for s in series}) == 1
    header = [
        "@problemName toy", "@timeStamps false", "@missing false", f"@univariate {str(series[0].shape[0] == 1).lower()}",
        f"@dimensions {series[0].shape[0]}", f"@equalLength {str(equal).lower()}",
        *([f"@seriesLength {series[0].shape[1]}"] if equal else []),
        f"@classLabel true {' '.join(sorted(set(labels)))}", "@data",
    ]  # fmt: skip
    lines = [
        ":".join(",".join(f"{v:.6f}" for v in channel) for channel in s) + f":{y}"
        for s, y in zip(series, labels, strict=True)
    ]
    path.write_text("\n".join([*header, *lines]) + "\n")
    return path


def test_a_variable_length_two_channel_ts_file_trains_and_classifies_above_chance(tmp_path):
    train_path = write_ts(tmp_path / "toy_TRAIN.ts", *toy_series(150, 0))
    test_path = write_ts(tmp_path / "toy_TEST.ts", *toy_series(60, 1))
    overrides = ["datamodule=series_classification", f"datamodule.path={train_path}",
                 f"datamodule.test_path={test_path}", "datamodule.batch_size=16", "model=gru",
                 "model.hidden_size=16", "model.pooling=mean", "optimizer.lr=0.01", "trainer.max_epochs=12",
                 "~callbacks.progress_bar", "+trainer.enable_progress_bar=false",
                 "trainer.enable_model_summary=false", "print_config=false", "num_threads=1"]  # fmt: skip
    results, objects = train(compose_config(overrides, tmp_path / "run"))
    datamodule = objects["datamodule"]
    assert datamodule.class_names == ["down", "flat", "up"]
    inputs, _, lengths = datamodule.datasets["test"].tensors  # variable length: lengths travel along
    assert inputs.shape[2] == 2 and int(lengths.min()) >= 8 and inputs.shape[1] == int(lengths.max())
    assert results["test"]["test/acc"] > 0.75, results["test"]  # chance: 1/3
    matrix = np.array(results["test_confusion_matrix"])
    assert matrix.shape == (3, 3) and matrix.sum() == 60
    assert (tmp_path / "run" / "figures" / "test_confusion_matrix.png").is_file()


def ucr_rows(series: list[np.ndarray], labels: list[str]) -> pd.DataFrame:
    longest = max(s.shape[1] for s in series)
    rows = np.full((len(series), longest), np.nan)
    for i, s in enumerate(series):
        rows[i, : s.shape[1]] = s[0]
    return pd.DataFrame(rows).assign(label=labels)


@pytest.mark.parametrize("normalize", ["series", "none"])
def test_ts_tsv_wide_and_long_tables_give_the_same_tensors(tmp_path, normalize):
    series, labels = toy_series(30, 2, channels=1)
    write_ts(tmp_path / "a.ts", series, labels)
    wide = ucr_rows(series, labels)
    wide[["label", *range(wide.shape[1] - 1)]].to_csv(tmp_path / "a.tsv", sep="\t", header=False, index=False)
    wide.rename(columns=lambda c: f"t{c}" if c != "label" else c).to_csv(tmp_path / "wide.csv", index=False)
    long = pd.DataFrame([{"id": f"s{i}", "step": t, "x": v, "label": y}
                         for i, (s, y) in enumerate(zip(series, labels, strict=True)) for t, v in enumerate(s[0])])  # fmt: skip
    long.sample(frac=1.0, random_state=0).to_parquet(
        tmp_path / "long.parquet"
    )  # rows shuffled: time orders them
    made = {}
    for name, extra in (("a.ts", {}), ("a.tsv", {}), ("wide.csv", {}),
                        ("long.parquet", {"series_id": "id", "time": "step"})):  # fmt: skip
        dm = SeriesClassification(
            path=str(tmp_path / name), normalize=normalize, val_fraction=0.2, test_fraction=0.2, **extra
        )
        dm.setup("fit")
        made[name] = dm
    reference = made["a.ts"]
    for name, dm in made.items():
        if name == "long.parquet":
            continue  # series order follows first appearance in the shuffled file; compared as sets below
        assert dm.class_names == reference.class_names
        for split in ("train", "val", "test"):
            for a, b in zip(dm.datasets[split].tensors, reference.datasets[split].tensors, strict=True):
                torch.testing.assert_close(a, b, msg=f"{name} {split}")
    long_all = torch.cat(
        [made["long.parquet"].datasets[s].tensors[0].flatten(1) for s in ("train", "val", "test")]
    )
    ref_all = torch.cat([reference.datasets[s].tensors[0].flatten(1) for s in ("train", "val", "test")])
    np.testing.assert_allclose(
        np.array(sorted(map(tuple, long_all.tolist()))),
        np.array(sorted(map(tuple, ref_all.tolist()))),
        atol=1e-5,
    )


def test_normalisation_per_series_and_per_channel_from_train_only(tmp_path):
    series, labels = toy_series(40, 3)
    path = write_ts(tmp_path / "a.ts", series, labels)
    dm = SeriesClassification(path=str(path), normalize="series")
    dm.setup("fit")
    inputs, _, lengths = dm.datasets["train"].tensors
    for row in range(3):
        real = inputs[row, : lengths[row]]
        torch.testing.assert_close(real.mean(0), torch.zeros(2), atol=1e-5, rtol=0)
        torch.testing.assert_close(real.std(0, correction=0), torch.ones(2), atol=1e-4, rtol=0)
        assert torch.all(inputs[row, lengths[row] :] == 0)  # padding stays zero
    dm = SeriesClassification(path=str(path), normalize="channel")
    dm.setup("fit")
    kept, _ = stratified_split(np.array(labels), 0.2, 0)
    kept_set = set(kept.tolist())
    sub_kept, _ = stratified_split(np.array(labels)[kept], 0.2 / 0.8, 1)
    train_rows = kept[sub_kept]
    assert kept_set and len(train_rows) == dm.datasets["train"].tensors[0].shape[0]
    steps = np.concatenate([series[i] for i in train_rows], axis=1)
    torch.testing.assert_close(dm.stats["mean"], torch.from_numpy(steps.mean(1)))
    assert set(dm.state_dict()) == {"class_names", "mean", "std"}


def test_validation_is_carved_from_train_with_the_seed_and_keeps_every_class():
    labels = np.array(["a"] * 10 + ["b"] * 5)
    kept, val = stratified_split(labels, 0.2, seed=4)
    assert sorted(labels[val].tolist()) == ["a", "a", "b"]
    assert np.array_equal(stratified_split(labels, 0.2, seed=4)[1], val)
    assert not np.array_equal(stratified_split(labels, 0.2, seed=5)[1], val)
    assert len(set(kept) | set(val)) == 15 and not set(kept) & set(val)
