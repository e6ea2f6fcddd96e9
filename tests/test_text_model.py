"""The character LM network and truncated BPTT inside one task: carried state, cut gradients, refusals."""

import pytest
import torch

from rnnexp.data.streams import StreamBatches, batchify
from rnnexp.data.vocab import Vocabulary
from rnnexp.errors import ConfigError
from rnnexp.models.char_rnn import CharRNN
from rnnexp.models.recurrent import RecurrentSpec, repackage_hidden
from rnnexp.models.sampling import sample
from rnnexp.tasks import CharLanguageModel

pytestmark = pytest.mark.filterwarnings("ignore:.*self.log.*:UserWarning")  # tasks used without a Trainer

VOCAB = Vocabulary("abcdefgh")


def make_task(cell: str, **kwargs) -> CharLanguageModel:
    net = CharRNN(RecurrentSpec(cell=cell, hidden_size=8, num_layers=2), VOCAB, embedding_dim=6)
    return CharLanguageModel(net, embedding_dim=6, tie_weights=False, **kwargs)


def as_tuple(hidden):
    return hidden if isinstance(hidden, tuple) else (hidden,)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_logits_per_character_and_a_hidden_state_of_the_spec_shape(cell):
    net = make_task(cell).net
    logits, hidden = net(torch.randint(0, len(VOCAB), (3, 7)))  # (batch, time) ids
    assert logits.shape == (3, 7, len(VOCAB))
    for h, zero in zip(as_tuple(hidden), as_tuple(net.init_hidden(3)), strict=True):
        assert h.shape == zero.shape == (2, 3, 8) and not zero.any()


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_carried_state_is_the_previous_final_state_and_no_gradient_crosses_the_boundary(cell):
    torch.manual_seed(0)
    task = make_task(cell)
    streams = batchify(torch.randint(1, len(VOCAB), (4 * 21,)), 4)  # (4 streams, 21 characters)
    (x0, y0), (x1, y1) = StreamBatches(streams, seq_len=10)[0], StreamBatches(streams, seq_len=10)[1]

    task.model_step((x0, y0), "train")
    carried = as_tuple(task.carried["train"])
    with torch.no_grad():
        _, final = task.net(x0)
    for c, f in zip(carried, as_tuple(final), strict=True):
        assert torch.allclose(c, f, atol=1e-6)  # the next batch starts from batch 0's final state ...
        assert c.grad_fn is None and not c.requires_grad  # ... cut from batch 0's graph

    task.zero_grad()
    task.model_step((x1, y1), "train")["loss"].backward()
    truncated = [p.grad.clone() for p in task.parameters()]

    task.zero_grad()
    logits, _ = task.net(x1, tuple(c.clone() for c in carried) if len(carried) == 2 else carried[0].clone())
    task.loss(logits, y1).backward()  # the same values as a constant starting state
    constant_start = [p.grad.clone() for p in task.parameters()]

    task.zero_grad()
    _, hidden = task.net(x0)
    logits, _ = task.net(x1, hidden)
    task.loss(logits, y1).backward()  # full BPTT through batch 0: what truncation must not do
    through_boundary = [p.grad.clone() for p in task.parameters()]

    assert all(torch.allclose(a, b, atol=1e-7) for a, b in zip(truncated, constant_start, strict=True))
    assert not all(torch.allclose(a, b, atol=1e-6) for a, b in zip(truncated, through_boundary, strict=True))


def test_each_stage_carries_its_own_state_and_independent_chunks_carry_none():
    task = make_task("gru")
    batch = (torch.randint(1, 9, (2, 5)), torch.randint(1, 9, (2, 5)))
    task.model_step(batch, "train")
    train_state = task.carried["train"]
    task.model_step(batch, "val")
    val_state = task.carried["val"]
    assert task.carried["train"] is train_state and val_state is not train_state
    assert val_state.shape == train_state.shape == (2, 2, 8)  # (layers, batch, hidden) of the GRU
    task.on_validation_epoch_start()
    task.on_train_epoch_start()
    assert task.carried["val"] is None and task.carried["train"] is None

    chunks = make_task("gru", carry_hidden=False)
    chunks.model_step(batch, "train")
    assert chunks.carried["train"] is None


def test_repackage_hidden_keeps_values_and_drops_the_graph():
    h = torch.ones(1, 2, 3, requires_grad=True) * 2
    c = torch.zeros(1, 2, 3, requires_grad=True) + 1
    for old, new in zip((h, c), repackage_hidden((h, c)), strict=True):
        assert torch.equal(old, new) and new.grad_fn is None
    assert repackage_hidden(h).grad_fn is None


def test_tied_weights_share_one_matrix():
    net = CharRNN(RecurrentSpec(cell="lstm", hidden_size=6), VOCAB, 6, tie_weights=True, init="uniform")
    assert net.decoder.weight is net.embedding.weight
    assert sum(p.numel() for p in net.parameters()) < sum(
        p.numel() for p in CharRNN(RecurrentSpec(cell="lstm", hidden_size=6), VOCAB, 6).parameters()
    )


