"""Every value a user types is checked where it enters: one table of bad values over every config group and
file format. Each is run as `python train.py <case>` (many per interpreter, see tests/cli_cases.py): it exits
non-zero, prints no traceback, and its last line names the key or the file, before any training."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from rnnexp.config.checks import check_config
from rnnexp.errors import ConfigError
from tests.cli_cases import last_line, refusal_problems
from tests.conftest import ROOT, bar_images, run_cli, write_idx
from tests.test_text_resume import write_corpus

QUIET = ["print_config=false", "trainer.enable_model_summary=false", "~callbacks.progress_bar"]

# (overrides, what the last line must name)
CONFIG_CASES = [
    (["seed=abc"], "seed='abc'"),
    (["seed=1.5"], "seed=1.5"),
    (["num_threads=0"], "num_threads=0"),
    (["num_threads=two"], "num_threads='two'"),
    (["replicate_keys=[sed]"], "replicate_keys names 'sed'"),
    (["replicate_keys=seed"], "replicate_keys='seed'"),
    (["trainer.max_epochs=0"], "trainer.max_epochs=0"),
    (["trainer.max_epochs=-2"], "trainer.max_epochs=-2"),
    (["trainer.max_epochs=-1"], "trainer.max_epochs=-1"),  # and no other budget: never ends
    (["trainer.max_steps=0"], "trainer.max_steps=0"),
    (["trainer.max_steps=many"], "trainer.max_steps='many'"),
    (["trainer.max_time=5min"], "trainer.max_time='5min'"),
    (["trainer.max_time=00:00:00:00"], "trainer.max_time='00:00:00:00'"),
    (["trainer.val_check_interval=0"], "trainer.val_check_interval=0"),
    (["trainer.val_check_interval=1.5"], "trainer.val_check_interval=1.5"),
    (["trainer.val_check_interval=10"], "trainer.check_val_every_n_epoch=null"),
    (["trainer.limit_val_batches=-1"], "trainer.limit_val_batches=-1"),
    (["trainer.limit_val_batches=2.5"], "trainer.limit_val_batches=2.5"),
    (["trainer.limit_val_batches=0"], "trainer.limit_val_batches=0"),  # no validation: nothing to judge by
    (["trainer.gradient_clip_val=-1"], "trainer.gradient_clip_val=-1"),
    (["trainer.gradient_clip_algorithm=max"], "trainer.gradient_clip_algorithm='max'"),
    (["trainer.log_every_n_steps=0"], "trainer.log_every_n_steps=0"),
    (["trainer.num_sanity_val_steps=-3"], "trainer.num_sanity_val_steps=-3"),
    (["trainer.accelerator=quantum"], "trainer.accelerator='quantum'"),
    (["trainer.devices=0"], "trainer.devices=0"),
    (["trainer.precision=8-bit"], "trainer.precision='8-bit'"),
    (["optimizer.lr=-1"], "optimizer.lr=-1"),
    (["optimizer.lr=fast"], "optimizer.lr='fast'"),
    (["optimizer.weight_decay=-0.1"], "optimizer.weight_decay=-0.1"),
    (["optimizer=adam", "+optimizer.betas=[0.9,1.5]"], "optimizer.betas=[0.9, 1.5]"),
    (["optimizer=sgd", "optimizer.momentum=-0.5"], "optimizer.momentum=-0.5"),
    (["+optimizer.lrr=0.1"], "optimizer.lrr=0.1"),
    (["optimizer._target_=torch.optim.Nope"], "optimizer._target_='torch.optim.Nope'"),
    (["scheduler=cosine", "scheduler.eta_min=-1"], "scheduler.eta_min=-1"),  # sine's default is constant
    (["scheduler=cosine", "scheduler.T_max=0"], "scheduler.T_max=0"),
    (["scheduler=plateau", "scheduler.factor=2"], "scheduler.factor=2"),
    (["scheduler=plateau", "scheduler.patience=-1"], "scheduler.patience=-1"),
    (["callbacks.early_stopping.patience=-1"], "callbacks.early_stopping.patience=-1"),
    (["callbacks.early_stopping.min_delta=-0.1"], "callbacks.early_stopping.min_delta=-0.1"),
    (
        ["callbacks.step_checkpoint.every_n_train_steps=-5"],
        "callbacks.step_checkpoint.every_n_train_steps=-5",
    ),
    (["callbacks.model_checkpoint.save_top_k=-2"], "callbacks.model_checkpoint.save_top_k=-2"),
    (["callbacks.model_checkpoint.save_last=true"], "callbacks.model_checkpoint.save_last=True"),
    (
        ["+callbacks.model_checkpoint.every_n_train_steps=5"],
        "callbacks.model_checkpoint.every_n_train_steps=5",
    ),
    (
        ["callbacks.early_stopping.check_on_train_epoch_end=true"],
        "callbacks.early_stopping.check_on_train_epoch_end=True",
    ),
    (["callbacks.lr_monitor.logging_interval=hour"], "callbacks.lr_monitor.logging_interval='hour'"),
    (["callbacks.non_finite_loss.action=ignore"], "callbacks.non_finite_loss.action='ignore'"),
    (["+logger.csv.flush_logs_every_n_steps=0"], "logger.csv.flush_logs_every_n_steps=0"),
    (["monitor.mode=up"], "monitor.mode='up'"),
    (["monitor.metric=val/nope"], "monitor.metric='val/nope'"),  # checked against what the task logs
    (["optimized_metric=val/nope"], "optimized_metric='val/nope'"),
    (["num_threads=0"], "num_threads=0"),  # a falsy number is refused, not swallowed as "unset"
    (
        ["model=gruu"],
        "model=gruu is not an option of the config group 'model'; the choices are gru, ",
    ),
    (["optimizer=adamm"], "optimizer=adamm is not an option"),
    (["hydra.run.dir=NOT_A_DIR/run"], "hydra.run.dir="),  # a path under a file cannot be written
    (["test=maybe"], "test='maybe'"),
    (["model.hidden_size=0"], "model.hidden_size"),
    (["model.cell=transformer"], "model.cell='transformer'"),
    (["model.cell=nowhere_pkg.cells.Cell"], "model.cell='nowhere_pkg.cells.Cell'"),
    (["model.cell=tests.test_cells.WrongStateCell"], "model.cell='tests.test_cells.WrongStateCell'"),
    (["model.cell=mingru", "+model.cell_options.scan_chunk=0"], "model.cell='mingru'"),
    (["model.bidirectional=maybe"], "model.bidirectional='maybe'"),
    (["datamodule.batch_size=0"], "datamodule.batch_size=0"),
    (["datamodule.noise=loud"], "datamodule.noise='loud'"),
    (["datamodule.val_fraction=1.5"], "datamodule.val_fraction=1.5"),
    (["datamodule.task=next_step", "model.bidirectional=true"], "model.bidirectional=true"),
    (["datamodule=mnist_rows", "datamodule.variant=cifar"], "datamodule.variant='cifar'"),
    (["datamodule=adding", "datamodule.seq_len=1"], "datamodule.seq_len=1"),
    (["datamodule=copy_memory", "datamodule.delay=0"], "datamodule.delay=0"),
    (["datamodule=mnist_pixels", "datamodule.downsample=3"], "datamodule.downsample=3"),
    (["datamodule=mnist_pixels", "datamodule.permute=maybe"], "datamodule.permute='maybe'"),
    (["datamodule=adding", "task.baseline_prediction=abc"], "task.baseline_prediction='abc'"),
    (["datamodule=text", "datamodule.path=CORPUS", "datamodule.seq_len=long"], "datamodule.seq_len='long'"),
    (["datamodule=text", "datamodule.path=CORPUS", "model.bidirectional=true"], "model.bidirectional=true"),
    (["datamodule=text", "datamodule.path=CORPUS", "task.init=normal"], "task.init='normal'"),
    (["datamodule=text", "datamodule.path=CORPUS", "task.tie_weights=true"], "use task.init=uniform"),
]
# Values that would have no effect (rnnexp.config.inert_values): refused with why, never recorded as if they
# acted. Part of the table; also run in full by default (test_values_without_effect_are_refused).
INERT_CASES = [
    (["model=lstm", "model.num_layers=1", "model.dropout=0.5"], "model.dropout=0.5 has no effect here"),
    (["model=gru", "model.nonlinearity=relu"], "model.nonlinearity='relu' has no effect here"),
    (["model.pooling=mean"], "model.pooling='mean' has no effect here"),  # sine: an output per step
    (
        ["trainer.gradient_clip_val=null", "trainer.gradient_clip_algorithm=value"],
        "trainer.gradient_clip_algorithm='value' has no effect here",
    ),
    (
        ["optimizer=sgd", "optimizer.momentum=0", "+optimizer.nesterov=true"],
        "optimizer.nesterov=True has no effect here",
    ),
    (
        ["optimizer=sgd", "optimizer.momentum=0", "+optimizer.dampening=0.5"],
        "optimizer.dampening=0.5 has no effect here",
    ),
    (["scheduler=constant", "scheduler.step_size=5"], "scheduler.step_size=5 has no effect here"),
    (["trainer.accelerator=cpu", "trainer.precision=16-mixed"], "trainer.precision='16-mixed' has no effect"),
    (
        ["datamodule=text", "datamodule.path=CORPUS", "task.sample_length=0", "task.sample_top_k=5"],
        "task.sample_top_k=5 has no effect here",
    ),
]
# Known only once the datamodule knows its size: refused right after its setup, before the first step.
SIZE_CASES = [
    (["trainer.limit_val_batches=0.01"], "trainer.limit_val_batches=0.01 selects no batch of the validation"),
]
CONFIG_CASES += INERT_CASES + SIZE_CASES


def data_file_cases(tmp_path: Path) -> list[tuple[list[str], str]]:
    """Bad files in each format rnnexp reads: IDX labels and images, a text corpus, a checkpoint."""
    root = tmp_path / "mnist"
    raw = root / "MNIST" / "raw"
    for prefix, count in (("train", 40), ("t10k", 10)):
        images, labels = bar_images(count, 0)
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    bad_labels = bar_images(10, 1)[1]
    bad_labels[7] = 12
    write_idx(raw / "t10k-labels-idx1-ubyte", bad_labels)  # a label outside 0..9 in the test split
    cut_root = tmp_path / "cut"
    for name in (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ):
        (cut_root / "MNIST" / "raw").mkdir(parents=True, exist_ok=True)
        data = (raw / name).read_bytes()
        (cut_root / "MNIST" / "raw" / name).write_bytes(
            data[: len(data) // 2] if "train-images" in name else data
        )
    binary = tmp_path / "binary.txt"
    binary.write_bytes(bytes(range(256)) * 4)
    broken = tmp_path / "broken.ckpt"
    torch.save({"state_dict": {}}, broken)
    broken.write_bytes(broken.read_bytes()[:40])
    mnist = [
        "datamodule=mnist_rows",
        "datamodule.download=false",
        "datamodule.val_size=5",
        "model.hidden_size=8",
    ]
    return [
        ([*mnist, f"datamodule.data_dir={root}"], f"{raw / 't10k-labels-idx1-ubyte'}: label 12 at index 7"),
        (
            [*mnist, f"datamodule.data_dir={cut_root}"],
            str(cut_root / "MNIST" / "raw" / "train-images-idx3-ubyte"),
        ),
        (["datamodule=text", f"datamodule.path={binary}"], str(binary)),
        (["datamodule=text", f"datamodule.path={tmp_path / 'missing.txt'}"], str(tmp_path / "missing.txt")),
        ([f"ckpt_path={broken}", "model.hidden_size=8"], str(broken)),
    ]


def first_of_each_group(table: list[tuple[list[str], str]]) -> list[tuple[list[str], str]]:
    """The quick subset: the first case of each config group (the key's first part, e.g. ``trainer``)."""
    seen, chosen = set(), []
    for args, names in table:
        group = names.split(".")[0].split("=")[0]
        if group not in seen:
            seen.add(group)
            chosen.append((args, names))
    return chosen


@pytest.mark.parametrize("subset", ["one per group", "issue 17", pytest.param("all", marks=pytest.mark.slow)])
def test_every_bad_value_exits_with_one_paragraph_naming_it_and_no_traceback(tmp_path, subset):
    corpus = write_corpus(tmp_path / "x.txt")
    if subset == "issue 17":  # values without effect (the dropout example) and a split too small, in full
        table = [*INERT_CASES, *SIZE_CASES]
    else:
        configs = CONFIG_CASES if subset == "all" else first_of_each_group(CONFIG_CASES)
        table = [*configs, *data_file_cases(tmp_path)]  # every file format, in both
    cases = [
        [
            *(arg.replace("CORPUS", str(corpus)).replace("NOT_A_DIR", str(corpus)) for arg in args),
            *QUIET,
            *(
                []
                if any(a.startswith("hydra.run.dir=") for a in args)
                else [f"hydra.run.dir={tmp_path / f'run{i}'}"]
            ),
            f"paths.data_dir={tmp_path / 'data'}",
        ]
        for i, (args, _) in enumerate(table)
    ]
    problems = refusal_problems(table, cases, tmp_path, timeout=300)
    assert not problems, "\n".join(problems)


def test_the_real_command_line_ends_on_the_same_paragraph(tmp_path):
    """One case through a real `python train.py`, against what the in-process runner reports for it."""
    result = run_cli("optimizer.lr=-1", *QUIET, f"hydra.run.dir={tmp_path}")
    output = result.stdout + result.stderr
    assert result.returncode == 1 and "Traceback" not in output
    assert last_line(output).endswith(
        "optimizer.lr=-1 is not valid: it must be a number in (0.0, inf] (e.g. optimizer.lr=0.001)."
    )


def test_the_default_configs_pass_the_checks(make_cfg):
    for overrides in ([], ["datamodule=text"], ["datamodule=mnist_rows"], ["optimizer=sgd", "scheduler=plateau"],
                      ["logger=many"], ["trainer=debug"], ["experiment=shakespeare_char_lstm"]):  # fmt: skip
        check_config(make_cfg(*overrides))


def test_a_label_outside_the_class_range_is_refused_before_training(fake_mnist_root):
    from rnnexp.data import MnistRows
    from rnnexp.errors import DataError

    root = fake_mnist_root(n_train=30, n_test=10)
    labels = root / "MNIST" / "raw" / "train-labels-idx1-ubyte"
    values = np.frombuffer(labels.read_bytes()[8:], dtype=np.uint8).copy()
    values[[3, 20]] = 10
    write_idx(labels, values)
    with pytest.raises(
        DataError, match=rf"{labels}: label 10 at index 3 is outside the class range 0..9 .*\(2 of 30"
    ):
        MnistRows(data_dir=str(root), download=False, val_size=5).setup("fit")


def test_a_config_error_is_a_config_error():
    assert issubclass(ConfigError, ValueError)


def test_every_entry_point_ends_a_bad_input_with_one_paragraph(tmp_path):
    """Sweeps (errors in the sweeper plugin, the Hydra callbacks, the storage), generate and translate
    (required keys, devices, numbers): exit 1, no traceback, the last line names the key."""
    corpus = write_corpus(tmp_path / "x.txt")
    search = ["-m", "hparams_search=sine_optuna", *QUIET, "hydra.sweeper.n_trials=1"]
    table = [
        ([*search, "hydra.sweeper.n_jobs=0", f"hydra.sweep.dir={tmp_path / 's0'}"], "hydra.sweeper.n_jobs=0"),
        ([*search, "hydra.sweeper.storage=bogus://x", f"hydra.sweep.dir={tmp_path / 's1'}"],
         "hydra.sweeper.storage='bogus://x'"),
        ([*search, f"hydra.sweep.dir={corpus}/sweep"], "hydra.sweep.dir="),  # under a file: not writable
        ([*search, "hydra/sweeper/sampler=tpee"], "the choices are random, tpe"),
        ({"module": "rnnexp.generate", "args": ["prompt=a"]}, "ckpt_path is required"),
        ({"module": "rnnexp.generate", "args": ["ckpt_path=x.ckpt", "device=gpu"]}, "device='gpu'"),
        ({"module": "rnnexp.generate", "args": ["ckpt_path=x.ckpt", "seed=-1"]}, "seed=-1"),
        ({"module": "rnnexp.translate", "args": ["ckpt_path=x.ckpt"]}, "source is required"),
        ({"module": "rnnexp.translate", "args": ["ckpt_path=x.ckpt", "source=1+1", "device=tpu"]}, "device='tpu'"),
    ]  # fmt: skip
    cases_file = tmp_path / "cases.json"
    cases_file.write_text(json.dumps([args for args, _ in table]))
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-m", "tests.cli_cases", str(tmp_path), str(cases_file)], cwd=ROOT,
                   env=env, check=True, timeout=600)  # fmt: skip
    codes = json.loads((tmp_path / "codes.json").read_text())
    problems = []
    for i, ((args, names), code) in enumerate(zip(table, codes, strict=True)):
        output = (tmp_path / f"{i}.out").read_text()
        if code != 1 or "Traceback" in output or names not in last_line(output):
            problems.append(f"{args}: exit {code}, last line: {last_line(output)!r}")
    assert not problems, "\n".join(problems)


