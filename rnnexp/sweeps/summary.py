"""Hydra callback for multiruns: prepare the sweep directory, tell how to resume an Optuna study, and print
the jobs and the best parameters when the sweep ends."""

from __future__ import annotations

import logging
import shlex
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from rnnexp.errors import DataError

log = logging.getLogger("rnnexp")


def study_resume_command(config: DictConfig) -> str:
    """The command that continues this sweep's Optuna study from its storage, new trials in a new folder."""
    replaced = ("hydra.sweep.dir=", "hydra.sweeper.storage=", "hydra.sweeper.n_trials=", "hydra.mode=")
    hydra_overrides = [o for o in config.hydra.overrides.hydra if not o.startswith(replaced)]
    overrides = [shlex.quote(o) for o in [*config.hydra.overrides.task, *hydra_overrides]]
    storage = shlex.quote(f"hydra.sweeper.storage={config.hydra.sweeper.storage}")
    return f"python train.py -m {' '.join(overrides)} {storage} hydra.sweeper.n_trials=<trials left>"


class SweepSummary(Callback):
    """Configured in ``conf/hydra/default.yaml``; does nothing in single runs."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        logging.getLogger("alembic").setLevel(logging.WARNING)  # the sqlite storage's schema set-up chatter
        sweep_dir = Path(config.hydra.sweep.dir)
        # Optuna's sqlite storage lives in the sweep directory, and sqlite does not create folders.
        sweep_dir.mkdir(parents=True, exist_ok=True)  # checked writable by CheckOutputDir, listed before
        if not (sweep_dir / "multirun.yaml").exists():  # Hydra's basic sweeper writes it, Optuna's does not
            OmegaConf.save(config, sweep_dir / "multirun.yaml")
        if OmegaConf.select(config, "hydra.sweeper.storage"):
            log.info(
                "Optuna study %r is stored in %s. If this sweep is interrupted, resume it with:\n  %s",
                config.hydra.sweeper.study_name,
                config.hydra.sweeper.storage,
                study_resume_command(config),
            )

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """Print the summary, then end the process with status 1 if any job failed (0: every job
        completed or was pruned), as grids and Optuna searches both document it."""
        runs = None
        try:
            failed, runs = self.print_summary(config)
        except Exception as err:  # a summary must never turn a finished sweep into a failed one
            log.warning("Could not summarise the sweep (%s: %s).", type(err).__name__, err)
            failed = 0
        try:
            summarize_groups(Path(config.hydra.sweep.dir), runs)
        except Exception as err:
            log.warning("Could not compare the sweep's groups (%s: %s).", type(err).__name__, err)
        if failed:
            log.error("%d of the sweep's jobs failed (listed above); exit status 1.", failed)
            raise SystemExit(1)  # not an Exception: Hydra passes it through, no traceback

    def print_summary(self, config: DictConfig) -> tuple[int, Any]:
        """Print the jobs table, the failed jobs' reasons, the best job and the review command; return the
        number of failed jobs and the runs table (``load_sweep``'s, read once for the groups too)."""
        # Imported when a sweep ends, not when every single run starts: pandas costs ~0.5 s.
        from rnnexp.sweeps.console import print_runs_table, terminal
        from rnnexp.sweeps.records import best_run, load_sweep, optimization_results

        sweep_dir = Path(config.hydra.sweep.dir)
        console = terminal()
        runs = load_sweep(sweep_dir)
        print_runs_table(runs, console)
        try:
            best = best_run(runs)
            console.print(
                f"best job: {best['job']}, {runs.attrs['optimized_metric']} = {best['objective']:.4g}"
            )
            console.print(f"          {best['run_dir']}", highlight=False)
        except DataError as err:
            console.print(str(err))
        optuna_best = optimization_results(sweep_dir)
        if optuna_best is not None:
            console.print(f"[bold]best value[/]: {optuna_best.get('best_value')}")
            console.print(f"[bold]best parameters[/]: {optuna_best.get('best_params')}")
            console.print(f"saved in {sweep_dir / 'optimization_results.yaml'}")
        console.print(f"review: python -m rnnexp.review {sweep_dir} --out {sweep_dir / 'report.html'}")
        return (int((runs["status"] == "failed").sum()) if len(runs) else 0), runs


def summarize_groups(sweep_dir: Path, runs: Any = None) -> None:
    """Print the replicate groups of the sweep (``rnnexp.sweeps.comparison``) and write comparison.csv/.json;
    ``runs``: the sweep's ``load_sweep`` table when the caller has read it already."""
    from rnnexp.sweeps.comparison import compare_groups, print_comparison, write_comparison
    from rnnexp.sweeps.console import terminal
    from rnnexp.sweeps.records import load_sweep

    table = compare_groups(load_sweep(sweep_dir) if runs is None else runs)
    print_comparison(table, terminal())
    csv_path, _ = write_comparison(table, sweep_dir)
    log.info("group comparison saved in %s and comparison.json", csv_path)