def test_init_torch_is_pytorchs_own_default_and_uniform_the_small_start():
    """``task.init=torch`` leaves the embedding and decoder as PyTorch builds them (the same draws as a bare
    ``nn.Embedding`` + ``nn.Linear`` after the recurrent layer); ``uniform`` is U(-0.1, 0.1), zero bias."""
    spec = RecurrentSpec(cell="lstm", hidden_size=6)
    torch.manual_seed(0)
    net = CharRNN(spec, VOCAB, embedding_dim=5, init="torch")
    torch.manual_seed(0)
    embedding = torch.nn.Embedding(len(VOCAB), 5)
    torch.nn.LSTM(5, 6, batch_first=True)  # the recurrent layer's draws come between the two
    decoder = torch.nn.Linear(6, len(VOCAB))
    assert torch.equal(net.embedding.weight, embedding.weight) and net.embedding.weight.std() > 0.5
    assert torch.equal(net.decoder.weight, decoder.weight) and torch.equal(net.decoder.bias, decoder.bias)
    small = CharRNN(spec, VOCAB, embedding_dim=5, init="uniform")
    assert small.embedding.weight.abs().max() <= 0.1 and small.decoder.weight.abs().max() <= 0.1
    assert not small.decoder.bias.any()


def test_the_text_defaults_are_the_plain_char_rnn_loops(make_cfg):
    """An embedding as wide as the recurrent layer and PyTorch's default init (BENCHMARKS.md, issue 24)."""
    cfg = make_cfg("datamodule=text", "model.hidden_size=256")
    assert (cfg.task.embedding_dim, cfg.task.init, cfg.task.tie_weights) == (256, "torch", False)


def test_tying_needs_the_uniform_init_and_a_tied_checkpoint_rebuilds():
    with pytest.raises(
        ConfigError, match=r"task\.tie_weights=true with task\.init=torch .* use task\.init=uniform"
    ):
        CharRNN(RecurrentSpec(cell="lstm", hidden_size=6), VOCAB, 6, tie_weights=True)
    with pytest.raises(
        ConfigError, match=r"task\.init='normal' is unknown; choose one of \['torch', 'uniform'\]"
    ):
        CharRNN(RecurrentSpec(cell="lstm", hidden_size=6), VOCAB, 6, init="normal")
    tied = CharRNN(RecurrentSpec(cell="lstm", hidden_size=6), VOCAB, 6, True, "uniform")
    assert "init" not in tied.describe()  # a checkpoint of either start resumes under either setting
    rebuilt = CharRNN.from_description(tied.describe())
    assert rebuilt.decoder.weight is rebuilt.embedding.weight


def test_tying_with_a_different_embedding_size_names_both_keys():
    with pytest.raises(ConfigError, match=r"task\.embedding_dim \(4\) must equal model\.hidden_size \(6\)"):
        CharRNN(RecurrentSpec(cell="gru", hidden_size=6), VOCAB, embedding_dim=4, tie_weights=True)


def test_a_bidirectional_language_model_is_refused():
    with pytest.raises(ConfigError, match=r"model\.bidirectional=true .* the one the model must predict"):
        CharRNN(RecurrentSpec(cell="lstm", hidden_size=6, bidirectional=True), VOCAB, embedding_dim=4)


def test_sampling_is_deterministic_per_seed_and_never_prints_the_unknown_symbol():
    net = make_task("lstm").net
    first = sample(net, "abc", 80, temperature=1.5, seed=7)
    assert first == sample(net, "abc", 80, temperature=1.5, seed=7)
    assert first != sample(net, "abc", 80, temperature=1.5, seed=8)
    assert len(first) == 80 and set(first) <= set("abcdefgh")
    greedy = sample(net, "abc", 30, top_k=1, seed=1)
    assert greedy == sample(net, "abc", 30, top_k=1, seed=2)  # top_k=1: the likeliest character, any seed


def test_a_prompt_with_unknown_characters_lists_them():
    net = make_task("gru").net
    with pytest.raises(ConfigError, match=r"prompt='abXcY!' has characters outside .*: 'X', 'Y', '!'"):
        sample(net, "abXcY!", 10)
    with pytest.raises(ConfigError, match="prompt is empty"):
        sample(net, "", 10)


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [({"temperature": 0}, "temperature"), ({"top_k": 0}, "top_k"), ({"length": -1}, "length")],
)
def test_bad_sampling_options_name_the_option(kwargs, key):
    options = {"length": 5} | kwargs
    with pytest.raises(ConfigError, match=f"{key}="):
        sample(make_task("rnn").net, "ab", **options)


def test_sampling_options_in_the_task_config_are_checked_when_the_task_is_built():
    with pytest.raises(ConfigError, match=r"task\.sample_prompt='ROMEO:' has characters outside"):
        make_task("lstm", sample_prompt="ROMEO:")
    with pytest.raises(ConfigError, match=r"task\.sample_temperature=-1"):
        make_task("lstm", sample_temperature=-1)
