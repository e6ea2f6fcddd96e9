"""The training-overhead benchmark runs both paths end to end (tiny sizes, a few steps); no timing is asserted."""

import torch

from benchmarks.train_step_overhead import CELLS, Shape, bench_config, main, run_benchmark


def test_both_paths_train_every_cell_and_report_positive_throughput(tmp_path):
    results = run_benchmark(
        CELLS,
        Shape(batch_size=8, hidden_size=4),
        warmup=1,
        steps=2,
        repeats=2,
        device="cpu",
        work_dir=tmp_path,
    )
    assert [r.cell for r in results] == list(CELLS)
    for result in results:
        for timings in (result.plain, result.lightning):
            assert len(timings) == 2  # one per repeat, paired for the ratio
            assert all(t.samples == 16 and t.wall_s > 0 and t.cpu_s > 0 for t in timings)
        assert result.samples_per_s("plain") > 0 and result.samples_per_s("lightning") > 0
        assert result.ratio > 0 and result.cpu_ratio > 0


def test_the_lightning_path_keeps_the_default_gradient_clipping(tmp_path):
    cfg = bench_config("lstm", Shape(), tmp_path / "data", tmp_path / "run", max_steps=3, device="cpu")
    assert cfg.trainer.gradient_clip_val > 0  # the plain loop clips the same way (clip_gradients)
    assert cfg.trainer.max_steps == 3 and cfg.trainer.limit_val_batches == 0
    assert cfg.datamodule._target_.endswith("MnistRows") and cfg.model.cell == "lstm"


def test_the_command_line_prints_a_row_per_cell(capsys):
    threads = torch.get_num_threads()
    try:
        main(["--cells", "gru", "--batch-size", "4", "--hidden-size", "4", "--warmup", "1", "--steps", "1",
              "--repeats", "1", "--threads", "1"])  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert "threads 1" in out and torch.__version__ in out
    assert out.count("| gru |") == 1
