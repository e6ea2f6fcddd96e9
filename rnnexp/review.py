"""Review a sweep: every job of a multirun or Optuna directory as a table row (overrides, status, metrics,
time), learning curves overlaid, the best run, the effect of each swept parameter, and a static report.

    python -m rnnexp.review logs/train/multiruns/<time> --out report.html     (or --out report.png)
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from hydra.core.override_parser.overrides_parser import OverridesParser
from matplotlib.figure import Figure, SubFigure
from omegaconf import OmegaConf
from rich.console import Console
from rich.table import Table

from rnnexp.errors import DataError

Canvas = Figure | SubFigure


@dataclass
class JobRecord:
    """What one job left on disk. ``status``: completed (results.json), failed (failure.json, or an error in
    its log) or incomplete (still running, or killed)."""

    run_dir: Path
    name: str
    overrides: dict[str, Any]
    status: str
    config: dict[str, Any]
    results: dict[str, Any] | None
    failure: dict[str, Any] | None


def natural_key(path: Path) -> list[Any]:
    """Sort job folders 0, 1, 2, ..., 10 rather than 0, 1, 10, 2."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(path))]


def find_job_dirs(sweep_dir: str | Path) -> list[Path]:
    """Every folder under ``sweep_dir`` that Hydra ran a job in (it holds ``.hydra/overrides.yaml``)."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise DataError(f"Sweep directory {sweep_dir} does not exist; pass the folder a multirun wrote.")
    jobs = [p.parent.parent for p in sweep_dir.rglob("overrides.yaml") if p.parent.name == ".hydra"]
    if not jobs:
        raise DataError(
            f"{sweep_dir} holds no Hydra job folders (none has .hydra/overrides.yaml); pass the folder of a "
            "`python train.py -m ...` run, e.g. logs/train/multiruns/<time>."
        )
    return sorted(jobs, key=natural_key)


def parse_overrides(overrides: list[str]) -> dict[str, Any]:
    """``["model=gru", "optimizer.lr=0.001"]`` → ``{"model": "gru", "optimizer.lr": 0.001}`` (typed by Hydra)."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    values = {}
    for override in parsed:
        value = override.value()
        values[override.get_key_element()] = (
            value if isinstance(value, str | int | float | bool) else str(value)
        )
    return values


def read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


def last_error_line(log_file: Path) -> str | None:
    if not log_file.is_file():
        return None
    errors = [line for line in log_file.read_text(errors="replace").splitlines() if "][ERROR]" in line]
    return errors[-1].split("] - ", 1)[-1] if errors else None


def load_job(run_dir: Path, sweep_dir: Path, prefix: str = "") -> JobRecord:
    """One job's record; its name is its folder relative to the sweep (``prefix`` tells sweeps apart)."""
    results = read_json(run_dir / "results.json")
    failure = read_json(run_dir / "failure.json")
    if results is None and failure is None:
        # A job that failed outside rnnexp's wrapper leaves at most a line in its log.
        messages = [m for m in map(last_error_line, run_dir.glob("*.log")) if m]
        failure = {"status": "failed", "message": messages[0]} if messages else None
    status = "completed" if results is not None else "failed" if failure is not None else "incomplete"
    config_file = run_dir / "config.yaml"  # resolved by rnnexp; .hydra/config.yaml always exists
    if not config_file.is_file():
        config_file = run_dir / ".hydra" / "config.yaml"
    config = OmegaConf.to_container(OmegaConf.load(config_file)) if config_file.is_file() else {}
    overrides = OmegaConf.to_container(OmegaConf.load(run_dir / ".hydra" / "overrides.yaml"))
    return JobRecord(
        run_dir=run_dir,
        name=prefix + (str(run_dir.relative_to(sweep_dir)) if run_dir != sweep_dir else run_dir.name),
        overrides=parse_overrides(list(overrides)),
        status=status,
        config=config,
        results=results,
        failure=failure,
    )


def load_jobs(*sweep_dirs: str | Path) -> list[JobRecord]:
    """Every job of one or more sweep directories (an Optuna study resumed into a second folder); with
    several, each job's name starts with its sweep folder's name."""
    several = len(sweep_dirs) > 1
    return [
        load_job(job, Path(d), f"{Path(d).name}/" if several else "")
        for d in sweep_dirs
        for job in find_job_dirs(d)
    ]


def sweep_direction(sweep_dir: Path, jobs: list[JobRecord]) -> str:
    """``max`` or ``min`` for the objective: the Optuna direction when there is one, else the monitor mode."""
    multirun = sweep_dir / "multirun.yaml"
    if multirun.is_file():
        direction = OmegaConf.select(OmegaConf.load(multirun), "hydra.sweeper.direction", default=None)
        if isinstance(direction, str):
            return "max" if direction.startswith("max") else "min"
    modes = [job.config.get("monitor", {}).get("mode") for job in jobs if job.config]
    return "max" if modes and modes[0] == "max" else "min"


