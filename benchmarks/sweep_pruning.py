"""Sweep benchmark: the same seeded Optuna search on sine, run serially without pruning, then pruned (median)
with 2 trials in flight; wall time to finish and the best objective of each.

    python -m benchmarks.sweep_pruning --trials 16 --out /tmp/sweep_bench [--data small|default] [--modes 0 2] [--seeds 1234 1 2]

Each sweep is the real CLI (`python train.py -m hparams_search=sine_optuna ...`), so process start-up, data
set-up and the test pass of every trial are in the measured time, as a user would see it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import optuna

ROOT = Path(__file__).resolve().parents[1]
QUIET = ["callbacks.progress_bar=null", "print_config=false", "test=true"]
DATA = {
    # The search exactly as `python train.py -m hparams_search=sine_optuna` runs it (2048 sequences of 64
    # steps, 20 epochs, figures): training is most of a trial.
    "default": QUIET,
    # 16 trials in about two minutes: 8 epochs of 5 batches of 32 sequences of 24 steps, hidden sizes 8-32.
    # Training is then ~1.3 s of a ~6 s trial; the rest is process start-up (importing torch and Lightning
    # alone takes ~4.4 s on this machine), composition and the test pass.
    "small": [
        "datamodule.num_sequences=200",
        "datamodule.seq_len=24",
        "datamodule.batch_size=32",
        "trainer.max_epochs=8",
        "model.hidden_size=choice(8,16,32)",
        "task.log_figures=false",
        "trainer.enable_model_summary=false",
        *QUIET,
    ],
}
MODES = {
    # Each trial with the machine's 2 threads, as sweeps ran before num_threads defaulted to 1 (issue 23).
    "serial, no pruning": ["hydra/sweeper/pruner=none", "hydra.sweeper.n_jobs=1", "num_threads=2"],
    # The same with the thread count of the parallel mode: separates thread contention from the other gains.
    "serial, no pruning, 1 thread": [
        "hydra/sweeper/pruner=none",
        "hydra.sweeper.n_jobs=1",
        "num_threads=1",
    ],
    "median pruning, 2 in flight": ["hydra/sweeper/pruner=median", "hydra.sweeper.n_jobs=2"],
}


def run_sweep(sweep_dir: Path, trials: int, seed: int, data: list[str], mode: list[str]) -> dict:
    command = [sys.executable, "train.py", "-m", "hparams_search=sine_optuna", f"hydra.sweeper.n_trials={trials}",
               f"hydra.sweeper.sampler.seed={seed}", *data, *mode, f"hydra.sweep.dir={sweep_dir}"]  # fmt: skip
    env = {**os.environ, "WANDB_MODE": "offline", "MPLBACKEND": "Agg", "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"sweep failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    study = optuna.load_study(study_name="sine_optuna", storage=f"sqlite:///{sweep_dir / 'optuna.db'}")
    states = [t.state.name for t in study.trials]
    results = [json.loads(path.read_text()) for path in sweep_dir.glob("*/results.json")]
    return {
        "wall_s": round(wall, 1),
        "trials_train_s": round(sum(result["duration_s"] for result in results), 1),
        "best_value": study.best_value,
        "best_trial": study.best_trial.number,
        "complete": states.count("COMPLETE"),
        "pruned": states.count("PRUNED"),
        "failed": states.count("FAIL"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--out", type=Path, default=Path("/tmp/sweep_bench"))
    parser.add_argument("--modes", nargs="+", type=int, help="indices into MODES to run (default: all)")
    parser.add_argument("--data", choices=DATA, default="small", help="trial size (see DATA)")
    parser.add_argument(
        "--seeds", nargs="+", type=int, default=[1234], help="TPE sampler seeds, one sweep each"
    )
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(f"load before: {os.getloadavg()}, cpus: {os.cpu_count()}")
    for seed in args.seeds:
        for i, (name, mode) in enumerate(MODES.items()):
            if args.modes is None or i in args.modes:
                row = run_sweep(
                    args.out / f"seed{seed}" / f"sweep{i}", args.trials, seed, DATA[args.data], mode
                )
                print(f"seed {seed}, {name}", json.dumps(row), f"load: {os.getloadavg()}", flush=True)


if __name__ == "__main__":
    main()
