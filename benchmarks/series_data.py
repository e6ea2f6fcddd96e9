"""Real series, trained with the project's own recipes and ``train()``:

- ``forecast``: test MSE (data units) of rnn/lstm/gru on the airline and CO2 recipes, beside persistence
  and seasonal-naive on the same test windows, over ``--seeds``;
- ``classify``: test accuracy of rnn/lstm/gru on UCR/UEA sets (the archive's own split), over ``--seeds``;
- ``load``: time and peak memory to load a synthetic 10-million-row CSV (written here) into windows, in a
  child process so its peak resident memory is its own.

    python benchmarks/series_data.py forecast --seeds 0 1 2
    python benchmarks/series_data.py classify --recipes gunpoint basic_motions japanese_vowels --seeds 0 1 2
    python benchmarks/series_data.py load --rows 10000000
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.harness import prepare_run  # noqa: E402
from rnnexp.training import compose_config, train  # noqa: E402

QUIET = ["trainer.accelerator=cpu", "logger=csv", "~callbacks.progress_bar", "+trainer.enable_progress_bar=false",
         "trainer.enable_model_summary=false", "task.log_figures=false", "print_config=false"]  # fmt: skip


def run(recipe: str, cell: str, seed: int, extra: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = compose_config(
            [f"experiment={recipe}", f"model={cell}", f"seed={seed}", *QUIET, *extra], Path(tmp)
        )
        started = time.process_time()
        results, _ = train(cfg)
    row = {"recipe": recipe, "cell": cell, "seed": seed, "cpu_s": round(time.process_time() - started, 1),
           "epochs": results["epochs"], **results["test"]}  # fmt: skip
    print(json.dumps(row), flush=True)
    return row


def summarise(rows: list[dict], keys: list[str]) -> None:
    """Mean ± std over seeds per (recipe, cell), as a Markdown table."""
    print("\n| recipe | cell | " + " | ".join(keys) + " |")
    print("|---|---|" + "---:|" * len(keys))
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["recipe"], row["cell"]), []).append(row)
    for (recipe, cell), members in groups.items():
        cells = []
        for key in keys:
            values = [m[key] for m in members]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):.4g} ± {spread:.2g}")
        print(f"| {recipe} | {cell} | " + " | ".join(cells) + " |")


LOADER = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
from rnnexp.data.series import TimeSeries
t0 = time.perf_counter()
dm = TimeSeries(path={path!r}, target="value", features=["feature"], time="t", series_id="series",
                task="per_step", seq_len=48, stride=1, val_fraction=0.15, test_fraction=0.15)
dm.setup("fit")
t1 = time.perf_counter()
inputs, targets = dm.datasets["train"][list(range(64))]
print(json.dumps({{"setup_s": t1 - t0, "windows": {{k: len(v) for k, v in dm.datasets.items()}},
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


BASELINE = """
import json, resource, sys
sys.path.insert(0, {root!r})
import rnnexp.data.series
print(json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
"""


def load_benchmark(rows: int, series: int) -> dict:
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.csv"
        started = time.perf_counter()
        per = rows // series
        rng = np.random.default_rng(0)
        with pacsv.CSVWriter(path, pa.schema([("series", pa.string()), ("t", pa.int64()), ("value", pa.float32()),
                                              ("feature", pa.float32())])) as writer:  # fmt: skip
            for s in range(series):  # one series at a time keeps the writer's memory small
                writer.write_table(pa.table({"series": [f"s{s}"] * per, "t": np.arange(per),
                                             "value": rng.standard_normal(per, dtype=np.float32),
                                             "feature": rng.standard_normal(per, dtype=np.float32)}))  # fmt: skip
        written = time.perf_counter() - started
        size_mb = path.stat().st_size / 2**20
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        child = subprocess.run([sys.executable, "-c", LOADER.format(root=str(ROOT), path=str(path))], env=env,
                               capture_output=True, text=True, check=True)  # fmt: skip
        imports_only = BASELINE.format(root=str(ROOT))
        baseline = subprocess.run([sys.executable, "-c", imports_only], env=env, capture_output=True, text=True,
                                  check=True)  # fmt: skip
    result = {"rows": per * series, "series": series, "csv_mb": round(size_mb, 1), "write_s": round(written, 1),
              **json.loads(child.stdout.strip().splitlines()[-1]),
              "import_only_rss_mb": float(baseline.stdout.strip())}  # fmt: skip
    print(json.dumps(result), flush=True)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("part", choices=["forecast", "classify", "load"])
    parser.add_argument("--recipes", nargs="+")
    parser.add_argument("--cells", nargs="+", default=["rnn", "lstm", "gru"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, help="trainer.max_epochs (default: the recipe's)")
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--series", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    if args.part == "load":
        result = load_benchmark(args.rows, args.series)
        if args.out:
            args.out.write_text(json.dumps(result, indent=2))
        return
    prepare_run("cpu", args.threads)
    default = ["airline_forecast", "co2_forecast"] if args.part == "forecast" else ["gunpoint", "basic_motions", "japanese_vowels"]  # fmt: skip
    extra = [f"trainer.max_epochs={args.epochs}"] if args.epochs else []
    rows = [run(r, c, s, extra) for r in (args.recipes or default) for c in args.cells for s in args.seeds]
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2))
    if args.part == "forecast":
        summarise(rows, ["test/mse_data", "test/naive_mse_data", "test/snaive_mse_data", "cpu_s"])
    else:
        summarise(rows, ["test/acc", "cpu_s"])


if __name__ == "__main__":
    main()