def test_review_ends_a_bad_input_with_one_paragraph(tmp_path):
    """``python -m rnnexp.review``: a missing folder, a folder with no runs, a report name it cannot write,
    replicate keys no job sets, an option it does not have (it takes no metric name: the objective is each
    job's results.json)."""
    sweep = tmp_path / "sweep"
    for number, lr in enumerate((0.01, 0.1)):  # two jobs, as a grid leaves them
        (sweep / str(number) / ".hydra").mkdir(parents=True)
        (sweep / str(number) / ".hydra" / "overrides.yaml").write_text(f"- optimizer.lr={lr}\n")
        results = {"status": "completed", "objective": lr, "optimized_metric": "val/mse_best"}
        (sweep / str(number) / "results.json").write_text(json.dumps(results))
    (tmp_path / "empty").mkdir()
    review = [
        ([str(tmp_path / "missing")], f"Sweep directory {tmp_path / 'missing'} does not exist"),
        ([str(tmp_path / "empty")], "holds no Hydra job folders"),
        ([str(sweep), "--out", str(tmp_path / "report.pdf")], "the report is written as .html or .png"),
        ([str(sweep), "--replicate-keys", "sed"], "--replicate-keys sed: no job of the sweep overrides it"),
        ([str(sweep), "--metric", "val/acc"], "unrecognized arguments: --metric val/acc"),
    ]
    table = [({"module": "rnnexp.review", "args": args}, names) for args, names in review]
    problems = refusal_problems(table, [args for args, _ in table], tmp_path)
    assert not problems, "\n".join(problems)
    assert not list(sweep.glob("report.*"))  # refused before anything was written


def test_a_text_file_that_starts_with_a_byte_order_mark_reads_without_it(tmp_path):
    from rnnexp.data.char_corpus import read_text
    from rnnexp.data.char_pairs import read_pairs

    corpus = tmp_path / "bom.txt"
    corpus.write_bytes("\ufeffROMEO: hi".encode())
    assert read_text(corpus) == "ROMEO: hi"
    pairs = tmp_path / "pairs.tsv"
    pairs.write_bytes("\ufeff1+1\t2\n2+2\t4\n".encode())
    assert read_pairs(pairs, 0.0)[0] == ("1+1", "2")
