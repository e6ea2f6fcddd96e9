"""wandb without a network: one offline run per multirun job, grouped by sweep; offline when there is no
API key; native wandb sweep specs whose agent commands compose."""

from __future__ import annotations

import logging
import os

import pytest
import yaml
from omegaconf import OmegaConf
from wandb.sdk.launch.sweeps.utils import create_sweep_command_args

from rnnexp.models.recurrent import RecurrentSpec
from rnnexp.run import prepare_wandb, wandb_credentials_found
from rnnexp.sweeps.dashboards import mark_pruned_in_wandb
from rnnexp.training import instantiate
from tests.conftest import ROOT, compose_config
from tests.sweep_runs import TINY_SINE, run_cli

SWEEP_SPECS = sorted((ROOT / "conf" / "wandb_sweep").glob("*.yaml"))


def test_two_multirun_jobs_log_two_offline_wandb_runs_grouped_by_sweep(tmp_path):
    sweep_dir = tmp_path / "wb_sweep"
    proc = run_cli(*["-m", "logger=wandb", "seed=1,2", "trainer.max_epochs=1", "trainer.log_every_n_steps=1",
                      *TINY_SINE, f"hydra.sweep.dir={sweep_dir}"])  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run_ids = set()
    for job in ("0", "1"):
        offline_runs = list((sweep_dir / job / "wandb").glob("offline-run-*"))
        assert len(offline_runs) == 1, f"job {job}: {offline_runs}"
        run_ids.add(offline_runs[0].name.rsplit("-", 1)[-1])
        # The run's record stream (protobuf) names the run, its group and the logged keys.
        stream = next(offline_runs[0].glob("run-*.wandb")).read_bytes()
        assert b"\x0awb_sweep-" + job.encode() in stream  # name (10 bytes): <sweep dir name>-<job number>
        assert b"\x08wb_sweep" in stream  # group (a protobuf string of 8 bytes): the sweep directory's name
        assert b'"tags":["sine","lstm"]' in stream  # the resolved config, with the default tags
        assert b"train/grad_norm" in stream and b"val/mse_best" in stream
        assert list(offline_runs[0].glob("files/media/images/val/predictions_*.png"))  # the figure
        assert f"wandb sync {offline_runs[0]}" in proc.stdout + proc.stderr
    assert len(run_ids) == 2  # two distinct runs: the first was finished before the second started


@pytest.fixture
def no_wandb_env(monkeypatch, tmp_path):
    for name in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE", "WANDB_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    netrc = tmp_path / "netrc"
    netrc.write_text("machine example.org login me password secret\n")
    monkeypatch.setenv("NETRC", str(netrc))
    return netrc


def test_no_api_key_means_offline_with_a_sync_hint(no_wandb_env, tmp_path, caplog):
    cfg = compose_config(["logger=wandb"], tmp_path)
    assert not wandb_credentials_found()
    with caplog.at_level(logging.WARNING, logger="rnnexp"):
        prepare_wandb(cfg)
    assert os.environ["WANDB_MODE"] == "offline"
    assert "wandb sync" in caplog.text and "no API key" in caplog.text


def test_a_key_in_netrc_or_the_environment_leaves_the_mode_to_wandb(no_wandb_env, tmp_path, monkeypatch):
    no_wandb_env.write_text("machine api.wandb.ai login user password " + "x" * 40 + "\n")
    assert wandb_credentials_found()
    prepare_wandb(compose_config(["logger=wandb"], tmp_path))
    assert "WANDB_MODE" not in os.environ
    no_wandb_env.write_text("")
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert wandb_credentials_found()


def sample_value(spec: dict):
    """A value the wandb controller could pick: the first of ``values``, or the lower bound."""
    return spec["values"][0] if "values" in spec else spec["min"]


@pytest.mark.parametrize("path", SWEEP_SPECS, ids=lambda p: p.name)
def test_wandb_sweep_spec_agent_command_composes(path, tmp_path):
    spec = yaml.safe_load(path.read_text())
    fixed = [arg for arg in spec["command"] if not arg.startswith("${")]
    assert spec["program"] == "train.py" and "${args_no_hyphens}" in spec["command"]
    args = create_sweep_command_args(
        {"args": {k: {"value": sample_value(v)} for k, v in spec["parameters"].items()}}
    )
    overrides = [*fixed, *args["args_no_hyphens"]]  # what the agent appends after `python train.py`
    cfg = compose_config(overrides, tmp_path)
    assert spec["metric"]["name"] == cfg.optimized_metric
    assert spec["metric"]["goal"] == {"max": "maximize", "min": "minimize"}[cfg.monitor.mode]
    assert isinstance(instantiate(cfg.model), RecurrentSpec)
    assert "wandb" in OmegaConf.to_container(cfg.logger)


def test_a_pruned_trial_is_tagged_pruned_in_its_wandb_run(tmp_path):
    import wandb

    run = wandb.init(mode="offline", dir=tmp_path, project="rnnexp", tags=["sine"])
    try:
        mark_pruned_in_wandb()
        assert (run.tags, run.summary["trial_state"]) == (("sine", "pruned"), "pruned")
    finally:
        wandb.finish()
    stream = next((tmp_path / "wandb").glob("offline-run-*/run-*.wandb")).read_bytes()
    assert b"pruned" in stream and b"trial_state" in stream  # written to the run that `wandb sync` uploads
