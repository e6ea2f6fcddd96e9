"""The adding problem: batches follow the definition (one marker per half, the target their values' sum),
the always-predict-1 baseline is what the task logs, generation is fixed by the seed, and a GRU learns a
short problem far below the baseline."""

import pytest
import torch

from rnnexp.data.adding import BASELINE_MSE, AddingProblem, adding_inputs, make_adding
from rnnexp.errors import ConfigError
from rnnexp.models.recurrent import RecurrentNet, RecurrentSpec
from rnnexp.tasks.value_regressor import ValueRegressor
from rnnexp.training import train


def batch_of(dm: AddingProblem, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """All of a split as the network reads it: ``(inputs (N, T, 2), targets (N, 1))``."""
    return dm.on_after_batch_transfer(dm.datasets[split].tensors, 0)


def test_each_sequence_has_one_marker_per_half_and_the_sum_of_their_values_as_target():
    dm = AddingProblem(seq_len=51, train_size=300, val_size=10, test_size=10)  # odd T: halves 25 and 26
    dm.setup("fit")
    inputs, targets = batch_of(dm, "train")
    assert inputs.shape == (300, 51, 2) and targets.shape == (300, 1)
    values, markers = inputs[..., 0], inputs[..., 1]
    assert ((values >= 0) & (values < 1)).all()
    assert set(markers.unique().tolist()) == {0.0, 1.0}
    assert (markers[:, :25].sum(1) == 1).all() and (markers[:, 25:].sum(1) == 1).all()
    for row in range(0, 300, 37):  # by hand: find the two marked steps, add their values
        first, second = markers[row].nonzero().flatten().tolist()
        assert first < 25 <= second
        assert targets[row, 0].item() == pytest.approx(values[row, first].item() + values[row, second].item())
    # Both halves are covered uniformly: every step of each half is marked somewhere across 300 sequences.
    assert (markers.sum(0) > 0).sum() >= 45


def test_the_baseline_of_predicting_one_has_mse_one_sixth():
    _, _, targets = make_adding(20000, 20, seed=1)
    assert ((targets - 1.0) ** 2).mean().item() == pytest.approx(BASELINE_MSE, abs=0.005)
    assert targets.mean().item() == pytest.approx(1.0, abs=0.01)


def test_the_task_logs_the_mse_of_predicting_one_on_the_same_targets():
    task = ValueRegressor(
        RecurrentNet(RecurrentSpec(cell="gru", hidden_size=4), 2, 1), baseline_prediction=1.0
    )
    targets = torch.tensor([[0.5], [1.5], [1.25], [0.25]])  # by hand: (0.25 + 0.25 + 0.0625 + 0.5625) / 4
    task.update_metrics("val", torch.zeros_like(targets), targets)
    task.update_metrics(
        "val", torch.ones(2, 1), torch.tensor([[1.0], [2.0]])
    )  # weighted by examples: 6 in all
    assert task.val_baseline.compute().item() == pytest.approx((1.125 + 0.0 + 1.0) / 6)
    assert task.val_mse.compute().item() == pytest.approx((0.25 + 2.25 + 1.5625 + 0.0625 + 0.0 + 1.0) / 6)


def test_inputs_scatter_markers_at_the_given_steps():
    values = torch.tensor([[0.1, 0.2, 0.3, 0.4]])
    inputs = adding_inputs(values, torch.tensor([[1, 3]]))
    torch.testing.assert_close(inputs[0, :, 1], torch.tensor([0.0, 1.0, 0.0, 1.0]))
    torch.testing.assert_close(inputs[0, :, 0], values[0])


def test_data_is_fixed_by_its_seed_and_each_split_by_its_own_stream():
    def loaded(**kwargs) -> AddingProblem:
        dm = AddingProblem(seq_len=10, train_size=50, val_size=20, test_size=20, **kwargs)
        dm.setup("fit")
        return dm

    a, b, other = loaded(seed=3), loaded(seed=3), loaded(seed=4)
    for split in ("train", "val", "test"):
        for left, right in zip(a.datasets[split].tensors, b.datasets[split].tensors, strict=True):
            assert torch.equal(left, right)
    assert not torch.equal(a.datasets["train"].tensors[0], other.datasets["train"].tensors[0])
    assert not torch.equal(a.datasets["train"].tensors[0][:20], a.datasets["val"].tensors[0])
    bigger = AddingProblem(seq_len=10, train_size=80, val_size=20, test_size=20, seed=3)
    bigger.setup("fit")
    assert torch.equal(bigger.datasets["val"].tensors[0], a.datasets["val"].tensors[0])


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [({"seq_len": 1}, "datamodule.seq_len=1"), ({"train_size": 0}, "datamodule.train_size=0")],
)
def test_bad_values_name_their_key(kwargs, key):
    with pytest.raises(ConfigError, match=key):
        AddingProblem(**kwargs)


def test_a_gru_learns_adding_t50_far_below_the_baseline(make_cfg):
    """200 steps of a 16-unit GRU, batches of 32 (about 5 s on one idle thread)."""
    cfg = make_cfg(
        "datamodule=adding",
        "model=gru",
        "model.hidden_size=16",
        "datamodule.seq_len=50",
        "datamodule.train_size=1600",
        "datamodule.val_size=256",
        "datamodule.batch_size=32",
        "optimizer.lr=2e-2",
        "trainer.max_epochs=4",
        "trainer.enable_model_summary=false",
        "~callbacks.progress_bar",
        "test=false",
        "num_threads=1",
        "seed=0",
    )
    results, _ = train(cfg)
    val = results["val"]
    assert val["val/baseline_mse"] == pytest.approx(BASELINE_MSE, abs=0.03)
    assert val["val/mse"] < 0.03 < val["val/baseline_mse"] / 4, val
