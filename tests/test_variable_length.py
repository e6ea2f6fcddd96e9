"""Variable-length batches: padding never changes a prediction (each sequence alone equals it in a padded batch)."""

from __future__ import annotations

import pytest
import torch

from rnnexp.models.recurrent import RecurrentNet, RecurrentSpec

LENGTHS = torch.tensor([5, 2, 7, 1])


def padded_batch(features: int, seed: int = 0) -> torch.Tensor:
    """Rows of LENGTHS real steps, right-padded with large values that would show if they leaked."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(len(LENGTHS), int(LENGTHS.max()), features, generator=generator, dtype=torch.float64)
    for row, length in enumerate(LENGTHS.tolist()):
        x[row, length:] = 1e3
    return x


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_many_to_one_ignores_padding(cell: str, bidirectional: bool, pooling: str) -> None:
    torch.manual_seed(0)
    spec = RecurrentSpec(cell=cell, hidden_size=6, num_layers=2, bidirectional=bidirectional, pooling=pooling)
    net = RecurrentNet(spec, input_size=3, output_size=4).double().eval()
    x = padded_batch(3)
    batched = net(x, lengths=LENGTHS)
    alone = torch.cat([net(x[row : row + 1, :length]) for row, length in enumerate(LENGTHS.tolist())])
    torch.testing.assert_close(batched, alone, rtol=1e-9, atol=1e-9)
    # Without lengths the padding is read as data: the comparison above can fail.
    assert not torch.allclose(net(x), alone)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_per_step_outputs_of_real_steps_ignore_padding(cell: str) -> None:
    torch.manual_seed(1)
    spec = RecurrentSpec(cell=cell, hidden_size=5, bidirectional=True)
    net = RecurrentNet(spec, input_size=3, output_size=2, per_step=True).double().eval()
    x = padded_batch(3, seed=1)
    batched = net(x, lengths=LENGTHS)
    assert batched.shape == (4, 7, 2)
    for row, length in enumerate(LENGTHS.tolist()):
        alone = net(x[row : row + 1, :length])[0]
        torch.testing.assert_close(batched[row, :length], alone, rtol=1e-9, atol=1e-9)


def test_full_lengths_equal_the_unpadded_path() -> None:
    torch.manual_seed(2)
    net = RecurrentNet(RecurrentSpec(cell="gru", hidden_size=4, pooling="mean"), 3, 2).double()
    x = torch.randn(3, 6, 3, dtype=torch.float64)
    torch.testing.assert_close(net(x, lengths=torch.full((3,), 6)), net(x))


def test_task_step_passes_lengths_to_the_network() -> None:
    from rnnexp.tasks.classifier import SequenceClassifier

    torch.manual_seed(3)
    net = RecurrentNet(RecurrentSpec(cell="lstm", hidden_size=4, bidirectional=True), 3, 4)
    task = SequenceClassifier(net, log_figures=False)
    x, targets = padded_batch(3).float(), torch.tensor([0, 1, 2, 3])
    out = task.model_step((x, targets, LENGTHS), "val")
    torch.testing.assert_close(out["preds"], net(x, lengths=LENGTHS))
    assert not torch.allclose(out["preds"], net(x))
