"""Train/val/test sizes from fractions, checked where the config enters."""

from __future__ import annotations

from rnnexp.errors import ConfigError


def split_sizes(total: int, val_fraction: float, test_fraction: float = 0.0) -> tuple[int, int, int]:
    """``(train, val, test)`` counts; each non-zero fraction gets at least one example."""
    for key, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= value < 1.0:
            raise ConfigError(f"datamodule.{key}={value!r} must be in [0, 1).")
    val = max(1, round(total * val_fraction)) if val_fraction > 0 else 0
    test = max(1, round(total * test_fraction)) if test_fraction > 0 else 0
    train = total - val - test
    if train <= 0:
        raise ConfigError(
            f"datamodule: {total} examples leave none for training after val_fraction={val_fraction} and "
            f"test_fraction={test_fraction}; lower the fractions or use more data."
        )
    return train, val, test
