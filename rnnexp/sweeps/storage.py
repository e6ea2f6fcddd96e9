"""Where an Optuna study lives, named by one string that the sweeper, each trial's job and the review share:
an RDB URL (``sqlite:///...``, ``postgresql://...``) or ``journal:///<file>`` for Optuna's journal file
storage (many workers on a shared filesystem without a database server)."""

from __future__ import annotations

import optuna
from optuna.storages import BaseStorage

JOURNAL_PREFIX = "journal://"


def open_storage(url: str | None) -> BaseStorage | str | None:
    """What ``optuna.create_study(storage=...)`` / ``load_study`` accept for ``url``."""
    if url is None or not url.startswith(JOURNAL_PREFIX):
        return url
    from optuna.storages.journal import JournalFileBackend

    path = url.removeprefix(JOURNAL_PREFIX)
    # journal:///abs/path -> /abs/path; journal://relative/path -> relative/path
    return optuna.storages.JournalStorage(JournalFileBackend(path))


def load_study(study_name: str, storage: str) -> optuna.Study:
    return optuna.load_study(study_name=study_name, storage=open_storage(storage))
