"""Review a sweep: every job of a multirun or Optuna directory as a table row (overrides, status, metrics,
time), learning curves overlaid, the best run, the effect of each swept parameter, and a static report.

    python -m rnnexp.review logs/train/multiruns/<time> --out report.html     (or --out report.png)
    python -m rnnexp.review DIR_A DIR_B --replicate-keys seed datamodule.seed   (sweeps of different days)

Runs that differ only in their replicate keys (default: the runs' ``replicate_keys`` config, i.e. ``seed``)
are one group: the groups' comparison is printed and written as comparison.csv/.json beside the report.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rnnexp.errors import DataError
from rnnexp.sweeps.comparison import compare_groups, print_comparison, write_comparison
from rnnexp.sweeps.records import load_sweep
from rnnexp.sweeps.report import check_report_path, print_runs_table, terminal, write_report


def check_replicate_keys(keys: list[str], overrides: list[str]) -> None:
    """Each ``--replicate-keys`` key must be an override of some job: a key no job sets cannot tell
    replicates apart, and would be accepted as if it had."""
    unknown = [key for key in keys if key not in overrides]
    if unknown:
        raise DataError(
            f"--replicate-keys {' '.join(unknown)}: no job of the sweep overrides "
            f"{'it' if len(unknown) == 1 else 'them'}, so it cannot tell replicates apart; the jobs' overrides "
            f"are {', '.join(overrides) or 'none'}. Name one of those (e.g. --replicate-keys seed)."
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rnnexp.review", description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dirs", nargs="+", type=Path, help="multirun directories (several: one study)")
    parser.add_argument(
        "--out", type=Path, help="report.html or report.png (default: <sweep dir>/report.html)"
    )
    parser.add_argument(
        "--replicate-keys", nargs="+", help="overrides whose values make replicates (default: seed)"
    )
    args = parser.parse_args(argv)
    try:
        if args.out is not None:
            check_report_path(args.out)
        runs = load_sweep(*args.sweep_dirs)
        if args.replicate_keys:
            check_replicate_keys(args.replicate_keys, runs.attrs["overrides"])
            runs.attrs["replicate_keys"] = args.replicate_keys
        console = terminal()
        print_runs_table(runs, console)
        table = compare_groups(runs)
        print_comparison(table, console)
        out = write_report(args.sweep_dirs, args.out or args.sweep_dirs[0] / "report.html", runs)
        csv_path, json_path = write_comparison(table, out.parent)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"report written to {out}; group comparison in {csv_path} and {json_path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
