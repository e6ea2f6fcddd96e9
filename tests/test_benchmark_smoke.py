"""Both benchmarks run every path end to end (tiny sizes, a few steps). No speed is asserted, only what a
broken benchmark would get wrong: the steps and items each path timed, the Lightning path being the project's
task, the table naming every cell with the numbers measured, ratios that are the recorded timings' ratios."""

import ast
import csv
import dataclasses
import math
import statistics
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from pytorch_lightning.callbacks import LearningRateMonitor

from benchmarks import sine_modes, text_throughput, train_step_overhead
from benchmarks.harness import CELLS, CellResult, per_step_callbacks
from benchmarks.task_steps import TASKS, plain_step_for
from rnnexp.lifecycle.checkpoint import CLASS_PATHS
from rnnexp.lifecycle.interrupts import InterruptCheckpoint
from rnnexp.lifecycle.non_finite import NonFiniteLossGuard
from rnnexp.lifecycle.resume_state import ResumeState
from rnnexp.sweeps.pruning import OptunaPruning

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def table_rows(table: str) -> dict[str, list[str]]:
    """The Markdown table's body rows by cell name (header and separator left out)."""
    rows = [line.strip("|").split("|") for line in table.splitlines() if line.startswith("| ")]
    return {cells[0].strip(): [c.strip() for c in cells[1:]] for cells in rows[1:]}


def assert_plausible_ratios(result: CellResult, *paths: str) -> None:
    """Each ratio is what the recorded timings give (no bound on speed: a loaded machine can swing it 20x)."""
    for path in paths:
        wall = [t.items / t.wall_s for t in result.timings[path]]
        base = [t.items / t.wall_s for t in result.timings["plain"]]
        expected_paired = statistics.median(w / b for w, b in zip(wall, base, strict=True))
        assert result.paired_ratio(path) == pytest.approx(expected_paired), (result.cell, path)
        assert result.ratio(path) == pytest.approx(statistics.median(wall) / statistics.median(base))
        assert math.isfinite(result.ratio(path)) and result.ratio(path) > 0


def check_overhead_results(results, units, tmp_path, repeats: int) -> None:
    """Each path timed the stated steps and items; the Lightning path fitted the project's task (its CSV
    logger holds the epoch's train metrics, which the bare task never logs); the table shows what was timed."""
    bare = train_step_overhead.BARE
    assert [r.cell for r in results] == list(units)
    for result in results:
        assert set(result.timings) == {"lightning", "plain", bare}
        for timings in result.timings.values():
            assert len(timings) == repeats  # one per repeat, paired with the plain loop's
            # Two timed steps: neither can exceed 3x their median (their mean), so the relay leaves none out.
            assert all(t.steps == 2 and t.left_out == 0 for t in timings)
            assert all(t.wall_s > 0 and t.cpu_s > 0 for t in timings)
        assert_plausible_ratios(result, "lightning", bare)
        task = result.cell.split("/")[0]
        with open(tmp_path / "run" / task / "csv" / "metrics.csv") as file:
            epoch_end = [row for row in csv.DictReader(file) if row.get("train/loss")]
        assert [int(row["step"]) for row in epoch_end][-1] == 2  # at the last of the 3 steps (from 0)
        assert math.isfinite(float(epoch_end[-1]["train/loss"]))
    rows = table_rows(train_step_overhead.format_table(results, hidden_size=4))
    assert list(rows) == list(units)
    for result in results:
        plain, lightning, ratio, paired, cpu, bare_per_s, bare_paired, bare_cpu, over_bare = rows[result.cell]
        assert (plain, lightning, bare_per_s) == tuple(
            f"{result.per_s(path):.0f}" for path in ("plain", "lightning", bare)
        )
        assert (ratio, paired, cpu, bare_paired, bare_cpu, over_bare) == (
            f"{result.ratio():.3f}",
            f"{result.paired_ratio():.3f}",
            f"{result.cpu_ratio():.3f}",
            f"{result.paired_ratio(bare):.3f}",
            f"{result.cpu_ratio(bare):.3f}",
            f"{result.paired_ratio('lightning', bare):.3f}",
        )


