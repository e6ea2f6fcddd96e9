"""Run hygiene around ``train``: show the config, turn user errors into one paragraph, record a failed job,
set up and close wandb (offline without an API key, one run per multirun job), print where the results are."""

from __future__ import annotations

import json
import logging
import netrc
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from omegaconf import DictConfig, OmegaConf, open_dict
from rich.console import Console
from rich.table import Table

from rnnexp.errors import RnnexpError
from rnnexp.lifecycle.launch import in_multirun
from rnnexp.sweeps.dashboards import mark_pruned_in_wandb, name_tensorboard_run
from rnnexp.sweeps.jobs import replicate_id, sweep_job
from rnnexp.training import train

log = logging.getLogger("rnnexp")


class HideLightningNoise(logging.Filter):
    """Drops Lightning INFO lines that tell an rnnexp user nothing: advertisements for other products
    ("💡 Tip: ... litlogger / litmodels"), which have no switch, and "`Trainer(limit_val_batches=1.0)` was
    configured so 100% ..." notes, printed on every run because conf/trainer/default.yaml states Lightning's
    defaults explicitly (its comments say the same). The note for an integer 1 ("1 batch will be used")
    passes, as may be a slip for 1.0; so does every other message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        is_tip = message.startswith("💡 Tip:")
        is_default_note = message.startswith("`Trainer(") and "=1.0)` was configured so" in message
        return not (is_tip or is_default_note)


def hide_lightning_noise() -> None:
    chatter = logging.getLogger("pytorch_lightning.utilities.rank_zero")  # where rank_zero_info logs
    if not any(isinstance(f, HideLightningNoise) for f in chatter.filters):
        chatter.addFilter(HideLightningNoise())
    # Lightning's own call of a torch API that torch >= 2.14 deprecates: nothing a user of rnnexp can act on.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")


def wandb_credentials_found() -> bool:
    """Whether wandb could log in without asking: an API key in the environment or in the netrc file.

    Checked before any wandb call, because wandb would otherwise prompt, or try the network for minutes.
    """
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    path = Path(os.environ.get("NETRC", "~/.netrc")).expanduser()
    try:
        return path.is_file() and netrc.netrc(path).authenticators(host) is not None
    except (netrc.NetrcParseError, OSError):
        return False


def prepare_wandb(cfg: DictConfig) -> None:
    """For ``logger=wandb``: in a multirun, group the jobs by sweep and replicate group (``<sweep>-model=gru``;
    the sweep's name alone when only replicates vary), mark the replicate as the job type (``seed=1``) and
    name each after its job number; with no API key and no WANDB_MODE chosen, log offline instead of
    prompting."""
    node = (cfg.get("logger") or {}).get("wandb")
    if not isinstance(node, DictConfig):
        return
    if (job := sweep_job(cfg)) is not None:  # a grid job or an Optuna trial's job
        sweep_name = job.sweep_dir.name
        group = job.group(list(cfg.get("replicate_keys") or ["seed"]))
        with open_dict(node):
            # Replicates (runs differing only in seed) share a group: wandb's grouped view averages them.
            node.group = (
                node.get("group") or (sweep_name if group == "all" else f"{sweep_name}-{group}")[:128]
            )
            node.name = node.get("name") or f"{sweep_name}-{job.number}"
            if node.get("job_type") in (None, "train"):  # the config's default: say which replicate
                node.job_type = replicate_id(cfg)[:64]  # seed=1
    if "WANDB_MODE" not in os.environ and not wandb_credentials_found():
        os.environ["WANDB_MODE"] = "offline"  # also for the later jobs of a multirun
        log.warning(
            "wandb: no API key found (WANDB_API_KEY is unset and ~/.netrc has no entry), so runs are logged "
            "offline under <run dir>/wandb/. To upload them: `wandb login`, then "
            "`wandb sync <run dir>/wandb/offline-run-*`. Set WANDB_MODE=offline to silence this."
        )


def finish_wandb(exit_code: int = 0) -> None:
    """Close the wandb run if one is open, so the next multirun job starts its own; say how to upload an
    offline run."""
    wandb = sys.modules.get("wandb")
    run = getattr(wandb, "run", None) if wandb is not None else None
    if run is None:
        return
    offline = bool(getattr(run.settings, "_offline", False))
    sync_dir = getattr(run.settings, "sync_dir", None)
    wandb.finish(exit_code=exit_code)
    if offline and sync_dir:
        log.info("wandb: offline run saved in %s; upload it with `wandb sync %s`", sync_dir, sync_dir)


def record_failure(cfg: DictConfig, err: BaseException, started: float) -> None:
    """Write ``failure.json`` next to where results.json would be, so a sweep review lists the failed job
    with its reason (Hydra keeps only the exception in memory)."""
    output_dir = Path(cfg.paths.output_dir)
    if not output_dir.is_dir():
        return
    failure = {
        "status": "failed",
        "error_type": type(err).__name__,
        "message": str(err),
        "duration_s": round(time.time() - started, 2),
    }
    (output_dir / "failure.json").write_text(json.dumps(failure, indent=2))


def print_run_results(results: dict[str, Any], console: Console) -> None:
    table = Table(title="results")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for section in ("val", "test"):
        for key, value in results[section].items():
            table.add_row(key, f"{value:.4f}")
    console.print(table)
    console.print(f"[bold]{results['optimized_metric']}[/] = {results['objective']}")
    console.print(f"best checkpoint: {results['best_ckpt_path'] or '(none saved)'}")
    console.print(
        f"run directory:   {results['run_dir']} (config.yaml, results.json, checkpoints/, figures/)"
    )


def run(cfg: DictConfig) -> float | None:
    """Entry point behind ``train.py``: returns the value of ``optimized_metric`` for Hydra sweepers."""
    started = time.time()
    hide_lightning_noise()
    console = Console(stderr=False)
    prepare_wandb(cfg)
    name_tensorboard_run(cfg, sweep_job(cfg))
    if cfg.get("print_config"):
        console.rule("config")
        console.print(OmegaConf.to_yaml(cfg, resolve=True), highlight=False)
    succeeded = False
    try:
        results, _ = train(cfg)
        succeeded = True
        if results["status"] == "pruned":
            mark_pruned_in_wandb()
    except Exception as err:
        record_failure(cfg, err, started)
        if in_multirun():
            # A grid job (Hydra's basic sweeper, in this process): the failure is recorded in failure.json and
            # the sweep goes on. Raising here would make Hydra end the whole sweep with a traceback and no
            # summary; SweepSummary lists the failed jobs and sets the exit status instead. (An Optuna trial
            # runs as a single run in its own process: its exit status tells the sweeper.)
            if isinstance(err, RnnexpError):
                log.error("%s", err)
            else:  # a bug in rnnexp or a library: its traceback is what a report needs
                log.exception("Job failed with an unexpected error")
            return None
        if not isinstance(err, RnnexpError):
            raise
        log.error("%s", err)  # to the console and to the run's train.log
        sys.exit(1)
    finally:
        finish_wandb(exit_code=0 if succeeded else 1)  # also on Ctrl-C: the next job gets its own run
    print_run_results(results, console)
    return results["objective"]
