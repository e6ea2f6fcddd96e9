"""Labelled series from files, in the formats the UCR/UEA time-series-classification archive and users keep
them, into one layout: ``LabelledSeries(values (count, longest, channels) float64 right-padded with NaN,
lengths (count,), labels)``.

- ``.ts`` (UEA/UCR, univariate or multivariate, equal or variable length): aeon's reader
  (``aeon.datasets.load_from_ts_file``), the archive maintainers' own.
- ``.tsv`` (UCR 2018): no header, the label first, then the values; shorter series end in
  empty cells (NaN).
- ``.csv`` / ``.parquet`` with a header: wide (a ``label`` column and one numeric column per step, shorter
  series ending in empty cells) or, with ``series_id``, long (a row per series and step: id, optional time,
  channel columns, label).

A value missing inside a series (not at its end) is refused with the series' index.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from rnnexp.data.tables import read_table, require_columns, require_numeric, row_list
from rnnexp.errors import DataError

SUFFIXES = (".ts", ".tsv", ".csv", ".parquet", ".pq")


@dataclass
class LabelledSeries:
    values: np.ndarray  # (count, longest, channels) float64, NaN after each series' end
    lengths: np.ndarray  # (count,) int64
    labels: np.ndarray  # (count,) str


def label_text(labels: pd.Series | np.ndarray) -> np.ndarray:
    """Labels as strings; whole numbers stored as floats (``1.0``) read as ``"1"``."""
    series = pd.Series(labels)
    if pd.api.types.is_float_dtype(series) and np.all(np.mod(series.dropna(), 1) == 0):
        series = series.astype("Int64")
    return series.astype(str).to_numpy()


def series_lengths(values: np.ndarray, path: Path) -> np.ndarray:
    """Real steps of each series of ``values`` ``(count, steps, channels)`` that end in NaN padding; a
    missing value before a series' end (in any channel), or an empty series, is refused."""
    some = ~np.isnan(values).all(axis=2)  # (count, steps): a step with any value
    every = ~np.isnan(values).any(axis=2)  # a step with every channel's value
    lengths = np.where(some.any(axis=1), values.shape[1] - np.argmax(some[:, ::-1], axis=1), 0)
    bad = np.flatnonzero((every.sum(axis=1) != lengths) | (lengths == 0))
    if len(bad):
        raise DataError(
            f"{path}: series {row_list(bad)} (counted from 0) have missing values before their end, or no "
            "values; only the end of a series may be empty (a shorter series). Fill or remove them."
        )
    return lengths.astype(np.int64)


def read_ts(path: Path) -> LabelledSeries:
    """A ``.ts`` file through aeon's reader."""
    try:
        from aeon.datasets import load_from_ts_file
    except ImportError as err:
        raise DataError(
            f"{path}: reading .ts files needs aeon; pip install 'rnnexp[series]' (or pip install aeon)."
        ) from err
    try:
        data, labels = load_from_ts_file(str(path))
    except Exception as err:  # aeon raises IOError, ValueError, TypeError... for a malformed file
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DataError(f"{path} is not a readable .ts file (aeon: {reason}).") from None
    series = [np.asarray(x, dtype=np.float64) for x in data]  # each (channels, length)
    channels = {s.shape[0] for s in series}
    if len(channels) != 1:
        raise DataError(f"{path}: its series have different numbers of channels ({sorted(channels)}).")
    longest = max(s.shape[1] for s in series)
    values = np.full((len(series), longest, channels.pop()), np.nan)
    for i, s in enumerate(series):  # aeon gives a list of arrays: one copy each, at load time only
        values[i, : s.shape[1]] = s.T
    lengths = series_lengths(values, path)
    return LabelledSeries(values, np.asarray(lengths, dtype=np.int64), label_text(labels))


