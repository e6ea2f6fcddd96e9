"""SIGTERM (pre-emption) and Ctrl-C: the run stops at a batch boundary, saves a checkpoint, exits with
128 + the signal number, says how to resume, and the resumed run ends as if nothing had happened."""

import logging
import signal
from pathlib import Path

import pytest

from rnnexp.training import train
from tests.conftest import compose_config
from tests.resilience import TINY_RUN, fault, reference_run, same_results


def interrupt(run_dir: Path, signum: str, caplog) -> tuple[SystemExit, Path]:
    """Run TINY_RUN in this process, sending ``signum`` to it as global step 13 (epoch 1) begins."""
    with caplog.at_level(logging.WARNING, logger="rnnexp"), pytest.raises(SystemExit) as stop:
        train(compose_config([*TINY_RUN, *fault("SignalAtStep", step=13, signum=signum)], run_dir))
    return stop.value, run_dir / "checkpoints" / "interrupted.ckpt"


def test_sigterm_saves_a_checkpoint_says_how_to_resume_and_the_resumed_run_matches(
    tmp_path, caplog, tmp_path_factory
):
    reference, _ = reference_run(tmp_path_factory)
    run_dir = tmp_path / "run"
    stop, checkpoint = interrupt(run_dir, "SIGTERM", caplog)
    assert stop.code == 143  # 128 + SIGTERM, as a shell reports a process stopped by it
    assert checkpoint.is_file()
    # Lightning finished batch 13 before stopping, so the checkpoint is at step 14.
    assert f"SIGTERM received at epoch 1, global step 14. Checkpoint: {checkpoint}" in caplog.text
    assert f"ckpt_path=last hydra.run.dir={run_dir}" in caplog.text  # the command that resumes it

    resumed, _ = train(compose_config([*TINY_RUN, "ckpt_path=last"], run_dir))
    assert same_results(resumed, reference), (resumed, reference)
    assert not checkpoint.exists()  # stale once the run has finished


def test_a_first_ctrl_c_stops_at_the_batch_end_with_a_checkpoint(tmp_path, caplog):
    stop, checkpoint = interrupt(tmp_path / "run", "SIGINT", caplog)
    assert stop.code == 130 and checkpoint.is_file()
    assert "SIGINT (Ctrl-C) received at epoch 1, global step 14" in caplog.text
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # Ctrl-C behaves normally again