@pytest.mark.parametrize("schedule", train_step_overhead.SCHEDULES)
def test_every_classifier_path_times_the_stated_steps_of_every_cell(tmp_path, schedule):
    """Both schedules: the paths a step each in turn (``steps``, the relay) and one run after another
    (``runs``, where the paths share one run folder: the second repeat, reversed, fits the rnnexp task last)."""
    results = train_step_overhead.run_benchmark(
        ("classifier",), CELLS, hidden_size=4, warmup=1, steps=2, repeats=2, device="cpu", work_dir=tmp_path,
        bare=True, batch_size=8, schedule=schedule,
    )  # fmt: skip
    check_overhead_results(results, [f"classifier/{cell}" for cell in CELLS], tmp_path, repeats=2)
    assert all(t.items == 16 for r in results for ts in r.timings.values() for t in ts)  # 2 steps x 8


@pytest.mark.slow
def test_every_task_path_times_the_stated_steps(tmp_path):
    results = train_step_overhead.run_benchmark(
        TASKS, ("gru",), hidden_size=4, warmup=1, steps=2, repeats=2, device="cpu", work_dir=tmp_path,
        bare=True, batch_size=4,
    )  # fmt: skip
    check_overhead_results(results, [f"{task}/gru" for task in TASKS], tmp_path, repeats=2)


def test_every_task_class_has_a_benchmark_step_and_a_class_without_one_stops_the_script(tmp_path):
    """Every task class rnnexp can save (``CLASS_PATHS``) has a plain step and a benchmark row; a class
    without a step, or a task name without a row, makes the benchmark stop by name, never leaves a row out."""
    task_classes = {name for name, path in CLASS_PATHS.items() if path.startswith("rnnexp.tasks.")}
    covered = set()
    for task in TASKS:
        cfg = train_step_overhead.bench_config(
            task, "gru", 4, tmp_path / "data", tmp_path / task, 3, "cpu", 4
        )
        assert callable(plain_step_for(cfg))
        assert cfg.trainer.max_steps == 3 and cfg.trainer.limit_val_batches == 0
        covered.add(cfg.task._target_.rsplit(".", 1)[-1])
    assert covered == task_classes and len(TASKS) == len(task_classes) + 1  # the regressor serves two rows
    stub = OmegaConf.create({"task": {"_target_": "rnnexp.tasks.base.SequenceTask"}})
    with pytest.raises(SystemExit, match="no plain training step for task class SequenceTask"):
        plain_step_for(stub)
    with pytest.raises(SystemExit, match=r"no benchmark step for task\(s\) \['summariser'\]"):
        train_step_overhead.main(["--tasks", "summariser"])


def test_the_four_later_tasks_time_the_stated_steps(tmp_path):
    """The adding problem, copy memory, text classifier and tagger rows, through all three paths."""
    tasks = ("value_regressor", "copy_memory", "text_classifier", "tagger")
    # The default schedule, the relay: each path writes to its own run folder (the rnnexp task's stays
    # work_dir/run/<task>), so the bare task's logger, which with nothing to log clears its folder, never
    # clears the rnnexp task's CSV. Two repeats: the second relays the paths in the reverse order.
    results = train_step_overhead.run_benchmark(
        tasks, ("gru",), hidden_size=4, warmup=1, steps=2, repeats=2, device="cpu", work_dir=tmp_path,
        bare=True, batch_size=4,
    )  # fmt: skip
    check_overhead_results(results, [f"{task}/gru" for task in tasks], tmp_path, repeats=2)


