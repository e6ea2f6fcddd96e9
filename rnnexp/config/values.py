"""Checks of single values, each raising ConfigError with the key, the bad value and what would fit."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from rnnexp.errors import ConfigError


def fail(key: str, value: Any, needs: str, example: str | None = None) -> None:
    fix = f" (e.g. {key}={example})" if example is not None else ""
    raise ConfigError(f"{key}={value!r} is not valid: it must be {needs}{fix}.")


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def require_int(key: str, value: Any, minimum: int, example: Any, allow: Iterable[Any] = ()) -> None:
    """An integer >= ``minimum``, or one of ``allow`` (e.g. -1 for "no limit", None)."""
    allowed = list(allow)
    if value in allowed and (value is None or is_int(value)):
        return
    if not is_int(value) or value < minimum:
        extra = "".join(f" or {a!r}" for a in allowed)
        fail(key, value, f"an integer >= {minimum}{extra}", example)


def require_number(
    key: str,
    value: Any,
    example: Any,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    allow_none: bool = False,
) -> None:
    """A number within ``[low, high]`` (ends excluded where ``*_open``)."""
    if value is None and allow_none:
        return
    ok = is_number(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        span = f"a number in {left}{'-inf' if low is None else low}, {'inf' if high is None else high}{right}"
        fail(key, value, span + (" or null" if allow_none else ""), example)


def require_choice(key: str, value: Any, choices: Sequence[Any]) -> None:
    if value not in choices:
        fail(key, value, f"one of {list(choices)}", repr(choices[0]).strip("'"))


def require_bool(key: str, value: Any) -> None:
    if not isinstance(value, bool):
        fail(key, value, "true or false", "true")
