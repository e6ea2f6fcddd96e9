"""Reading a user's table (CSV or Parquet) into a checked pandas DataFrame: the file exists, the columns the
config names are there, and the value columns hold numbers. Every refusal is one ``DataError`` paragraph that
names the file and the column (and, for a missing column, the columns the file has).

Paths name a plain file or data that an installed package ships (``rnnexp.data.data_paths``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from rnnexp.errors import DataError

TABLE_SUFFIXES = (".csv", ".parquet", ".pq")


def read_table(path: Path, key: str) -> pd.DataFrame:
    """A CSV (header row) or Parquet file as a DataFrame; a missing or unreadable file is a ``DataError``."""
    if not path.is_file():
        raise DataError(f"{key}: {path} does not exist; give the path of a .csv or .parquet file.")
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise DataError(
            f"{key}: {path} has suffix {suffix!r}; rnnexp reads tables from {list(TABLE_SUFFIXES)} files."
        )
    try:
        if suffix == ".csv":
            return pd.read_csv(path)
        try:
            import pyarrow  # noqa: F401  (pandas' Parquet engine)
        except ImportError as err:
            raise DataError(
                f"{key}: reading {path} needs pyarrow; pip install 'rnnexp[series]' (or pip install pyarrow)."
            ) from err
        return pd.read_parquet(path)
    except DataError:
        raise
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DataError(f"{key}: {path} is not a readable {suffix[1:]} table ({reason}).") from None


def require_columns(frame: pd.DataFrame, columns: Sequence[str], path: Path, keys: Sequence[str]) -> None:
    """Every named column is in ``frame``; else name the missing one, the config key, and the columns found."""
    for column, key in zip(columns, keys, strict=True):
        if column not in frame.columns:
            found = ", ".join(repr(str(c)) for c in frame.columns)
            raise DataError(f"{key}={column!r}: {path} has no column {column!r}; its columns are {found}.")


def require_numeric(frame: pd.DataFrame, columns: Sequence[str], path: Path, keys: Sequence[str]) -> None:
    """Value columns must hold numbers: a text, categorical or boolean column is refused by name."""
    for column, key in zip(columns, keys, strict=True):
        series = frame[column]
        if pd.api.types.is_bool_dtype(series) or not pd.api.types.is_numeric_dtype(series):
            sample = series.dropna().iloc[0] if series.notna().any() else None
            raise DataError(
                f"{key}: column {column!r} of {path} holds {series.dtype} values (e.g. {sample!r}), not "
                "numbers; rnnexp reads numeric columns only: encode it as numbers, or leave it out of "
                f"{key.rsplit('.', 1)[0]}.target/features."
            )


def row_list(rows: Sequence[int], limit: int = 8) -> str:
    """``"3, 17, 40"`` (data rows counted from 0, the header excluded), the first ``limit`` of them."""
    shown = ", ".join(str(int(r)) for r in list(rows)[:limit])
    return shown + (f" (and {len(rows) - limit} more)" if len(rows) > limit else "")
