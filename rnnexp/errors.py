"""User-facing errors: one paragraph that names the bad value and the fix, never a deep traceback."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager


class RnnexpError(Exception):
    """Base class for errors caused by the user's input rather than by a bug in rnnexp."""


class ConfigError(RnnexpError, ValueError):
    """A config value is impossible; the message names the key (e.g. ``model.hidden_size``)."""


class DataError(RnnexpError, RuntimeError):
    """A dataset is missing, unreadable or malformed; the message names the file and what to do."""


class TrainingError(RnnexpError, RuntimeError):
    """Training cannot go on (e.g. the loss became NaN); the message says where and why."""


@contextmanager
def explained_exit() -> Iterator[None]:
    """Around code that Hydra runs outside a job (a sweeper, a Hydra callback): an RnnexpError is logged as
    its one paragraph and the process exits with status 1. Raised on, Hydra would print it inside its own
    traceback; ``SystemExit`` passes through Hydra untouched."""
    try:
        yield
    except RnnexpError as err:
        logging.getLogger("rnnexp").error("%s", err)
        raise SystemExit(1) from None
