"""Both benchmarks run every path end to end (tiny sizes, a few steps). No speed is asserted, only what a
broken benchmark would get wrong: the steps and items each path timed, the Lightning path being the project's
task, the table naming every cell with the numbers measured, ratios that are the recorded timings' ratios."""

import ast
import csv
import math
import statistics
from pathlib import Path

import pytest
import torch
from pytorch_lightning.callbacks import LearningRateMonitor

from benchmarks import sine_modes, text_throughput, train_step_overhead
from benchmarks.harness import CELLS, CellResult, per_step_callbacks
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


def test_every_mnist_path_times_the_stated_steps_of_every_cell(tmp_path):
    shape = train_step_overhead.Shape(batch_size=8, hidden_size=4)
    results = train_step_overhead.run_benchmark(
        CELLS, shape, warmup=1, steps=2, repeats=2, device="cpu", work_dir=tmp_path, bare=True
    )
    bare = train_step_overhead.BARE
    assert [r.cell for r in results] == list(CELLS)
    for result in results:
        assert set(result.timings) == {"lightning", "plain", bare}
        for timings in result.timings.values():
            assert len(timings) == 2  # one per repeat, paired with the plain loop's
            assert all(t.steps == 2 and t.items == 16 and t.wall_s > 0 and t.cpu_s > 0 for t in timings)
        assert_plausible_ratios(result, "lightning", bare)
        assert math.isfinite(result.cpu_ratio()) and 0.05 < result.cpu_ratio() < 20
        # The Lightning path fitted the project's classifier: its CSV logger holds the epoch's train metrics
        # (the bare task logs nothing). Repeat 1 reverses the order, so the Lightning path wrote its run dir last.
        with open(tmp_path / f"run-{result.cell}-1" / "csv" / "metrics.csv") as file:
            epoch_end = [row for row in csv.DictReader(file) if row.get("train/loss")]
        assert [int(row["step"]) for row in epoch_end] == [2]  # once, at the last of the 3 steps (from 0)
        assert math.isfinite(float(epoch_end[0]["train/loss"])) and 0 <= float(epoch_end[0]["train/acc"]) <= 1

    rows = table_rows(train_step_overhead.format_table(results, shape))
    assert list(rows) == list(CELLS)
    for result in results:
        plain, lightning, ratio, paired, cpu, bare_per_s, bare_ratio = rows[result.cell]
        assert (plain, lightning, bare_per_s) == tuple(
            f"{result.per_s(path):.0f}" for path in ("plain", "lightning", bare)
        )
        assert (ratio, paired, cpu, bare_ratio) == (
            f"{result.ratio():.3f}",
            f"{result.paired_ratio():.3f}",
            f"{result.cpu_ratio():.3f}",
            f"{result.ratio(bare):.3f}",
        )


def test_the_lightning_path_is_the_default_mnist_rows_config_with_clipping_on(tmp_path):
    cfg = train_step_overhead.bench_config(
        "lstm", train_step_overhead.Shape(), tmp_path / "data", tmp_path / "run", max_steps=3, device="cpu"
    )
    assert cfg.datamodule._target_.endswith("MnistRows") and cfg.model.cell == "lstm"
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


def test_the_mnist_command_line_prints_a_row_per_cell(capsys):
    run_main(train_step_overhead, "--cells", "gru", "--batch-size", "4", "--hidden-size", "4")
    out = capsys.readouterr().out
    assert "threads 1" in out and torch.__version__ in out
    rows = table_rows(out)
    assert list(rows) == ["gru"] and len(rows["gru"]) == 5  # no bare columns without --bare
    assert all(float(value) > 0 for value in rows["gru"])


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
