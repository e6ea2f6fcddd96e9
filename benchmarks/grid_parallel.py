"""Grid benchmark: the same 3 cells x N seeds grid of short sine runs through Hydra's basic launcher (jobs one
after another inside the sweep's process) and through rnnexp's parallel launcher (2 in flight, each job
forked from a forkserver that imported torch and Lightning once; optionally also with a fresh interpreter per
job, ``preload=false``). Wall time of each sweep, per-job start-up, and the grid's group comparison.

    python -m benchmarks.grid_parallel --seeds 5 --out /tmp/grid_bench [--modes basic parallel spawn]

Each sweep is the real CLI, so start-up, composition, data set-up and every test pass are in the time.
Per-job start-up is the time from the launcher starting a job's process (``launch.json``) to the job's
``rnnexp.run`` starting (``results.json``'s mtime minus its ``duration_s``): imports, unpickling, Hydra's job
set-up; training itself is the same in every mode.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# A short sine run: 4 epochs of 4 batches of 32 sequences of 24 steps, hidden size 16, test pass included.
SHORT_SINE = [
    "datamodule=sine",
    "datamodule.num_sequences=200",
    "datamodule.seq_len=24",
    "datamodule.batch_size=32",
    "model.hidden_size=16",
    "trainer.max_epochs=4",
    "+trainer.limit_train_batches=4",
    "task.log_figures=false",
    "trainer.enable_model_summary=false",
    "callbacks.progress_bar=null",
    "print_config=false",
]
MODES = {
    "basic": [],  # Hydra's basic launcher: the default
    "parallel": ["hydra/launcher=parallel", "hydra.launcher.n_jobs=2"],
    "spawn": ["hydra/launcher=parallel", "hydra.launcher.n_jobs=2", "hydra.launcher.preload=false"],
}


def load() -> str:
    """The 1/5/15-minute load averages, as `uptime` prints them (2 cores here: 2.0 is a full machine)."""
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def startup_times(sweep_dir: Path) -> list[float]:
    """Per job, in job order: seconds from the process start to rnnexp.run's start."""
    times = []
    for launch in sorted(sweep_dir.glob("*/launch.json"), key=lambda p: int(p.parent.name)):
        results = launch.parent / "results.json"
        if results.is_file():
            started = json.loads(launch.read_text())["started"]
            run_started = results.stat().st_mtime - json.loads(results.read_text())["duration_s"]
            times.append(run_started - started)
    return times


def job_cpu(sweep_dir: Path) -> list[float]:
    """Per forked or spawned job: the CPU seconds of its process (``process.json``), in job order."""
    files = sorted(sweep_dir.glob("*/process.json"), key=lambda p: int(p.parent.name))
    return [json.loads(f.read_text())["cpu_s"] for f in files]


def last_job_end(sweep_dir: Path) -> float:
    """When the last job wrote its results.json (epoch seconds)."""
    return max(p.stat().st_mtime for p in sweep_dir.glob("*/results.json"))


def become_subreaper() -> None:
    """Adopt the sweep's orphans (Linux): the forkserver outlives the sweep's process by a moment, and its
    jobs' CPU time reaches this process's RUSAGE_CHILDREN only if someone waits for it."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def reap_all() -> None:
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_sweep(mode: str, seeds: int, out: Path) -> dict:
    sweep_dir = out / mode
    seed_list = ",".join(str(s) for s in range(1, seeds + 1))
    command = [sys.executable, "train.py", "-m", "model=rnn,lstm,gru", f"seed={seed_list}", *SHORT_SINE,
               *MODES[mode], f"hydra.sweep.dir={sweep_dir}"]  # fmt: skip
    env = {**os.environ, "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"}
    before, cpu_before = load(), cpu_of_children()
    started = time.time()
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    ended = time.time()
    reap_all()  # the forkserver, once the sweep's process has gone
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-3000:])
    startup, cpu = startup_times(sweep_dir), job_cpu(sweep_dir)
    record = {
        "mode": mode,
        "jobs": 3 * seeds,
        "wall_s": round(ended - started, 1),
        "cpu_s": round(cpu_of_children() - cpu_before, 1),  # the sweep's process, forkserver and jobs
        "tail_s": round(ended - last_job_end(sweep_dir), 1),  # after the last job: summary, comparison, exit
        "load_before": before,
        "load_after": load(),
        "returncode": proc.returncode,
        "startup_median_s": round(statistics.median(startup), 2) if startup else None,
        "startup_first_s": round(startup[0], 2) if startup else None,
        "job_cpu_median_s": round(statistics.median(cpu), 2) if cpu else None,
    }
    print(json.dumps(record), flush=True)
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument("--out", type=Path, default=Path("/tmp/grid_bench"))
    args = parser.parse_args()
    become_subreaper()
    records = [run_sweep(mode, args.seeds, args.out) for mode in args.modes]
    walls = {r["mode"]: r["wall_s"] for r in records}
    if "basic" in walls:
        for mode, wall in walls.items():
            print(f"{mode}: {wall} s = {wall / walls['basic']:.2f}x the basic launcher (wall time)")
    (args.out / "grid_bench.json").write_text(json.dumps(records, indent=2))
    compared = next((args.out / m for m in ("parallel", "basic", "spawn") if (args.out / m).is_dir()), None)
    if compared is not None:
        subprocess.run([sys.executable, "-m", "rnnexp.review", str(compared)], cwd=ROOT, check=False)


if __name__ == "__main__":
    main()