def test_an_unknown_schedule_stops_the_overhead_benchmark_by_name(tmp_path):
    """``run_benchmark`` refuses a schedule it does not have before timing anything; the command line's
    default is the relay."""
    with pytest.raises(ValueError, match="schedule='parallel'"):
        train_step_overhead.run_benchmark(
            ("classifier",), ("gru",), hidden_size=4, warmup=1, steps=2, repeats=1, device="cpu",
            work_dir=tmp_path, schedule="parallel",
        )  # fmt: skip
    assert not any(tmp_path.iterdir())  # nothing was written: no data, no run folder
    assert train_step_overhead.parse_args([]).schedule == "steps"
    assert train_step_overhead.parse_args(["--schedule", "runs"]).schedule == "runs"


def test_the_lightning_path_is_the_default_mnist_rows_config_with_clipping_on(tmp_path):
    cfg = train_step_overhead.bench_config(
        "classifier", "lstm", 128, tmp_path / "data", tmp_path / "run", 3, "cpu"
    )
    assert cfg.datamodule._target_.endswith("MnistRows") and cfg.model.cell == "lstm"
    assert cfg.datamodule.batch_size == 128  # the benchmark's batch (mnist_rows' default: 64)
    assert cfg.trainer.gradient_clip_val == 1.0  # the plain loop clips the same way (clip_gradients)
    assert cfg.trainer.max_steps == 3 and cfg.trainer.limit_val_batches == 0
    # What runs each step stays in: the default callbacks minus checkpoints, early stopping and progress bar.
    kept = {type(cb) for cb in per_step_callbacks(cfg)}
    assert kept == {InterruptCheckpoint, ResumeState, LearningRateMonitor, NonFiniteLossGuard, OptunaPruning}


def run_main(module, *args: str) -> None:
    threads = torch.get_num_threads()
    try:
        module.main([*args, "--warmup", "1", "--steps", "1", "--repeats", "1", "--threads", "1"])
    finally:
        torch.set_num_threads(threads)


def test_the_overhead_command_line_prints_a_row_per_task_and_cell(capsys):
    run_main(
        train_step_overhead,
        "--tasks",
        "regressor",
        "--cells",
        "gru",
        "--batch-size",
        "4",
        "--hidden-size",
        "4",
    )
    out = capsys.readouterr().out
    assert "threads 1" in out and torch.__version__ in out
    rows = table_rows(out)
    assert (
        list(rows) == ["regressor/gru"] and len(rows["regressor/gru"]) == 5
    )  # no bare columns without --bare
    assert all(float(value) > 0 for value in rows["regressor/gru"])


def test_both_text_paths_and_generation_time_the_stated_steps_of_every_cell(tmp_path):
    shape = text_throughput.Shape(batch_size=2, seq_len=8, hidden_size=4, num_layers=1, embedding_dim=4)
    results = text_throughput.run_benchmark(
        CELLS, shape, warmup=1, steps=2, repeats=1, gen_length=10, device="cpu", work_dir=tmp_path
    )
    assert [r.cell for r in results] == list(CELLS)
    for result in results:
        assert set(result.timings) == {"lightning", "plain", "generate"}
        for path in ("lightning", "plain"):
            [timing] = result.timings[path]
            assert (timing.steps, timing.items) == (2, 2 * 2 * 8)  # steps x streams x seq_len characters
        [generated] = result.timings["generate"]
        assert (generated.steps, generated.items) == (10, 10) and generated.wall_s > 0
        assert_plausible_ratios(result, "lightning")
    rows = table_rows(text_throughput.format_table(results, shape))
    assert list(rows) == list(CELLS)
    for result in results:
        assert rows[result.cell] == [
            *(f"{result.per_s(path):.0f}" for path in ("plain", "lightning")),
            f"{result.paired_ratio():.3f}",
            f"{result.per_s('generate'):.0f}",
        ]


def test_the_text_command_line_prints_a_row_per_cell(capsys):
    run_main(text_throughput, "--cells", "rnn", "--batch-size", "2", "--seq-len", "8", "--hidden-size", "4",
             "--num-layers", "1", "--embedding-dim", "4", "--gen-length", "5")  # fmt: skip
    rows = table_rows(capsys.readouterr().out)
    assert list(rows) == ["rnn"] and all(float(value) > 0 for value in rows["rnn"])


