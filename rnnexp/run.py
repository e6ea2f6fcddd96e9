"""Run hygiene around ``train``: show the config, turn user errors into one paragraph, close wandb,
print where the results are."""

from __future__ import annotations

import logging
import sys
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.table import Table

from rnnexp.errors import RnnexpError
from rnnexp.training import train

log = logging.getLogger("rnnexp")


def finish_wandb() -> None:
    """Close the wandb run if one is open, so the next multirun job starts its own."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish()


def is_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def print_summary(results: dict[str, Any], console: Console) -> None:
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
    console = Console(stderr=False)
    if cfg.get("print_config"):
        console.rule("config")
        console.print(OmegaConf.to_yaml(cfg, resolve=True), highlight=False)
    try:
        results, _ = train(cfg)
    except RnnexpError as err:
        log.error("%s", err)  # to the console and to the run's train.log
        if is_multirun():
            raise  # the sweeper records the failed job and goes on
        sys.exit(1)
    finally:
        finish_wandb()
    print_summary(results, console)
    return results["objective"]
