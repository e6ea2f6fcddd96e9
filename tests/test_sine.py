"""SineWaves: deterministic generation, the two tasks' meaning, splits and config errors."""

import pytest
import torch

from rnnexp.data import SineWaves
from rnnexp.errors import ConfigError


def loaded(**kwargs) -> SineWaves:
    dm = SineWaves(**kwargs)
    dm.setup("fit")
    return dm


def test_same_seed_same_data_other_seed_other_data():
    a, b, c = loaded(seed=3), loaded(seed=3), loaded(seed=4)
    torch.testing.assert_close(a.datasets["train"].tensors[0], b.datasets["train"].tensors[0])
    assert not torch.equal(a.datasets["train"].tensors[0], c.datasets["train"].tensors[0])


def test_sin_to_cos_targets_are_the_cosine_of_the_input_angle():
    inputs, targets = loaded(task="sin_to_cos", noise=0.0, num_sequences=16).datasets["train"].tensors
    assert inputs.shape == targets.shape == (12, 64, 1)  # (sequences, time, features) after the 80% split
    torch.testing.assert_close(inputs**2 + targets**2, torch.ones_like(inputs))


def test_next_step_targets_are_the_input_shifted_by_one():
    inputs, targets = loaded(task="next_step", noise=0.0, num_sequences=16).datasets["val"].tensors
    torch.testing.assert_close(targets[:, :-1], inputs[:, 1:])


def test_noise_is_added_to_inputs_only():
    clean = loaded(noise=0.0, num_sequences=32).datasets["train"].tensors
    noisy = loaded(noise=0.5, num_sequences=32).datasets["train"].tensors
    torch.testing.assert_close(clean[1], noisy[1])
    assert (clean[0] - noisy[0]).std() == pytest.approx(0.5, rel=0.1)


def test_splits_are_disjoint_and_cover_every_sequence():
    dm = loaded(num_sequences=100, val_fraction=0.2, test_fraction=0.1)
    sizes = {name: len(ds) for name, ds in dm.datasets.items()}
    assert sizes == {"train": 70, "val": 20, "test": 10}


def test_batches_are_whole_slices_and_shuffling_covers_each_sequence_once():
    dm = loaded(num_sequences=50, val_fraction=0.0, test_fraction=0.0, batch_size=16, noise=0.0)
    batches = list(dm.train_dataloader())
    assert [b[0].shape[0] for b in batches] == [16, 16, 16, 2]
    seen = torch.cat([b[0][:, :, 0] for b in batches])
    all_inputs = dm.datasets["train"].tensors[0][:, :, 0]
    assert sorted(map(tuple, seen.tolist())) == sorted(map(tuple, all_inputs.tolist()))


@pytest.mark.parametrize(
    "kwargs, key",
    [
        ({"task": "predict_tan"}, "datamodule.task"),
        ({"seq_len": 0}, "datamodule.seq_len"),
        ({"noise": -1.0}, "datamodule.noise"),
        ({"freq_range": [2.0, 1.0]}, "datamodule.freq_range"),
        ({"val_fraction": 1.5}, "datamodule.val_fraction"),
        ({"num_sequences": 2, "val_fraction": 0.5, "test_fraction": 0.5}, "datamodule"),
    ],
)
def test_bad_sine_config_names_the_key(kwargs, key):
    with pytest.raises(ConfigError, match=key):
        SineWaves(**kwargs)
