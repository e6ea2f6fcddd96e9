"""User-facing errors: one paragraph that names the bad value and the fix, never a deep traceback."""


class RnnexpError(Exception):
    """Base class for errors caused by the user's input rather than by a bug in rnnexp."""


class ConfigError(RnnexpError, ValueError):
    """A config value is impossible; the message names the key (e.g. ``model.hidden_size``)."""


class DataError(RnnexpError, RuntimeError):
    """A dataset is missing, unreadable or malformed; the message names the file and what to do."""


class TrainingError(RnnexpError, RuntimeError):
    """Training cannot go on (e.g. the loss became NaN); the message says where and why."""
