"""A table of time series (one series, or many told apart by a series-id column) → one float64 array per
series, rows in time order, checked at load time.

Problems in the file are found here, before anything is trained, and either refused with their data rows
(counted from 0, the header excluded) or handled by a choice the config states:

- a missing or unparseable time value: always refused;
- time going backwards within a series: ``unsorted=error`` refuses, ``unsorted=sort`` sorts (stable);
- a time stamp twice within a series: ``duplicates=error`` refuses, ``duplicates=first`` keeps the first row;
- a missing value (empty cell, NaN): ``missing=error`` refuses, ``missing=interpolate`` fills linearly in
  time order within its series (ends take the nearest value), ``missing=ffill`` carries the last value
  forward (a leading gap takes the first value).

Spacing is not checked: rows are taken as equally spaced steps in time order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from rnnexp.data.tables import read_table, require_columns, require_numeric, row_list
from rnnexp.errors import DataError

MISSING = ("error", "interpolate", "ffill")
UNSORTED = ("error", "sort")
DUPLICATES = ("error", "first")


@dataclass
class SeriesTable:
    """``values[i]`` is series ``ids[i]``: ``(steps_i, columns)`` float64 in time order; columns as named."""

    values: list[np.ndarray]
    ids: list[str]
    columns: list[str]


def parse_time(column: pd.Series, name: str, path: Path, key: str) -> pd.Series:
    """Numbers stay numbers; anything else is parsed as dates. Missing or unparseable values are refused."""
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        parsed = column
    else:
        parsed = pd.to_datetime(column, errors="coerce", format="mixed")
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if len(bad):
        raise DataError(
            f"{key}={name!r}: {path} has missing or unparseable time values in data rows {row_list(bad)} "
            f"(counted from 0, header excluded; e.g. {column.iloc[bad[0]]!r}); fix or remove those rows."
        )
    return parsed


def load_series_table(
    path: Path,
    columns: list[str],
    column_keys: list[str],
    time: str | None,
    series_id: str | None,
    missing: str,
    unsorted: str,
    duplicates: str,
    key: str = "datamodule.path",
) -> SeriesTable:
    """Read ``path`` and return its series; ``columns`` (targets then features) become the value columns."""
    frame = read_table(path, key)
    prefix = key.rsplit(".", 1)[0]
    named = [*columns, *([time] if time else []), *([series_id] if series_id else [])]
    named_keys = [
        *column_keys,
        *([f"{prefix}.time"] if time else []),
        *([f"{prefix}.series_id"] if series_id else []),
    ]
    require_columns(frame, named, path, named_keys)
    require_numeric(frame, columns, path, column_keys)
    if len(frame) == 0:
        raise DataError(f"{key}: {path} has a header but no data rows.")
    frame = frame.reset_index(drop=True)
    group = frame[series_id].astype(str) if series_id else pd.Series("0", index=frame.index)
    if series_id and frame[series_id].isna().any():
        bad = np.flatnonzero(frame[series_id].isna().to_numpy())
        raise DataError(
            f"{prefix}.series_id={series_id!r}: {path} has no series id in data rows {row_list(bad)}."
        )
    order = np.arange(len(frame))
    if time:
        stamps = parse_time(frame[time], time, path, f"{prefix}.time")
        backwards = np.flatnonzero((stamps < stamps.groupby(group, sort=False).shift()).to_numpy())
        if len(backwards) and unsorted == "error":
            raise DataError(
                f"{prefix}.time={time!r}: {path} is not sorted by time within each series: the time goes "
                f"backwards at data rows {row_list(backwards)} (counted from 0, header excluded); sort the file, "
                f"or set {prefix}.unsorted=sort."
            )
        keyed = pd.DataFrame({"group": group, "time": stamps})
        twice = np.flatnonzero(keyed.duplicated(keep="first").to_numpy())
        if len(twice) and duplicates == "error":
            raise DataError(
                f"{prefix}.time={time!r}: {path} has a time stamp more than once within a series at data rows "
                f"{row_list(twice)} (counted from 0, header excluded; the first occurrence is not listed); "
                f"remove them, or set {prefix}.duplicates=first to keep the first row of each time."
            )
        keep = np.ones(len(frame), dtype=bool)
        keep[twice] = False
        order = order[keep]
        if len(backwards):
            order = order[np.argsort(stamps.to_numpy()[order], kind="stable")]
    # Series in order of first appearance; a stable sort keeps each series' time order.
    codes, uniques = pd.factorize(group.iloc[order], sort=False)
    order = order[np.argsort(codes, kind="stable")]
    counts = np.bincount(codes, minlength=len(uniques))
    values = frame[columns].to_numpy(dtype=np.float64)[order]
    holes = np.isnan(values)
    if holes.any():
        if missing == "error":
            rows = np.unique(order[holes.any(axis=1)])
            first_col = columns[int(np.flatnonzero(holes.any(axis=0))[0])]
            raise DataError(
                f"{key}: {path} has missing values (e.g. in column {first_col!r}) in data rows {row_list(rows)} "
                f"(counted from 0, header excluded); fill them in, or set {prefix}.missing=interpolate (linear "
                f"in time) or {prefix}.missing=ffill (carry the last value)."
            )
        filled = pd.DataFrame(values).groupby(np.repeat(np.arange(len(counts)), counts), sort=False)
        if missing == "interpolate":
            values = filled.transform(lambda s: s.interpolate(limit_direction="both")).to_numpy()
        else:
            values = filled.transform(lambda s: s.ffill().bfill()).to_numpy()
        if np.isnan(values).any():
            raise DataError(
                f"{key}: {path} has a series whose column holds no value at all; it cannot be filled."
            )
    parts = np.split(values, np.cumsum(counts)[:-1])
    return SeriesTable(values=parts, ids=[str(u) for u in uniques], columns=list(columns))
