"""Copy memory: sequences follow the definition, the memoryless baseline is what a network without memory
scores, recall accuracy counts the recall steps only, and the targets are past inputs (causal)."""

import math

import pytest
import torch
from torch.nn import functional as F

from rnnexp.data.copy_memory import CopyMemory, copy_sequences, memoryless_loss
from rnnexp.errors import ConfigError
from rnnexp.models.recurrent import RecurrentNet, RecurrentSpec
from rnnexp.tasks.copy_memory import CopyMemoryClassifier


def test_a_sequence_by_hand():
    # Symbols 1..8, delimiter 9; data [3, 1], delay 3: 3 1 _ _ 9 _ _ in, _ _ _ _ _ 3 1 out (7 = 3 + 2 * 2).
    inputs, targets = copy_sequences(torch.tensor([[3, 1]]), delay=3, symbols=8)
    assert inputs.tolist() == [[3, 1, 0, 0, 9, 0, 0]]
    assert targets.tolist() == [[0, 0, 0, 0, 0, 3, 1]]


def test_batches_are_one_hot_inputs_and_step_targets_of_the_definition():
    dm = CopyMemory(delay=20, length=10, symbols=8, train_size=64, val_size=8, test_size=8, batch_size=16)
    dm.setup("fit")
    inputs, targets = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
    assert inputs.shape == (16, 40, 10) and targets.shape == (16, 40)  # delay + 2 * length; 8 + 2 classes
    assert dm.input_size == 10 and dm.output_size == 9
    ids = inputs.argmax(-1)
    assert (inputs.sum(-1) == 1).all()
    assert ((ids[:, :10] >= 1) & (ids[:, :10] <= 8)).all()
    assert (ids[:, 29] == 9).all() and (ids[:, 10:29] == 0).all() and (ids[:, 30:] == 0).all()
    assert (targets[:, :30] == 0).all()
    assert torch.equal(targets[:, 30:], ids[:, :10])


def test_targets_are_past_inputs_so_no_network_reads_its_answer_ahead():
    """Each recall target is the input of a step ``delay + length`` earlier: the task asks for memory, never
    for a future input, so a bidirectional network is allowed (it cannot see what it must output)."""
    inputs, targets = copy_sequences(torch.randint(1, 9, (32, 10)), delay=15, symbols=8)
    steps = targets.shape[1]
    for step in range(steps):
        recall = targets[:, step] != 0
        if recall.any():
            assert torch.equal(targets[recall, step], inputs[recall, step - 25])
    assert not CopyMemory.targets_are_future_inputs


def test_data_is_fixed_by_its_seed():
    def data(seed: int) -> torch.Tensor:
        dm = CopyMemory(delay=5, train_size=40, val_size=4, test_size=4, seed=seed)
        dm.setup("fit")
        return dm.datasets["train"].tensors[0]

    assert torch.equal(data(2), data(2)) and not torch.equal(data(2), data(3))


def memoryless_logits(targets: torch.Tensor, symbols: int) -> torch.Tensor:
    """A network without memory at its best: certain of blank where the target is blank, a uniform guess
    over the symbols where it is a symbol."""
    logits = torch.full((*targets.shape, symbols + 1), -1e4)
    recall = targets != 0
    logits[~recall, 0] = 0.0
    logits[recall, 1:] = 0.0
    return logits


def make_task(symbols: int = 8) -> CopyMemoryClassifier:
    spec = RecurrentSpec(cell="gru", hidden_size=8)
    return CopyMemoryClassifier(RecurrentNet(spec, symbols + 2, symbols + 1, per_step=True))


def test_the_memoryless_baseline_is_what_a_network_without_memory_scores():
    delay, length, symbols = 100, 10, 8
    assert memoryless_loss(delay, length, symbols) == pytest.approx(10 * math.log(8) / 120)
    _, targets = copy_sequences(torch.randint(1, 9, (4, length)), delay, symbols)
    task = make_task(symbols)
    logits = memoryless_logits(targets, symbols)
    assert task.loss(logits, targets).item() == pytest.approx(
        memoryless_loss(delay, length, symbols), rel=1e-5
    )
    task.update_metrics("val", logits, targets)
    assert task.val_baseline.compute().item() == pytest.approx(memoryless_loss(delay, length, symbols))
    assert task.val_recall_loss.compute().item() == pytest.approx(math.log(8), rel=1e-5)


def test_recall_accuracy_counts_the_recall_steps_only():
    _, targets = copy_sequences(torch.tensor([[1, 2, 3, 4]]), delay=6, symbols=8)
    perfect = F.one_hot(targets, 9).float() * 20
    wrong_blanks = perfect.clone()
    wrong_blanks[0, :10] = F.one_hot(torch.tensor(5), 9).float() * 20  # blanks wrong: recall unaffected
    task = make_task()
    task.update_metrics("test", wrong_blanks, targets)
    assert task.test_recall_acc.compute().item() == 1.0
    half = perfect.clone()
    half[0, -2:] = F.one_hot(torch.tensor(7), 9).float() * 20  # two of the four symbols wrong
    task.update_metrics("val", half, targets)
    assert task.val_recall_acc.compute().item() == 0.5


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_recall_loss_reuses_the_loss_per_step_values_and_sums_in_float32(dtype):
    """``model_step`` calls ``loss`` then ``update_metrics``: the recall loss comes from the loss's own
    per-step values (one cross-entropy a batch), and equals the one computed from the predictions alone; with
    half-precision predictions (16/bf16-true) it is still summed in float32."""
    _, targets = copy_sequences(torch.randint(1, 9, (3, 4), generator=torch.Generator().manual_seed(0)), 6, 8)
    preds = torch.randn(*targets.shape, 9, generator=torch.Generator().manual_seed(1)).to(dtype)
    alone, paired = make_task(), make_task()
    alone.update_metrics("val", preds, targets)
    loss = paired.loss(preds, targets)
    paired.update_metrics("val", preds, targets)
    assert "step_losses" not in vars(paired)  # taken once: never read for another batch
    assert paired.val_recall_loss.compute().item() == pytest.approx(
        alone.val_recall_loss.compute().item(), 1e-6
    )
    recall = targets != 0
    per_step = F.cross_entropy(preds.float().flatten(0, 1), targets.flatten(), reduction="none").view_as(
        targets
    )
    assert alone.val_recall_loss.compute().item() == pytest.approx((per_step[recall]).mean().item(), 1e-6)
    assert loss.item() == pytest.approx(per_step.mean().item(), 1e-2 if dtype == torch.bfloat16 else 1e-6)


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [({"delay": 0}, "datamodule.delay=0"), ({"symbols": 0}, "datamodule.symbols=0")],
)
def test_bad_values_name_their_key(kwargs, key):
    with pytest.raises(ConfigError, match=key):
        CopyMemory(**kwargs)
