"""Stateful sine streams: one long wave cut into streams read in order, the hidden state carried across
batches (shared with text: rnnexp.data.streams, rnnexp.tasks.carried_state), and exact resume."""

import pytest
import torch

from rnnexp.data import SineWaves
from rnnexp.data.streams import rank_streams
from rnnexp.errors import ConfigError
from rnnexp.models.recurrent import RecurrentNet, RecurrentSpec
from rnnexp.tasks import SequenceRegressor
from rnnexp.training import train
from tests.conftest import compose_config
from tests.resilience import TINY_RUN, fault, run_cli, same_results

pytestmark = pytest.mark.filterwarnings("ignore:.*self.log.*:UserWarning")  # tasks used without a Trainer


def streams(**kwargs) -> SineWaves:
    dm = SineWaves(tbptt=True, num_sequences=40, seq_len=16, batch_size=4, **kwargs)
    dm.setup("fit")
    return dm


def test_each_batch_continues_every_stream_where_the_previous_batch_ended():
    dm = streams(noise=0.0, task="sin_to_cos")
    batches = list(dm.train_dataloader())
    series_inputs, series_targets = dm.streams["train"]  # (32 windows * 16 steps, 1): one long wave
    assert len(batches) == 8 and all(x.shape == (4, 16, 1) for x, _ in batches)
    joined = torch.cat([x for x, _ in batches], dim=1)
    torch.testing.assert_close(joined, rank_streams(series_inputs, 4))
    torch.testing.assert_close(torch.cat([y for _, y in batches], dim=1), rank_streams(series_targets, 4))
    torch.testing.assert_close(
        joined**2 + torch.cat([y for _, y in batches], dim=1) ** 2, torch.ones_like(joined)
    )
    # Two processes: each takes its own streams of the same layout, disjoint and together complete.
    both = [torch.cat(list(x for x, _ in dm.stream_dataset("val", r, 2)), dim=1) for r in (0, 1)]
    everything = rank_streams(dm.streams["val"][0], 8)
    torch.testing.assert_close(torch.stack(both, 1).flatten(0, 1), everything)


def make_task(**kwargs) -> SequenceRegressor:
    torch.manual_seed(0)
    net = RecurrentNet(RecurrentSpec(cell="lstm", hidden_size=8, num_layers=2), 1, 1, per_step=True)
    return SequenceRegressor(net, carry_hidden=True, **kwargs)


def test_the_carried_state_changes_the_next_batch_and_a_reset_restores_it():
    task = make_task()
    (x0, y0), (x1, y1) = list(streams().train_dataloader())[:2]
    fresh = task.model_step((x1, y1), "val")["preds"]
    task.on_validation_epoch_start()
    task.model_step((x0, y0), "val")
    carried = task.model_step((x1, y1), "val")["preds"]
    assert (carried - fresh).abs().max() > 1e-3  # batch 1 starts where batch 0 ended, not from zeros
    task.on_validation_epoch_start()  # a new pass: back to zeros
    torch.testing.assert_close(task.model_step((x1, y1), "val")["preds"], fresh)
    assert task.carried["train"] is None  # each stage carries its own state


def test_no_gradient_crosses_the_batch_boundary():
    task = make_task()
    (x0, y0), (x1, y1) = list(streams().train_dataloader())[:2]
    task.model_step((x0, y0), "train")
    h, c = task.carried["train"]
    assert not h.requires_grad and not c.requires_grad
    task.zero_grad()
    task.model_step((x1, y1), "train")["loss"].backward()
    truncated = [p.grad.clone() for p in task.parameters()]
    task.zero_grad()
    preds, _ = task.net.forward_with_state(x1, (h.clone(), c.clone()))  # the same values, as constants
    task.loss(preds, y1).backward()
    torch.testing.assert_close(truncated, [p.grad for p in task.parameters()])
    task.zero_grad()
    _, hidden = task.net.forward_with_state(x0)
    preds, _ = task.net.forward_with_state(
        x1, hidden
    )  # full BPTT through batch 0: what truncation must not do
    task.loss(preds, y1).backward()
    assert not all(torch.allclose(a, p.grad) for a, p in zip(truncated, task.parameters(), strict=True))


def test_streams_refuse_a_bidirectional_model_and_forecast_windows(make_cfg):
    with pytest.raises(ConfigError, match=r"model\.bidirectional=true cannot carry its state"):
        train(make_cfg("datamodule.tbptt=true", "model.bidirectional=true", "trainer=debug"))
    with pytest.raises(ConfigError, match=r"datamodule\.tbptt=true .* datamodule\.task=forecast"):
        SineWaves(task="forecast", tbptt=True)
    with pytest.raises(
        ConfigError, match=r"The val split has 64 steps, too few for datamodule\.batch_size=128"
    ):
        SineWaves(tbptt=True, num_sequences=10, batch_size=128).setup("fit")
    no_test = SineWaves(tbptt=True, num_sequences=20, batch_size=4, test_fraction=0.0)
    no_test.setup("fit")
    assert no_test.test_dataloader() == [] and len(no_test.val_dataloader()) > 0


def test_the_tbptt_command_trains_a_stateful_regressor(make_cfg):
    cfg = make_cfg("datamodule=sine", "datamodule.tbptt=true", "trainer=debug", "model.hidden_size=8")
    assert cfg.task.carry_hidden is True
    _, objects = train(cfg)
    assert objects["task"].carried["train"] is not None


@pytest.mark.slow
def test_a_stateful_run_killed_mid_epoch_resumes_to_bit_identical_results(tmp_path):
    overrides = [*TINY_RUN, "datamodule.tbptt=true"]  # 8 streams: 8 batches per epoch, as TINY_RUN
    reference, _ = train(compose_config(overrides, tmp_path / "reference"))
    run_dir = tmp_path / "run"
    killed = run_cli(*overrides, f"hydra.run.dir={run_dir}", *fault("SignalAtStep", step=13))
    assert killed.returncode == -9, killed.stderr[-2000:]  # SIGKILL while epoch 1 (steps 8-15) runs
    checkpoints = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert checkpoints == ["epoch000.ckpt", "last.ckpt", "step0000010.ckpt"]  # newest: step 10, mid-epoch
    assert "carried_hidden" in torch.load(run_dir / "checkpoints" / "step0000010.ckpt", weights_only=True)
    results, _ = train(compose_config([*overrides, "ckpt_path=last"], run_dir))
    assert same_results(results, reference), (results, reference)
