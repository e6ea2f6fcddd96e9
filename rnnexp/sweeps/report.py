"""Show a sweep read by ``rnnexp.sweeps.records``: learning curves overlaid, Optuna's plots of the study
(``rnnexp.sweeps.study_plots``), the best run's figures, a static HTML/PNG report and the terminal table."""

from __future__ import annotations

import base64
import html
import io
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure, SubFigure
from omegaconf import OmegaConf

from rnnexp.errors import DataError
from rnnexp.sweeps.comparison import compare_groups, plot_group_curves
from rnnexp.sweeps.console import print_runs_table, terminal  # noqa: F401  (re-exported: review, tests)
from rnnexp.sweeps.records import (
    best_run,
    curve_metrics,
    learning_curves,
    load_sweep,
    optimization_results,
    swept_parameters,
)
from rnnexp.sweeps.study_plots import study_figures, sweep_study

Canvas = Figure | SubFigure


def format_value(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def job_label(row: pd.Series, params: list[str]) -> str:
    """``job 3`` and, when few parameters vary, their values: legends stay readable."""
    if not params or len(params) > 2:
        return f"job {row['job']}"
    return f"job {row['job']}: " + ", ".join(f"{p.rsplit('.', 1)[-1]}={format_value(row[p])}" for p in params)


def plot_learning_curves(
    runs: pd.DataFrame, metrics: list[str] | None = None, fig: Canvas | None = None
) -> Canvas:
    """Each metric's per-epoch curve for every completed or pruned job, overlaid (one panel per metric)."""
    metrics = metrics or curve_metrics(runs)
    fig = fig if fig is not None else Figure(figsize=(5 * len(metrics), 3.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(metrics), squeeze=False)[0])
    params = swept_parameters(runs)
    for _, row in runs[runs["status"].isin(["completed", "pruned"])].iterrows():
        curves = learning_curves(row["run_dir"])
        pruned = row["status"] == "pruned"
        label = job_label(row, params) + (" (pruned)" if pruned else "")
        for ax, metric in zip(axes, metrics, strict=True):
            if metric in curves:
                values = curves[metric].dropna()
                ax.plot(
                    values.index, values.to_numpy(), marker="o", ms=3, ls=":" if pruned else "-", label=label
                )
    for ax, metric in zip(axes, metrics, strict=True):
        ax.set_title(metric)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    if runs["status"].isin(["completed", "pruned"]).any():
        axes[-1].legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return fig


def run_figure_paths(run_dir: str | Path) -> list[Path]:
    """The latest PNG of every figure a run saved under ``figures/`` (e.g. predictions, confusion matrix)."""
    latest: dict[str, Path] = {}
    for path in sorted(Path(run_dir).glob("figures/*.png")):
        latest[re.sub(r"_epoch\d+$", "", path.stem)] = path
    return list(latest.values())


def report_figure(runs: pd.DataFrame) -> Figure:
    """What ``--out report.png`` saves: the overlaid learning curves (the HTML page adds Optuna's plots)."""
    return plot_learning_curves(runs)


def png_base64(source: Figure | Path) -> str:
    if isinstance(source, Path):
        return base64.b64encode(source.read_bytes()).decode()
    buffer = io.BytesIO()
    source.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
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
        *[c for c in runs.columns if c.startswith("environment.")],  # only values that differ between jobs
        "objective",
        "duration_s",
        "epochs",
        *metrics,
        "error",
    ]
    return runs[columns]


def embedded_png(source: Figure | Path) -> str:
    return f'<img src="data:image/png;base64,{png_base64(source)}">'


def comparison_html(runs: pd.DataFrame) -> list[str]:
    """The replicate groups (``rnnexp.sweeps.comparison``): the table, the best two's verdict, the curves."""
    table = compare_groups(runs)
    keys = ", ".join(table.attrs["replicate_keys"])
    parts = [
        f"<h2>Groups (runs differing only in {html.escape(keys)})</h2>"
        "<p>n completed replicates; failed, pruned and incomplete ones are counted, not averaged. Mean ± std "
        "and the 95% Student-t interval of each metric; the objective of each group is tested against the "
        "best group's (paired t-test when both ran the same seeds, Welch's t-test otherwise; effect: Cohen's "
        "d<sub>z</sub> / d).</p>",
        table.to_html(index=False, na_rep="", float_format="{:.4g}".format),
    ]
    if table["n"].max() > 1:
        parts.append("<h3>Learning curves by group</h3>" + embedded_png(plot_group_curves(runs)))
    return parts


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
    if differences := runs.attrs.get("environment_differences"):
        items = "".join(f"<li>{html.escape(line)}</li>" for line in differences)
        parts.append(
            "<h2>Not comparable as they stand</h2><p>These jobs ran in different environments: their results "
            f"differ for that reason too (README, Reproducibility).</p><ul>{items}</ul>"
        )
    parts.append(
        "<h2>Runs</h2>" + summary_table(runs).to_html(index=False, na_rep="", float_format="{:.4g}".format)
    )
    parts += comparison_html(runs)
    parts.append("<h2>Learning curves</h2>" + embedded_png(plot_learning_curves(runs)))
    for title, figure in study_figures(sweep_study(runs, sweep_dirs)).items():
        parts.append(f"<h2>{html.escape(title)}</h2>" + embedded_png(figure))
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
    out, dirs = check_report_path(out), [Path(d) for d in sweep_dirs]
    runs = runs if runs is not None else load_sweep(*dirs)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".png":
        report_figure(runs).savefig(out, dpi=90)
    else:
        out.write_text(report_html(runs, dirs), encoding="utf-8")
    return out


def check_report_path(out: str | Path) -> Path:
    """``out`` names an .html/.htm or .png file (DataError otherwise): checked before a sweep is read."""
    out = Path(out)
    if out.suffix.lower() not in (".png", ".html", ".htm"):
        raise DataError(f"--out {out}: the report is written as .html or .png; name the file accordingly.")
    return out
