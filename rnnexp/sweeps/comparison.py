"""Compare configurations, not runs: the jobs of one or more sweeps that differ only in their replicate keys
(``seed`` by default) form a group; per group n, mean ± std and the 95% interval of the objective and of every
test metric, a ranking, and each group's test against the best (``rnnexp.sweeps.statistics``). Failed, pruned
and unfinished replicates are counted beside n, never averaged. Written as comparison.csv / comparison.json.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from rnnexp.sweeps.records import curve_metrics, learning_curves, swept_parameters
from rnnexp.sweeps.statistics import compare, spread

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DEFAULT_REPLICATE_KEYS = ("seed",)
UNSET = "(default)"  # a grouping key a job did not override (e.g. across sweeps of different grids)


def replicate_keys(runs: pd.DataFrame, keys: Sequence[str] | None = None) -> list[str]:
    """The keys whose values make replicates: ``keys`` when given, else the runs' ``replicate_keys`` config
    (``conf/train.yaml``), else ``seed``."""
    if keys:
        return list(keys)
    configured = runs.attrs.get("replicate_keys")
    return list(configured) if configured else list(DEFAULT_REPLICATE_KEYS)


def group_keys(runs: pd.DataFrame, keys: Sequence[str]) -> list[str]:
    """The overrides that tell groups apart: every override that is not a replicate key."""
    return [k for k in runs.attrs.get("overrides", []) if k not in keys]


def group_labels(runs: pd.DataFrame, keys: Sequence[str]) -> pd.Series:
    """Each job's group as text, ``model=gru,lr=0.001``: the swept non-replicate overrides (``all`` when a
    sweep varies nothing but replicates)."""
    swept = [p for p in swept_parameters(runs) if p not in keys]
    by = group_keys(runs, keys)
    values = runs[by].astype(object).where(runs[by].notna(), UNSET) if by else pd.DataFrame(index=runs.index)
    # Keys that vary only across sweeps (overridden in one, default in the other) must split groups too.
    varying = [k for k in by if values[k].astype(str).nunique() > 1]
    shown = list(dict.fromkeys([*swept, *varying]))
    if not shown:
        return pd.Series("all", index=runs.index)
    short = {k: k.rsplit(".", 1)[-1] for k in shown}
    if len(set(short.values())) < len(short):
        short = {k: k for k in shown}
    return values[shown].apply(
        lambda row: ",".join(f"{short[k]}={format_value(row[k])}" for k in shown), axis=1
    )


def format_value(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def replicate_ids(group: pd.DataFrame, keys: Sequence[str]) -> list[str]:
    """``seed=1`` per job (several keys: ``seed=1,datamodule.seed=3``); the job's name when the replicate keys
    do not tell its jobs apart (e.g. no seed was overridden), so a pairing is never invented."""
    present = [k for k in keys if k in group]
    ids = [
        ",".join(f"{k}={format_value(row[k])}" for k in present) if present else ""
        for _, row in group.iterrows()
    ]
    if len(set(ids)) < len(ids) or not all(ids):
        return [f"job {job}" for job in group["job"]]
    return ids


def environment_note(group: pd.DataFrame, reference: dict[str, Any] | None) -> str:
    """``same`` when every completed run of the group recorded the same results.json ``environment`` (and it
    matches ``reference``, the best group's); which keys differ otherwise; ``unknown`` when not recorded."""
    if "environment" not in group:
        return "unknown (not recorded)"
    recorded = [json.loads(e) for e in group["environment"] if isinstance(e, str)]
    if not recorded:
        return "unknown (not recorded)"
    unknown = len(recorded) < len(group)
    seen = [*recorded, *([reference] if reference else [])]
    differ = sorted({k for env in seen for k in env if any(e.get(k) != env.get(k) for e in seen)})
    if differ:
        return "differs: " + ", ".join(differ)
    return "same, some unknown" if unknown else "same"


def metric_columns(runs: pd.DataFrame) -> list[str]:
    return [c for c in runs.columns if c.startswith("test/")]


def compare_groups(
    runs: pd.DataFrame, keys: Sequence[str] | None = None, level: float = 0.95
) -> pd.DataFrame:
    """One row per group, best first: rank, group, n (completed), failed, pruned, incomplete, replicates, then
    ``<metric>_mean/_std/_ci_low/_ci_high`` for the objective and each test metric, then the test of its
    objective against the best group's (``test``, ``p_value``, ``effect``), a ``note`` and ``environment``.
    ``attrs``: optimized_metric, mode, replicate_keys, level."""
    keys = replicate_keys(runs, keys)
    labels = group_labels(runs, keys)
    maximize = runs.attrs.get("mode") == "max"
    metrics = ["objective", *metric_columns(runs)]
    rows, samples, environments = [], {}, {}
    for label, group in runs.groupby(labels, sort=False):
        completed = group[group["status"] == "completed"]
        done = completed[np.isfinite(completed["objective"].astype(float))]  # NaN/inf: counted as failed
        ids = replicate_ids(done, keys)
        samples[label] = dict(zip(ids, done["objective"].astype(float), strict=True))
        row: dict[str, Any] = {
            "group": label,
            "n": len(done),
            "failed": int((group["status"] == "failed").sum()) + len(completed) - len(done),
            "pruned": int((group["status"] == "pruned").sum()),
            "incomplete": int((group["status"] == "incomplete").sum()),
            "replicates": "; ".join(ids),
            "jobs": " ".join(str(j) for j in group["job"]),
        }
        for metric in metrics:
            values = done[metric].dropna().astype(float) if metric in done else []
            for stat, value in spread(list(values), level).as_dict().items():
                if stat != "n":
                    row[f"{metric}_{stat}"] = value
        rows.append(row)
        envs = [json.loads(e) for e in done.get("environment", []) if isinstance(e, str)]
        environments[label] = (done, envs[0] if envs else None)
    table = pd.DataFrame(rows)
    table.insert(
        0,
        "rank",
        table["objective_mean"].rank(ascending=not maximize, method="min", na_option="bottom").astype(int),
    )
    table = table.sort_values(["rank", "group"], kind="stable").reset_index(drop=True)
    best = table["group"].iloc[0]
    tests = [compare(samples[best], samples[g]) if g != best else None for g in table["group"]]
    table["test"] = [t.test if t else "best" for t in tests]
    table["p_value"] = [t.p_value if t else math.nan for t in tests]
    table["effect"] = [t.effect if t else math.nan for t in tests]
    table["note"] = [group_note(row, t) for row, t in zip(table.to_dict("records"), tests, strict=True)]
    table["environment"] = [
        environment_note(environments[g][0], environments[best][1]) for g in table["group"]
    ]
    table.attrs.update(
        optimized_metric=runs.attrs.get("optimized_metric", "objective"),
        mode=runs.attrs.get("mode"),
        replicate_keys=keys,
        level=level,
    )
    return table


def group_note(row: dict[str, Any], test: Any) -> str:
    """What a reader must know beside the numbers: n = 1, replicates missing from the mean, why no test."""
    notes = []
    if row["n"] == 0:
        notes.append("no completed replicate")
    elif row["n"] == 1:
        notes.append("n = 1: a single run, no spread or interval")
    left_out = {k: row[k] for k in ("failed", "pruned", "incomplete") if row[k]}
    if left_out:
        notes.append(", ".join(f"{v} {k}" for k, v in left_out.items()) + " (not in the mean)")
    if test is not None and test.note and row["n"] > 1:
        notes.append(test.note)
    return "; ".join(notes)


def json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return json_safe(value.item())
    return value


def write_comparison(table: pd.DataFrame, directory: str | Path) -> tuple[Path, Path]:
    """``comparison.csv`` (the table) and ``comparison.json`` (the same rows, with the metric, the direction,
    the replicate keys and the interval level) in ``directory``; NaN is empty in the CSV, null in the JSON."""
    directory = Path(directory)
    csv_path, json_path = directory / "comparison.csv", directory / "comparison.json"
    table.to_csv(csv_path, index=False)
    document = {
        **{k: table.attrs.get(k) for k in ("optimized_metric", "mode", "replicate_keys", "level")},
        "groups": [{k: json_safe(v) for k, v in row.items()} for row in table.to_dict("records")],
    }
    json_path.write_text(json.dumps(document, indent=2))
    return csv_path, json_path


def format_spread(row: pd.Series, metric: str) -> tuple[str, str]:
    mean, std = row[f"{metric}_mean"], row[f"{metric}_std"]
    low, high = row[f"{metric}_ci_low"], row[f"{metric}_ci_high"]
    if pd.isna(mean):
        return "", ""
    text = f"{mean:.4g}" if pd.isna(std) else f"{mean:.4g} ± {std:.2g}"
    return text, "" if pd.isna(low) else f"[{low:.4g}, {high:.4g}]"


def print_comparison(table: pd.DataFrame, console: Console) -> None:
    """The groups on the terminal, best first: n (and what is left out), mean ± std, the interval, the test
    against the best group and its note."""
    level = round(100 * table.attrs.get("level", 0.95))
    keys = ",".join(table.attrs.get("replicate_keys", []))
    rich_table = Table(
        title=f"{len(table)} groups (replicates: {keys}), {table.attrs.get('optimized_metric')} "
        f"({table.attrs.get('mode')})"
    )
    for column in ("rank", "group", "n", "mean ± std", f"{level}% CI", "vs best", "p", "effect", "note"):
        rich_table.add_column(column)
    for _, row in table.iterrows():
        mean, interval = format_spread(row, "objective")
        left = sum(int(row[k]) for k in ("failed", "pruned", "incomplete"))
        rich_table.add_row(
            str(row["rank"]),
            str(row["group"]),
            f"{row['n']}" + (f" (+{left} out)" if left else ""),
            mean,
            interval,
            str(row["test"]),
            "" if pd.isna(row["p_value"]) else f"{row['p_value']:.3g}",
            "" if pd.isna(row["effect"]) else f"{row['effect']:.2f}",
            str(row["note"]),
        )
    console.print(rich_table)
    if len(table) > 1:
        second = table.iloc[1]
        if pd.isna(second["p_value"]):
            verdict = f"not tested ({second['note'] or 'no test'})"
        else:
            significant = (
                "differ significantly" if second["p_value"] < 0.05 else "do not differ significantly"
            )
            verdict = f"{significant} at the 5% level ({second['test']}, p = {second['p_value']:.3g})"
        console.print(f"best two groups: {table['group'].iloc[0]} vs {second['group']}: {verdict}")


def group_curves(runs: pd.DataFrame, keys: Sequence[str] | None = None) -> dict[str, list[pd.DataFrame]]:
    """Each group's completed replicates' per-epoch curves (``learning_curves``), by group label."""
    labels = group_labels(runs, replicate_keys(runs, keys))
    curves: dict[str, list[pd.DataFrame]] = {}
    for index, row in runs.iterrows():
        if row["status"] == "completed":
            curve = learning_curves(row["run_dir"])
            if not curve.empty:
                curves.setdefault(labels[index], []).append(curve)
    return curves


def plot_group_curves(
    runs: pd.DataFrame, metrics: Sequence[str] | None = None, keys: Sequence[str] | None = None
) -> Figure:
    """Per metric, each group's mean curve over its completed replicates with the 95% interval of the mean
    as a band (no band where a group has one replicate at that epoch)."""
    from matplotlib.figure import Figure  # here: a sweep's summary uses this module but draws nothing

    metrics = list(metrics or curve_metrics(runs))
    fig = Figure(figsize=(5 * len(metrics), 3.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(metrics), squeeze=False)[0])
    for label, curves in group_curves(runs, keys).items():
        for ax, metric in zip(axes, metrics, strict=True):
            columns = [c[metric].rename(i) for i, c in enumerate(curves) if metric in c]
            if not columns:
                continue
            per_epoch = pd.concat(columns, axis=1)
            bands = [spread(list(values.dropna())) for _, values in per_epoch.iterrows()]
            epochs = per_epoch.index.to_numpy()
            line = ax.plot(
                epochs, [b.mean for b in bands], marker="o", ms=3, label=f"{label} (n={len(columns)})"
            )
            ax.fill_between(
                epochs,
                [b.ci_low for b in bands],
                [b.ci_high for b in bands],
                color=line[0].get_color(),
                alpha=0.2,
            )
    for ax, metric in zip(axes, metrics, strict=True):
        ax.set_title(f"{metric}: group mean, 95% CI")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    if any(ax.lines for ax in axes):
        axes[-1].legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return fig
