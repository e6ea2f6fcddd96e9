"""What the dashboards get from a sweep: TensorBoard's HParams tab (every job's hyperparameters with its final
metrics, runs named after their job) and optuna-dashboard serving a study over loopback."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from tests.sweep_runs import grid_sweep


def hparams_session(run_dir: Path) -> tuple[dict, dict[str, float]]:
    """The hyperparameters of one TensorBoard run's HParams record, and its metrics' last scalar values."""
    events = EventAccumulator(str(run_dir), size_guidance={"tensors": 0, "scalars": 0}).Reload()
    content = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    start = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    hparams = {
        key: value.WhichOneof("kind") and getattr(value, value.WhichOneof("kind"))
        for key, value in start.hparams.items()
    }
    experiment = plugin_data_pb2.HParamsPluginData.FromString(
        events.PluginTagToContent("hparams")["_hparams_/experiment"]
    ).experiment
    metrics = {m.name.tag: events.Scalars(m.name.tag)[-1].value for m in experiment.metric_infos}
    return hparams, metrics


def test_tensorboard_hparams_list_every_job_of_a_grid_with_its_metrics(tmp_path_factory):
    sweep_dir, _ = grid_sweep(tmp_path_factory)  # model=rnn,gru x lr=0.003,1e30 (those two fail)
    runs = sorted(p for p in (sweep_dir / "tensorboard").iterdir() if p.is_dir())
    # Run names say which job is which: <job>-<what the sweep varies>.
    names = [p.name for p in runs]
    assert "0-model=rnn,lr=0.003" in names and "2-model=gru,lr=0.003" in names, names
    completed = {}
    for run in runs:
        job = run.name.split("-", 1)[0]
        results_file = sweep_dir / job / "results.json"
        if results_file.is_file():
            completed[job] = (hparams_session(run), json.loads(results_file.read_text()))
    assert sorted(completed) == ["0", "2"]
    for job, ((hparams, metrics), results) in completed.items():
        assert hparams["model.cell"] == ("rnn" if job == "0" else "gru")
        assert hparams["optimizer.lr"] == pytest.approx(0.003) and hparams["trial_state"] == "completed"
        assert hparams["group"] == f"model={hparams['model.cell']},lr=0.003"  # its replicate group
        assert metrics["val/mse_best"] == pytest.approx(results["val"]["val/mse_best"])
        assert metrics["test/mse"] == pytest.approx(results["test"]["test/mse"])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_optuna_dashboard_serves_a_study_over_loopback(tmp_path):
    pytest.importorskip("optuna_dashboard", reason="the dashboard extra: pip install -e '.[dashboard]'")
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(study_name="served", storage=storage)
    study.optimize(lambda trial: (trial.suggest_float("x", -2, 2) - 1) ** 2, n_trials=3)
    port = free_port()
    executable = Path(sys.executable).parent / "optuna-dashboard"  # the console script the extra installs
    command = [str(executable), storage, "--host", "127.0.0.1", "--port", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline, studies = time.monotonic() + 60, None
        while time.monotonic() < deadline and studies is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=2) as reply:
                    studies = json.loads(reply.read())["study_summaries"]
            except OSError:
                assert server.poll() is None, "optuna-dashboard exited before serving"
                time.sleep(0.5)
        assert studies is not None, "optuna-dashboard did not answer within 60 s"
        assert [s["study_name"] for s in studies] == ["served"]
        url = f"http://127.0.0.1:{port}/api/studies/{studies[0]['study_id']}?after=0"
        with urllib.request.urlopen(url, timeout=5) as reply:
            trials = json.loads(reply.read())["trials"]
        assert [t["state"] for t in trials] == ["Complete"] * 3
    finally:
        server.kill()
        server.wait(timeout=10)
