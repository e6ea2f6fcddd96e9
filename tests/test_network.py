"""RecurrentNet: fused torch kernels, the readouts' shapes and meaning, and spec validation."""

import pytest
import torch
from torch import nn

from rnnexp.errors import ConfigError
from rnnexp.models.recurrent import RecurrentNet, RecurrentSpec

BATCH, TIME, FEATURES, OUT = 3, 7, 5, 4


@pytest.mark.parametrize("cell, kind", [("rnn", nn.RNN), ("lstm", nn.LSTM), ("gru", nn.GRU)])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_many_to_one_shapes_use_fused_kernels(cell, kind, bidirectional, pooling):
    spec = RecurrentSpec(cell=cell, hidden_size=8, num_layers=2, bidirectional=bidirectional, pooling=pooling)
    net = RecurrentNet(spec, input_size=FEATURES, output_size=OUT)
    assert type(net.rnn) is kind  # torch's fused multi-layer module, not a Python loop over cells
    assert net(torch.randn(BATCH, TIME, FEATURES)).shape == (BATCH, OUT)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_many_to_many_gives_a_prediction_per_step(cell):
    net = RecurrentNet(
        RecurrentSpec(cell=cell, hidden_size=8), input_size=FEATURES, output_size=2, per_step=True
    )
    assert net(torch.randn(BATCH, TIME, FEATURES)).shape == (BATCH, TIME, 2)


def test_last_readout_of_bidirectional_net_sees_each_direction_after_the_whole_sequence():
    torch.manual_seed(0)
    spec = RecurrentSpec(cell="gru", hidden_size=6, num_layers=2, bidirectional=True)
    net = RecurrentNet(spec, input_size=FEATURES, output_size=OUT)
    x = torch.randn(BATCH, TIME, FEATURES)
    outputs, _ = net.rnn(x)
    # Forward direction ends at the last step, backward direction at the first.
    expected = net.head(torch.cat([outputs[:, -1, :6], outputs[:, 0, 6:]], dim=1))
    torch.testing.assert_close(net(x), expected)


def test_mean_readout_averages_over_time():
    torch.manual_seed(0)
    net = RecurrentNet(RecurrentSpec(cell="lstm", hidden_size=6, pooling="mean"), FEATURES, OUT)
    x = torch.randn(BATCH, TIME, FEATURES)
    outputs, _ = net.rnn(x)
    torch.testing.assert_close(net(x), net.head(outputs.mean(dim=1)))


def test_relu_rnn_and_dropout_between_layers_reach_torch():
    net = RecurrentNet(RecurrentSpec(cell="rnn", nonlinearity="relu", num_layers=3, dropout=0.3), 2, 1)
    assert net.rnn.nonlinearity == "relu"
    assert net.rnn.dropout == pytest.approx(0.3)
    assert net.rnn.num_layers == 3


def test_description_rebuilds_an_identical_network():
    net = RecurrentNet(RecurrentSpec(cell="gru", hidden_size=5, bidirectional=True), 3, 2)
    clone = RecurrentNet.from_description(net.describe())
    clone.load_state_dict(net.state_dict())
    x = torch.randn(2, 4, 3)
    torch.testing.assert_close(clone(x), net(x))


@pytest.mark.parametrize(
    "kwargs, key",
    [
        ({"hidden_size": 0}, "model.hidden_size"),
        ({"hidden_size": -3}, "model.hidden_size"),
        ({"num_layers": 0}, "model.num_layers"),
        ({"dropout": 1.0}, "model.dropout"),
        ({"dropout": -0.1}, "model.dropout"),
        ({"cell": "transformer"}, "model.cell"),
        ({"cell": "lstm", "nonlinearity": "relu"}, "model.nonlinearity"),
        ({"cell": "rnn", "nonlinearity": "sigmoid"}, "model.nonlinearity"),
        ({"pooling": "max"}, "model.pooling"),
    ],
)
def test_impossible_specs_are_refused_with_the_key_name(kwargs, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        RecurrentSpec(**kwargs)