def runs_table(jobs: list[JobRecord]) -> pd.DataFrame:
    """One row per job: job, status, its overrides, objective, duration, epochs, every final metric, error."""
    rows = []
    for job in jobs:
        results, failure = job.results or {}, job.failure or {}
        rows.append(
            {
                "job": job.name,
                "status": job.status,
                **job.overrides,
                "objective": results.get("objective"),
                "duration_s": results.get("duration_s", failure.get("duration_s")),
                "epochs": results.get("epochs"),
                **results.get("val", {}),
                **results.get("test", {}),
                "error": failure.get("message"),
                "run_dir": str(job.run_dir),
            }
        )
    table = pd.DataFrame(rows)
    names = {(job.results or {}).get("optimized_metric") for job in jobs} - {None}
    table.attrs["optimized_metric"] = names.pop() if len(names) == 1 else "objective"
    table.attrs["overrides"] = list(dict.fromkeys(key for job in jobs for key in job.overrides))
    return table


def load_sweep(*sweep_dirs: str | Path) -> pd.DataFrame:
    """``runs_table`` of the sweep(s), with ``attrs``: optimized_metric, mode (max|min), overrides."""
    jobs = load_jobs(*sweep_dirs)
    table = runs_table(jobs)
    table.attrs["mode"] = sweep_direction(Path(sweep_dirs[0]), jobs)
    return table


def swept_parameters(runs: pd.DataFrame) -> list[str]:
    """The overrides that take more than one value across the jobs."""
    return [key for key in runs.attrs.get("overrides", []) if runs[key].astype(str).nunique() > 1]


def best_run(runs: pd.DataFrame) -> pd.Series:
    """The completed job with the best objective (largest for mode max, smallest for min)."""
    done = runs[(runs["status"] == "completed") & runs["objective"].notna()]
    if done.empty:
        raise DataError("No job of this sweep completed with an objective; see the `error` column for why.")
    objective = done["objective"].astype(float)
    return done.loc[objective.idxmax() if runs.attrs.get("mode") == "max" else objective.idxmin()]


def optimization_results(sweep_dir: str | Path) -> dict[str, Any] | None:
    """The Optuna sweeper's ``optimization_results.yaml`` (best parameters and value), if it wrote one."""
    path = Path(sweep_dir) / "optimization_results.yaml"
    return OmegaConf.to_container(OmegaConf.load(path)) if path.is_file() else None


def optuna_trials(sweep_dir: str | Path) -> pd.DataFrame | None:
    """The Optuna study stored in ``<sweep dir>/optuna.db`` as a table (state, value, params), if any."""
    db = Path(sweep_dir) / "optuna.db"
    multirun = Path(sweep_dir) / "multirun.yaml"
    if not db.is_file() or not multirun.is_file():
        return None
    import optuna  # installed with hydra-optuna-sweeper

    study_name = OmegaConf.load(multirun).hydra.sweeper.study_name
    return optuna.load_study(study_name=study_name, storage=f"sqlite:///{db}").trials_dataframe()


def learning_curves(run_dir: str | Path) -> pd.DataFrame:
    """Per-epoch metrics of one run from the CSV logger's metrics.csv (empty when the run had no CSV logger)."""
    files = sorted(Path(run_dir).glob("**/metrics.csv"))
    if not files:
        return pd.DataFrame()
    metrics = pd.read_csv(files[0])
    if "epoch" not in metrics:
        return pd.DataFrame()
    # Lightning writes step rows and epoch rows; the last value logged in each epoch is the epoch's value.
    # Test metrics are one row after fit, not a curve.
    columns = [c for c in metrics.columns if c not in ("step", "epoch") and not c.startswith("test/")]
    curves = metrics.dropna(subset=["epoch"]).groupby("epoch")[columns].last().dropna(how="all")
    curves.index = curves.index.astype(int)
    return curves


