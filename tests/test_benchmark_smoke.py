"""The training-overhead benchmark runs every path end to end (tiny sizes, a few steps); no timing is asserted."""

import torch

from benchmarks.train_step_overhead import BARE, CELLS, Shape, bench_config, main, run_benchmark


def test_every_path_trains_every_cell_and_reports_positive_throughput(tmp_path):
    shape = Shape(batch_size=8, hidden_size=4)
    results = run_benchmark(
        CELLS, shape, warmup=1, steps=2, repeats=2, device="cpu", work_dir=tmp_path, bare=True
    )
    assert [r.cell for r in results] == list(CELLS)
    for result in results:
        assert set(result.timings) == {"lightning", "plain", BARE}
        for timings in result.timings.values():
            assert len(timings) == 2  # one per repeat, paired with the plain loop's
            assert all(t.samples == 16 and t.wall_s > 0 and t.cpu_s > 0 for t in timings)
        assert result.samples_per_s("plain") > 0 and result.samples_per_s("lightning") > 0
        assert min(result.ratio(), result.paired_ratio(), result.cpu_ratio(), result.ratio(BARE)) > 0


def test_the_lightning_path_is_the_default_mnist_rows_config_with_clipping_on(tmp_path):
    cfg = bench_config("lstm", Shape(), tmp_path / "data", tmp_path / "run", max_steps=3, device="cpu")
    assert cfg.datamodule._target_.endswith("MnistRows") and cfg.model.cell == "lstm"
    assert cfg.trainer.gradient_clip_val > 0  # the plain loop clips the same way (clip_gradients)
    assert cfg.trainer.max_steps == 3 and cfg.trainer.limit_val_batches == 0


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
