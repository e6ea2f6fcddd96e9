"""Write a TSV of human-written dates and their ISO form (``"tue 3 march 1998<TAB>1998-03-03"``) for
``datamodule=char_pairs datamodule.path=...``: the held-out task of issue 23, generated so it can be rebuilt
anywhere without a download.

    python -m benchmarks.dates_pairs --out data/dates.tsv --count 20000 --seed 0

Dates are drawn uniformly from 1950-01-01 to 2049-12-31 and written in one of the formats of ``FORMATS``
(day-first or month-name formats only, so that every source has one reading); each source appears once.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import numpy as np

FORMATS = (
    "%d %B %Y",  # 03 March 1998
    "%d %b %Y",  # 03 Mar 1998
    "{day} %B %Y",  # 3 March 1998
    "{day} %b %Y",  # 3 Mar 1998
    "%B {day}, %Y",  # March 3, 1998
    "%b {day}, %Y",  # Mar 3, 1998
    "%B {day} %Y",  # March 3 1998
    "%A, {day} %B %Y",  # Tuesday, 3 March 1998
    "%a {day} %b %Y",  # Tue 3 Mar 1998
    "%A, %B {day}, %Y",  # Tuesday, March 3, 1998
    "%d.%m.%Y",  # 03.03.1998
    "%d.%m.%y",  # 03.03.98
    "{day}/{month}/%Y",  # 3/3/1998 (day first)
    "%d-%b-%Y",  # 03-Mar-1998
)
FIRST, DAYS = dt.date(1950, 1, 1), 36524  # 1950-01-01 .. 2049-12-31


def human_date(date: dt.date, pattern: str, lower: bool) -> str:
    text = date.strftime(pattern.format(day=date.day, month=date.month))
    return text.lower() if lower else text


def date_pairs(count: int, seed: int) -> list[tuple[str, str]]:
    """``count`` distinct (human-written, ISO) pairs; about a third of the sources are lower case."""
    rng = np.random.default_rng(seed)
    seen: dict[str, str] = {}
    while len(seen) < count:
        offsets = rng.integers(0, DAYS + 1, size=count)
        patterns = rng.integers(0, len(FORMATS), size=count)
        lowers = rng.random(count) < 1 / 3
        for offset, pattern, lower in zip(offsets.tolist(), patterns.tolist(), lowers.tolist(), strict=True):
            date = FIRST + dt.timedelta(days=offset)
            seen.setdefault(human_date(date, FORMATS[pattern], lower), date.isoformat())
            if len(seen) == count:
                break
    return list(seen.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        "".join(f"{a}\t{b}\n" for a, b in date_pairs(args.count, args.seed)), encoding="utf-8"
    )
    print(f"{args.count} pairs written to {args.out}")


if __name__ == "__main__":
    main()
