"""The submitit launchers: SLURM resources follow the trainer's devices, and a sweep through
`hydra/launcher=local` (submitit on this machine) runs end to end."""

import json

import pytest
from hydra.core.hydra_config import HydraConfig

from tests.resilience import TINY_RUN, run_cli


def test_slurm_tasks_and_gpus_per_node_follow_the_trainer(make_cfg):
    make_cfg("hydra/launcher=slurm", "trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2")
    launcher = HydraConfig.get().launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.nodes, launcher.tasks_per_node, launcher.gpus_per_node) == (2, 4, 4)


def test_local_submitit_runs_one_task_per_job(make_cfg):
    make_cfg("hydra/launcher=local", "trainer=ddp_cpu")
    launcher = HydraConfig.get().launcher
    assert launcher._target_.endswith("LocalLauncher")
    assert (launcher.tasks_per_node, launcher.gpus_per_node) == (1, 2)  # Lightning spawns the 2 ranks


@pytest.mark.slow
def test_a_sweep_runs_through_submitit_on_this_machine(tmp_path):
    sweep = run_cli("-m", "hydra/launcher=local", *TINY_RUN, "trainer.max_epochs=1", "test=false", "seed=1,2",
                    f"hydra.sweep.dir={tmp_path}")  # fmt: skip
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    for job in ("0", "1"):
        results = json.loads((tmp_path / job / "results.json").read_text())
        assert results["global_step"] == 8 and results["run_dir"] == str(tmp_path / job)
    assert list((tmp_path / ".submitit").glob("*/*_log.out"))  # submitit ran the jobs in its own processes