def read_ucr_tsv(path: Path) -> LabelledSeries:
    """UCR 2018 ``.tsv``: no header, label then values."""
    try:
        frame = pd.read_csv(path, sep="\t", header=None)
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as err:
        raise DataError(
            f"{path} is not a readable UCR table (label, then values): {str(err).splitlines()[0]}."
        ) from None
    if frame.shape[1] < 2:
        raise DataError(
            f"{path} has {frame.shape[1]} column; a UCR file has the label then the values in each row."
        )
    values = frame.iloc[:, 1:]
    require_numeric(values, list(values.columns), path, [f"value column {c}" for c in values.columns])
    padded = values.to_numpy(dtype=np.float64)[:, :, None]
    return LabelledSeries(padded, series_lengths(padded, path), label_text(frame.iloc[:, 0]))


def read_wide(frame: pd.DataFrame, path: Path, label: str, key: str) -> LabelledSeries:
    require_columns(frame, [label], path, [f"{key}.label"])
    steps = [c for c in frame.columns if c != label]
    require_numeric(frame, steps, path, [f"{key}.label (a step column)"] * len(steps))
    padded = frame[steps].to_numpy(dtype=np.float64)[:, :, None]
    return LabelledSeries(padded, series_lengths(padded, path), label_text(frame[label]))


def read_long(
    frame: pd.DataFrame,
    path: Path,
    label: str,
    series_id: str,
    time: str | None,
    channels: list[str] | None,
    key: str,
) -> LabelledSeries:
    """A row per (series, step): ``series_id``, optional ``time``, channel columns, ``label``."""
    named = [series_id, label, *([time] if time else [])]
    require_columns(
        frame, named, path, [f"{key}.series_id", f"{key}.label", *([f"{key}.time"] if time else [])]
    )
    channels = list(channels) if channels else [c for c in frame.columns if c not in named]
    require_columns(frame, channels, path, [f"{key}.channels"] * len(channels))
    require_numeric(frame, channels, path, [f"{key}.channels"] * len(channels))
    frame = frame.reset_index(drop=True)
    holes = np.flatnonzero(frame[channels].isna().any(axis=1).to_numpy())
    if len(holes):
        raise DataError(
            f"{path}: missing channel values in data rows {row_list(holes)} (counted from 0, header excluded)."
        )
    codes, ids = pd.factorize(frame[series_id], sort=False)
    order = np.lexsort((frame[time].to_numpy(), codes)) if time else np.argsort(codes, kind="stable")
    if time:
        stamps = frame[time].to_numpy()[order]
        twice = np.flatnonzero((codes[order][1:] == codes[order][:-1]) & (stamps[1:] == stamps[:-1]))
        if len(twice):
            raise DataError(
                f"{key}.time={time!r}: {path} has a time stamp twice within a series at data rows {row_list(order[twice + 1])}."
            )
    codes = codes[order]
    labels = frame[label].to_numpy()[order]
    counts = np.bincount(codes, minlength=len(ids))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    mixed = np.flatnonzero(pd.Series(labels).groupby(codes).nunique().to_numpy() > 1)
    if len(mixed):
        raise DataError(
            f"{key}.label={label!r}: in {path} series {[str(ids[i]) for i in mixed[:5]]} have more than one label."
        )
    position = np.arange(len(codes)) - starts[codes]
    values = np.full((len(ids), counts.max(), len(channels)), np.nan)
    values[codes, position] = frame[channels].to_numpy(dtype=np.float64)[order]
    return LabelledSeries(values, counts.astype(np.int64), label_text(labels[starts]))


def read_labelled_series(
    path: Path, label: str, series_id: str | None, time: str | None, channels: list[str] | None, key: str
) -> LabelledSeries:
    """Dispatch on the suffix; ``key`` (e.g. ``datamodule.path``) names the config entry in errors."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise DataError(
            f"{key}: {path} has suffix {suffix!r}; rnnexp reads labelled series from {list(SUFFIXES)} files."
        )
    if not path.is_file():
        raise DataError(f"{key}: {path} does not exist; give the path of a {'/'.join(SUFFIXES)} file.")
    if suffix == ".ts":
        return read_ts(path)
    if suffix == ".tsv":
        return read_ucr_tsv(path)
    frame = read_table(path, key)
    prefix = key.rsplit(".", 1)[0]
    if series_id:
        return read_long(frame, path, label, series_id, time, channels, prefix)
    return read_wide(frame, path, label, prefix)
