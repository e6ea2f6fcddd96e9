"""Encoder-decoder forecasting: the decoder loop, teacher forcing, free-running evaluation, the persistence
baseline, and a small run that beats it."""

import csv
from pathlib import Path

import pytest
import torch

from rnnexp.data import SineWaves
from rnnexp.errors import ConfigError
from rnnexp.models.recurrent import RecurrentSpec
from rnnexp.models.seq2seq import EncoderDecoder, RecurrentDecoder, VectorBridge, decode
from rnnexp.tasks import Forecaster
from rnnexp.training import train

pytestmark = pytest.mark.filterwarnings("ignore:.*self.log.*:UserWarning")  # tasks used without a Trainer


def make_task(cell: str = "gru", bidirectional: bool = False, **kwargs) -> Forecaster:
    torch.manual_seed(0)
    spec = RecurrentSpec(cell=cell, hidden_size=8, num_layers=2, bidirectional=bidirectional)
    return Forecaster(EncoderDecoder(spec, 1, 1, horizon=6), **kwargs)


def windows(**kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    dm = SineWaves(task="forecast", num_sequences=20, seq_len=12, horizon=6, **kwargs)
    dm.setup("fit")
    return dm.datasets["train"].tensors


def test_forecast_windows_are_a_context_and_the_clean_values_that_follow():
    context, future = windows(noise=0.0)
    assert context.shape == (16, 12, 1) and future.shape == (16, 6, 1)  # (batch, time, features)
    noisy, same_future = windows(noise=0.3)
    torch.testing.assert_close(future, same_future)
    assert (noisy - context).std() == pytest.approx(0.3, rel=0.2)
    # One wave: a sine's second difference is -(2 - 2 cos(w step)) times its value, across the boundary too.
    wave = torch.cat([context, future], dim=1)[:, :, 0]
    second = wave[:, 2:] - 2 * wave[:, 1:-1] + wave[:, :-2]
    ratio = second / wave[:, 1:-1]
    assert (ratio - ratio.median(dim=1, keepdim=True).values).abs()[wave[:, 1:-1].abs() > 0.2].max() < 1e-3


@pytest.mark.parametrize("cell, bidirectional", [("lstm", True), ("gru", False), ("rnn", True)])
def test_evaluation_never_reads_the_future(cell, bidirectional):
    task = make_task(cell, bidirectional).eval()
    context, future = windows()
    changed = future + torch.randn_like(future)
    with torch.no_grad():
        a = task.model_step((context, future), "val")["preds"]
        b = task.model_step((context, changed), "test")["preds"]
    torch.testing.assert_close(a, b)
    assert a.shape == future.shape


def test_teacher_forcing_changes_the_training_loss_and_follows_its_schedule():
    context, future = windows()
    forced = make_task(teacher_forcing=1.0, teacher_forcing_end=1.0).model_step((context, future), "train")
    free = make_task(teacher_forcing=0.0, teacher_forcing_end=0.0).model_step((context, future), "train")
    assert abs(forced["loss"].item() - free["loss"].item()) > 1e-4
    task = make_task(teacher_forcing=1.0, teacher_forcing_end=0.0, teacher_forcing_epochs=4)
    assert [task.teacher_forcing_ratio(e) for e in range(6)] == [1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    with pytest.raises(ConfigError, match=r"task\.teacher_forcing=1\.5 is a probability"):
        make_task(teacher_forcing=1.5)


def test_the_fused_teacher_forced_pass_equals_the_step_loop():
    torch.manual_seed(0)
    decoder = RecurrentDecoder(RecurrentSpec(cell="lstm", hidden_size=8, num_layers=2), 3, 3)
    start, truth = torch.randn(5, 1, 3), torch.randn(5, 4, 3)
    state = (torch.randn(2, 5, 8), torch.randn(2, 5, 8))
    fused = decode(decoder, start, state, 4, teacher_inputs=truth, teacher_forcing=1.0)
    # Ratio just below 1 takes the step loop; every draw in [0, 1) still picks the truth.
    stepped = decode(decoder, start, state, 4, teacher_inputs=truth, teacher_forcing=1.0 - 1e-9)
    torch.testing.assert_close(fused, stepped)
    free = decode(decoder, start, state, 4, next_input=lambda out: out * 0)  # a custom feedback is used
    zeros_fed = decode(decoder, start, state, 4, teacher_inputs=torch.zeros_like(truth), teacher_forcing=1.0)
    torch.testing.assert_close(free, zeros_fed)


def test_bridges_give_the_decoder_its_state_shape():
    spec = RecurrentSpec(cell="lstm", hidden_size=8, num_layers=3, bidirectional=True)
    net = EncoderDecoder(spec, 1, 1, horizon=4)
    h, c = net.encode(torch.randn(5, 10, 1))
    assert h.shape == c.shape == (3, 5, 8)  # both directions per layer mapped to one state
    h, c = VectorBridge(spec, vector_size=7)(torch.randn(5, 7))  # e.g. an image encoder's features
    assert h.shape == c.shape == (3, 5, 8)


def test_the_issue_command_points_to_the_forecasting_config(make_cfg):
    with pytest.raises(ConfigError, match=r"use datamodule=sine_forecast"):
        train(
            make_cfg("datamodule=sine", "datamodule.task=forecast", "datamodule.horizon=20", "trainer=debug")
        )


@pytest.fixture
def one_thread():
    """Tensors this small gain nothing from threads, and on a busy machine idle threads spin-wait."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_a_short_training_beats_the_persistence_forecast_threefold(one_thread):
    """The task's own training step (teacher forcing 0.5) on clean waves, 150 Adam steps: the free-running
    forecast's MSE on held-out windows is under a third of the persistence forecast's."""
    dm = SineWaves(task="forecast", num_sequences=320, seq_len=24, horizon=10, noise=0.0, test_fraction=0.2)
    dm.setup("fit")
    torch.manual_seed(0)
    net = EncoderDecoder(RecurrentSpec(cell="gru", hidden_size=32), 1, 1, horizon=10)
    task = Forecaster(net, teacher_forcing=0.5, teacher_forcing_end=0.5)
    optimizer = torch.optim.Adam(task.parameters(), lr=0.01)
    context, future = dm.datasets["train"].tensors
    for step in range(150):
        batch = torch.randint(0, len(context), (64,), generator=torch.Generator().manual_seed(step))
        optimizer.zero_grad()
        task.model_step((context[batch], future[batch]), "train")["loss"].backward()
        optimizer.step()
    task.eval()
    with torch.no_grad():
        task.model_step(dm.datasets["test"].tensors, "test")
    mse, naive = task.test_metrics["mse"].compute().item(), task.test_naive_mse.compute().item()
    assert mse < naive / 3, (mse, naive)


def test_a_forecasting_run_logs_the_baseline_per_step_and_draws_forecasts(make_cfg):
    cfg = make_cfg("datamodule=sine_forecast", "datamodule.horizon=5", "datamodule.num_sequences=64",
                   "datamodule.seq_len=16", "datamodule.batch_size=16", "model.hidden_size=8",
                   "model.bidirectional=true", "trainer.max_epochs=2", "~callbacks.progress_bar",
                   "+trainer.enable_progress_bar=false", "trainer.enable_model_summary=false")  # fmt: skip
    results, objects = train(cfg)
    test = results["test"]
    assert test["test/naive_mse"] > 0 and test["test/mse"] > 0 and results["val"]["val/naive_mse"] > 0
    run_dir = Path(results["run_dir"])
    with open(run_dir / "horizon_mse.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [int(r["step"]) for r in rows] == list(range(1, 6))
    naive = [float(r["naive_mse"]) for r in rows]
    assert naive[-1] > naive[0]  # persistence drifts away as the horizon grows
    assert sum(float(r["naive_mse"]) for r in rows) / 5 == pytest.approx(test["test/naive_mse"], rel=1e-5)
    assert (run_dir / "figures" / "test_horizon_mse.png").is_file()
    assert (run_dir / "figures" / "val_forecasts_epoch001.png").is_file()
    assert objects["task"].teacher_forcing_ratio(1) == 0.5  # 1.0 -> 0.0 over trainer.max_epochs=2
