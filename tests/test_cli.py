"""`python train.py ...` as a user runs it: results on success, a short message naming the problem on failure."""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, run_cli


def train_cli(*overrides: str, run_dir: Path) -> subprocess.CompletedProcess:
    return run_cli(*overrides, f"hydra.run.dir={run_dir}", "print_config=false")


def test_train_gru_writes_results_json(tmp_path):
    proc = train_cli("model=gru", "trainer.max_epochs=1", "datamodule.num_sequences=64", "model.hidden_size=8",
                   run_dir=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["objective"] == results["val"]["val/mse_best"]
    assert "run directory" in proc.stdout and str(tmp_path) in proc.stdout.replace("\n", "")
    assert (tmp_path / "train.log").is_file()
    console = proc.stdout + proc.stderr
    assert "GPU available" in console  # Lightning's own lines still reach the console...
    assert "was configured so" not in console  # ...but not its notes on the defaults the config states
    assert "LeafSpec" not in console  # nor its use of a torch API torch 2.14 deprecates


def test_lightning_tips_and_default_notes_are_hidden_and_other_messages_kept(caplog):
    from pytorch_lightning.utilities.rank_zero import rank_zero_info

    from rnnexp.run import hide_lightning_noise

    hide_lightning_noise()
    hide_lightning_noise()  # idempotent: one filter, not two
    chatter = logging.getLogger("pytorch_lightning.utilities.rank_zero")
    assert sum(type(f).__name__ == "HideLightningNoise" for f in chatter.filters) == 1
    with caplog.at_level(logging.INFO, logger="pytorch_lightning.utilities.rank_zero"):
        rank_zero_info(
            "💡 Tip: For seamless cloud logging and experiment tracking, try installing [litlogger]"
        )
        rank_zero_info(
            "`Trainer(limit_val_batches=1.0)` was configured so 100% of the batches will be used.."
        )
        rank_zero_info("`Trainer(limit_val_batches=1)` was configured so 1 batch will be used.")
        rank_zero_info("GPU available: False, used: False")
    assert [record.getMessage() for record in caplog.records] == [
        "`Trainer(limit_val_batches=1)` was configured so 1 batch will be used.",
        "GPU available: False, used: False",
    ]


def test_unknown_model_lists_the_available_ones(tmp_path):
    proc = train_cli("model=nope", run_dir=tmp_path)
    assert proc.returncode == 1
    output = proc.stdout + proc.stderr
    assert "Traceback" not in output
    last = output.strip().splitlines()[-1]  # one line naming the bad option and the choices
    assert last.startswith("error: model=nope is not an option of the config group 'model'; the choices are ")
    assert {"gru", "lstm", "rnn"} <= set(last.split("the choices are ")[1].rstrip(".").split(", "))


def test_bad_value_exits_non_zero_with_the_key_and_no_traceback(tmp_path):
    proc = train_cli("model.hidden_size=0", run_dir=tmp_path)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "model.hidden_size=0" in output
    assert "Traceback" not in output


def test_missing_mnist_files_offline_say_what_to_do(tmp_path):
    proc = train_cli("datamodule=mnist_rows", f"datamodule.data_dir={tmp_path}/data", "datamodule.download=false",
                   run_dir=tmp_path / "run")  # fmt: skip
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f"{tmp_path}/data/MNIST/raw" in output and "Traceback" not in output


def test_a_sweep_without_a_sweep_dir_runs_from_any_folder(tmp_path):
    """`python train.py -m ...` as the README shows it, with no hydra.sweep.dir: the sweep folder's default
    reads `${hydra:runtime.cwd}` (paths.root_dir), which Hydra's sweeper resolves before any job sets Hydra's
    config; it must land under the working directory's logs/ and end with its summary."""
    env = {key: value for key, value in os.environ.items() if key != "PROJECT_ROOT"}
    env |= {"WANDB_MODE": "offline", "PYTHONUNBUFFERED": "1"}
    overrides = ["model=rnn", "seed=1,2", "trainer.max_epochs=1", "datamodule.num_sequences=64",
                 "model.hidden_size=8", "print_config=false"]  # fmt: skip
    proc = subprocess.run([sys.executable, str(ROOT / "train.py"), "-m", *overrides], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = sorted((tmp_path / "logs" / "train" / "multiruns").glob("*/*/results.json"))
    assert len(results) == 2, proc.stdout[-2000:]
    assert "HydraConfig was not set" not in proc.stderr
    assert "review" in proc.stdout  # the summary's review hint