def format_value(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def job_label(row: pd.Series, params: list[str]) -> str:
    """``job 3`` and, when few parameters vary, their values: legends stay readable."""
    if not params or len(params) > 2:
        return f"job {row['job']}"
    return f"job {row['job']}: " + ", ".join(f"{p.rsplit('.', 1)[-1]}={format_value(row[p])}" for p in params)


def curve_metrics(runs: pd.DataFrame) -> list[str]:
    """Training and validation loss, plus the metric behind the objective (val/acc for val/acc_best)."""
    objective = runs.attrs.get("optimized_metric", "").removesuffix("_best")
    return list(
        dict.fromkeys(m for m in ("train/loss", "val/loss", objective) if m.startswith(("train", "val")))
    )


def plot_learning_curves(
    runs: pd.DataFrame, metrics: list[str] | None = None, fig: Canvas | None = None
) -> Canvas:
    """Each metric's per-epoch curve for every completed job, overlaid (one panel per metric)."""
    metrics = metrics or curve_metrics(runs)
    fig = fig if fig is not None else Figure(figsize=(5 * len(metrics), 3.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(metrics), squeeze=False)[0])
    params = swept_parameters(runs)
    for _, row in runs[runs["status"] == "completed"].iterrows():
        curves = learning_curves(row["run_dir"])
        for ax, metric in zip(axes, metrics, strict=True):
            if metric in curves:
                values = curves[metric].dropna()
                ax.plot(values.index, values.to_numpy(), marker="o", ms=3, label=job_label(row, params))
    for ax, metric in zip(axes, metrics, strict=True):
        ax.set_title(metric)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    if runs["status"].eq("completed").any():
        axes[-1].legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return fig


def is_continuous(values: pd.Series) -> bool:
    """Floats, and integers with many levels, are plotted on an axis; the rest as categories."""
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        return False
    return pd.api.types.is_float_dtype(values) or values.nunique() > 6


def plot_parameter_effects(runs: pd.DataFrame, fig: Canvas | None = None, columns: int = 3) -> Canvas:
    """The objective against each swept parameter, one panel each (a dash marks each category's mean);
    failed jobs are counted in the heading."""
    params = swept_parameters(runs) or ["job"]
    cols = columns if fig is not None else min(columns, len(params))
    nrows = -(-len(params) // cols)
    fig = fig if fig is not None else Figure(figsize=(4.5 * cols, 3.4 * nrows), layout="constrained")
    axes = fig.subplots(nrows, cols, squeeze=False).ravel()
    done = runs[(runs["status"] == "completed") & runs["objective"].notna()]
    rng = np.random.default_rng(0)  # jitter only: the same picture every time
    for ax, param in zip(axes, params, strict=False):
        values, objective = done[param], done["objective"].astype(float)
        if is_continuous(runs[param]):
            ax.scatter(values.astype(float), objective, alpha=0.8)
            if values.min() > 0 and values.max() / values.min() >= 20:
                ax.set_xscale("log")
        else:
            column = runs[param].astype(object).where(runs[param].notna(), "(not set)")  # e.g. resumed sweeps
            values = column[done.index]
            levels = sorted(column.unique(), key=lambda v: (isinstance(v, str), v))
            names = [format_value(v) for v in levels]
            x = np.array([levels.index(v) for v in values], dtype=float)
            ax.scatter(x + rng.uniform(-0.12, 0.12, len(x)), objective, alpha=0.8)
            means = objective.groupby(values).mean()
            ax.scatter([levels.index(v) for v in means.index], means.to_numpy(), marker="_", s=400, c="k")
            ax.set_xticks(range(len(levels)), names)
            ax.set_xlim(-0.5, len(levels) - 0.5)
        ax.set_title(param)
        ax.set_ylabel(runs.attrs.get("optimized_metric", "objective"))
        ax.grid(alpha=0.3)
    for ax in axes[len(params) :]:
        ax.set_visible(False)
    failed = int((runs["status"] != "completed").sum())
    fig.suptitle(
        f"{len(done)} completed jobs" + (f"; {failed} failed or incomplete, not shown" if failed else "")
    )
    return fig


def run_figure_paths(run_dir: str | Path) -> list[Path]:
    """The latest PNG of every figure a run saved under ``figures/`` (e.g. predictions, confusion matrix)."""
    latest: dict[str, Path] = {}
    for path in sorted(Path(run_dir).glob("figures/*.png")):
        latest[re.sub(r"_epoch\d+$", "", path.stem)] = path
    return list(latest.values())


def report_figure(runs: pd.DataFrame) -> Figure:
    """Learning curves above parameter effects, in one figure (what ``--out report.png`` saves)."""
    params = max(1, len(swept_parameters(runs)))
    effect_rows = -(-params // 3)
    fig = Figure(figsize=(15, 4 + 3.4 * effect_rows), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[4, 3.4 * effect_rows])
    plot_learning_curves(runs, fig=top)
    plot_parameter_effects(runs, fig=bottom)
    return fig


def png_base64(source: Figure | Path) -> str:
    if isinstance(source, Path):
        return base64.b64encode(source.read_bytes()).decode()
    buffer = io.BytesIO()
    source.savefig(buffer, format="png", dpi=90)
    return base64.b64encode(buffer.getvalue()).decode()


def fixed_overrides(runs: pd.DataFrame) -> dict[str, Any]:
    """The overrides every job shares (shown once instead of as a column)."""
    swept = set(swept_parameters(runs))
    return {k: runs[k].iloc[0] for k in runs.attrs.get("overrides", []) if k not in swept}


def summary_table(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs table without the columns every job shares: job, status, swept values, results, error."""
    metrics = [c for c in runs.columns if c.startswith(("val/", "test/"))]
    columns = [
        "job",
        "status",
        *swept_parameters(runs),
        "objective",
        "duration_s",
        "epochs",
        *metrics,
        "error",
    ]
    return runs[columns]


def embedded_png(source: Figure | Path) -> str:
    return f'<img src="data:image/png;base64,{png_base64(source)}">'


def report_html(runs: pd.DataFrame, sweep_dirs: list[Path]) -> str:
    """A self-contained page: summary, Optuna's result, the runs table, the figures and the best run."""
    counts = runs["status"].value_counts().to_dict()
    fixed = ", ".join(f"{k}={format_value(v)}" for k, v in fixed_overrides(runs).items()) or "none"
    parts = [
        f"<h1>Sweep review: {html.escape(', '.join(str(d) for d in sweep_dirs))}</h1>",
        f"<p>{len(runs)} jobs: {html.escape(str(counts))}. Objective: "
        f"{html.escape(runs.attrs.get('optimized_metric', ''))} ({runs.attrs.get('mode')}).</p>",
        f"<p>Overrides shared by every job: <code>{html.escape(fixed)}</code></p>",
    ]
    for sweep_dir in sweep_dirs:
        optuna_best = optimization_results(sweep_dir)
        if optuna_best:
            parts.append(f"<h2>Optuna result</h2><pre>{html.escape(OmegaConf.to_yaml(optuna_best))}</pre>")
    parts.append(
        "<h2>Runs</h2>" + summary_table(runs).to_html(index=False, na_rep="", float_format="{:.4g}".format)
    )
    parts.append("<h2>Learning curves</h2>" + embedded_png(plot_learning_curves(runs)))
    parts.append("<h2>Effect of each swept parameter</h2>" + embedded_png(plot_parameter_effects(runs)))
    try:
        best = best_run(runs)
        parts.append(
            f"<h2>Best run: job {html.escape(str(best['job']))}</h2><p>{html.escape(best['run_dir'])}</p>"
        )
        parts.append(summary_table(runs).loc[[best.name]].to_html(index=False, na_rep=""))
        parts += [embedded_png(path) for path in run_figure_paths(best["run_dir"])]
    except DataError as err:
        parts.append(f"<p>{html.escape(str(err))}</p>")
    style = (
        "body{font-family:sans-serif;margin:2em} table{border-collapse:collapse;font-size:small}"
        " td,th{border:1px solid #ccc;padding:2px 6px} img{max-width:100%}"
    )
    head = f"<meta charset='utf-8'><title>rnnexp sweep review</title><style>{style}</style>"
    return f"<!DOCTYPE html><html><head>{head}</head><body>{''.join(parts)}</body></html>"


def write_report(sweep_dirs: list[str | Path], out: str | Path, runs: pd.DataFrame | None = None) -> Path:
    """``out`` ending in .html: the full page with embedded PNGs; .png: the figure of ``report_figure``."""
    out, dirs = Path(out), [Path(d) for d in sweep_dirs]
    runs = runs if runs is not None else load_sweep(*dirs)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".png":
        report_figure(runs).savefig(out, dpi=90)
    elif out.suffix.lower() in (".html", ".htm"):
        out.write_text(report_html(runs, dirs), encoding="utf-8")
    else:
        raise DataError(f"--out {out}: the report is written as .html or .png; name the file accordingly.")
    return out


def print_runs(runs: pd.DataFrame, console: Console) -> None:
    """The runs table on the terminal (swept parameters, objective, time), then why each failed job failed."""
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
    for _, row in runs[runs["status"] != "completed"].iterrows():
        console.print(
            f"job {row['job']} {row['status']}: {row['error'] or 'no error recorded'}", highlight=False
        )


def terminal() -> Console:
    """A console for tables: the terminal's width, or 160 columns when the output goes to a file or a log."""
    return Console() if sys.stdout.isatty() else Console(width=160)


def latest_sweep_dir(root: str | Path = "logs") -> Path:
    """The most recently started multirun directory under ``root`` (each holds multirun.yaml)."""
    candidates = sorted(Path(root).glob("**/multirun.yaml"), key=lambda p: p.stat().st_mtime)
    if not candidates:
        raise DataError(
            f"No multirun directory under {root}; run `python train.py -m ...` first or pass its path."
        )
    return candidates[-1].parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rnnexp.review", description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dirs", nargs="+", type=Path, help="multirun directories (several: one study)")
    parser.add_argument(
        "--out", type=Path, help="report.html or report.png (default: <sweep dir>/report.html)"
    )
    args = parser.parse_args(argv)
    try:
        runs = load_sweep(*args.sweep_dirs)
        print_runs(runs, terminal())
        out = write_report(args.sweep_dirs, args.out or args.sweep_dirs[0] / "report.html", runs)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"report written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
