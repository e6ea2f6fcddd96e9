"""The sweep tables on the terminal: the jobs table a sweep prints when it ends and the review prints. Kept
apart from ``rnnexp.sweeps.report`` (matplotlib, optuna) so that a sweep's summary imports only rich and
pandas."""

from __future__ import annotations

import sys

import pandas as pd
from rich.console import Console
from rich.table import Table

from rnnexp.sweeps.records import swept_parameters


def print_runs_table(runs: pd.DataFrame, console: Console) -> None:
    """The runs table on the terminal (swept parameters, objective, time), then why each failed job failed
    (a pruned job is not a failure: its status says so)."""
    params = swept_parameters(runs)
    short = {p: p.rsplit(".", 1)[-1] for p in params}
    if len(set(short.values())) < len(short):  # e.g. model.dropout and task.dropout: keep full names
        short = {p: p for p in params}
    table = Table(title=f"{len(runs)} jobs, objective {runs.attrs.get('optimized_metric')}")
    for column in ("job", "status", *short.values(), "objective", "time (s)"):
        table.add_column(column)
    for _, row in runs.iterrows():
        cells = [row["job"], row["status"], *(row[p] for p in params), row["objective"], row["duration_s"]]
        table.add_row(*("" if pd.isna(c) else f"{c:.3g}" if isinstance(c, float) else str(c) for c in cells))
    console.print(table)
    for line in runs.attrs.get("environment_differences", []):
        console.print(f"[yellow]warning[/]: {line}; results differ for that reason too", highlight=False)
    for _, row in runs[~runs["status"].isin(["completed", "pruned"])].iterrows():
        console.print(
            f"job {row['job']} {row['status']}: {row['error'] or 'no error recorded'}", highlight=False
        )


def terminal() -> Console:
    """A console for tables: the terminal's width, or 160 columns when the output goes to a file or a log."""
    return Console() if sys.stdout.isatty() else Console(width=160)