def test_the_text_quality_arms_score_the_same_validation_characters(tmp_path):
    """The evaluation every arm gets is rnnexp's own validation when that covers the whole split: so the
    table compares the loops on identical characters, and rnnexp's logged value differs only by its subset."""
    from benchmarks import text_quality

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("".join(f"line {i % 7} of the tale, told {i % 3} times.\n" for i in range(400)))
    settings = text_quality.Settings(hidden_size=8, num_layers=1, seq_len=10, batch_size=4, steps=3)
    datamodule = text_quality.corpus_splits(corpus, settings)
    full = text_quality.run_rnnexp(corpus, datamodule, settings, "rnnexp", ("trainer.limit_val_batches=1.0",))
    assert full.logged_val_bpc == pytest.approx(full.val_bpc, rel=1e-5)
    plain = text_quality.run_plain(datamodule, settings)
    # The text defaults are the plain loop's (embedding as wide as the LSTM, PyTorch's init): the same network
    # from the same draws, trained on the same batches, so the same validation bits/char (BENCHMARKS.md).
    assert full.val_bpc == pytest.approx(plain.val_bpc, rel=1e-6, abs=0)
    before = text_quality.run_rnnexp(corpus, datamodule, settings, "rnnexp_before")
    assert abs(before.val_bpc - plain.val_bpc) > 1e-3  # the former defaults train another network
    for result in (full, plain, before):
        assert result.train_chars == 3 * 4 * 10 and math.isfinite(result.val_bpc) and result.train_cpu_s > 0
    rows = table_rows(text_quality.format_table([dataclasses.asdict(r) for r in (plain, full, before)]))
    assert list(rows) == ["plain", "rnnexp", "rnnexp_before"]


@pytest.mark.parametrize("path", sorted(BENCHMARKS.glob("*.py")), ids=lambda p: p.name)
def test_a_benchmark_imports_rnnexp_never_the_tests(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    modules = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    modules |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert not {m for m in modules if m == "tests" or m.startswith("tests.")}


def test_the_sine_modes_benchmark_reports_every_run_with_its_baseline_and_epoch_times(capsys):
    threads = torch.get_num_threads()
    try:  # main() sets one thread for the whole process; later tests compare against subprocesses
        rows = sine_modes.main(
            ["--epochs", "2", "--num-sequences", "64", "--hidden-size", "4", "--horizon", "3"]
        )
    finally:
        torch.set_num_threads(threads)
    assert [row["run"] for row in rows] == [
        "sin->cos, independent windows", "sin->cos, tbptt streams", "forecast, noise 0", "forecast, noise 0.05",
    ]  # fmt: skip
    for row in rows:
        assert math.isfinite(row["test/mse"]) and row["s/epoch"] > 0 and row["cpu s/epoch"] > 0
    assert all("test/naive_mse" in row for row in rows[2:]) and "test/naive_mse" not in rows[0]
    assert set(table_rows(capsys.readouterr().out)) == {row["run"] for row in rows}


def test_the_packing_benchmark_times_both_encoders_of_every_cell(monkeypatch, capsys):
    from benchmarks import seq2seq_packing

    argv = ["seq2seq_packing", "--batch-size", "8", "--max-length", "6", "--hidden-size", "4", "--steps", "1"]
    monkeypatch.setattr("sys.argv", [*argv, "--repeats", "1"])
    seq2seq_packing.main()
    rows = table_rows(capsys.readouterr().out)
    assert sorted(rows) == sorted(CELLS)
    # One timed pass of a tiny batch: a busy machine can stretch either path many times, so only the form of
    # the numbers is checked (milliseconds are rounded to 0.1 and may print 0.0).
    for padded, packed, ratio in rows.values():
        assert float(padded) >= 0 and float(packed) >= 0 and math.isfinite(float(ratio)) and float(ratio) > 0
