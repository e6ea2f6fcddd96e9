"""Bring your own cell: the reference cells equal torch's fused modules, the parallel scans equal stepping, a
cell defined in this file goes through every task, and contract breakers are refused with the reason."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from optuna.distributions import CategoricalDistribution
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from hydra_plugins.rnnexp_optuna_sweeper.search_space import search_space
from rnnexp.cells.mingru import MinGRU
from rnnexp.cells.minlstm import MinLSTM
from rnnexp.data.vocab import PairVocabulary
from rnnexp.errors import ConfigError
from rnnexp.lifecycle.checkpoint import IDENTITY, load_char_model, load_task
from rnnexp.models.caption_net import CaptionNet
from rnnexp.models.cell_layer import CellLayer, step_loop
from rnnexp.models.recurrent import RecurrentNet, RecurrentSpec, build_recurrent_layer
from rnnexp.models.sampling import sample
from rnnexp.training import compose_config, train
from tests.conftest import ROOT
from tests.resilience import TINY_RUN, fault, run_cli, same_results
from tests.test_text_training import unigram_entropy_nats, write_word_corpus
from tests.test_variable_length import LENGTHS, padded_batch

USER_CELL = "tests.test_cells.SlowFastCell"


class SlowFastCell(nn.Module):
    """A user's cell with a three-part state of two widths: the output ``h``, a slow average ``s`` of the
    input and a per-row scalar gate ``g (batch, 1)`` that the next step reads."""

    def __init__(self, input_size: int, hidden_size: int, decay: float = 0.9):
        super().__init__()
        self.hidden_size, self.decay = hidden_size, decay
        self.inp = nn.Linear(input_size, hidden_size)
        self.rec = nn.Linear(hidden_size, hidden_size, bias=False)
        self.gate = nn.Linear(hidden_size, 1)

    def initial_state(self, batch_size, device, dtype):
        zeros = torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)
        return zeros, zeros.clone(), torch.zeros(batch_size, 1, device=device, dtype=dtype)

    def forward(self, x_t, state):
        h, s, g = state
        projected = self.inp(x_t)
        s = self.decay * s + (1 - self.decay) * projected
        h = torch.tanh(projected + torch.sigmoid(g) * self.rec(h) + s)
        return h, s, self.gate(h)


class WrongStateCell(nn.Module):
    """Breaks the contract: its state is half the hidden size."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.linear = nn.Linear(input_size + hidden_size, hidden_size // 2)

    def forward(self, x_t, h):
        return torch.tanh(self.linear(torch.cat([x_t, h], dim=-1)))


class NoSizesCell(nn.Module):
    """Breaks the contract: its constructor takes no sizes."""

    def __init__(self):
        super().__init__()


class DisagreeingScanCell(nn.Module):
    """Breaks the contract: its whole-sequence method is not its step."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.linear = nn.Linear(input_size, hidden_size)

    def forward(self, x_t, h):
        return 0.5 * h + self.linear(x_t)

    def sequence(self, x, h):
        outputs = self.linear(x)
        return outputs, outputs[:, -1]


def copy_fused_weights(fused: nn.RNNBase, layer: CellLayer) -> None:
    """The fused module's ``weight_ih_l{k}{_reverse}`` etc. into cell ``k * directions + direction``."""
    for index, cell in enumerate(layer.cells):
        suffix = f"l{index // layer.directions}" + ("_reverse" if index % layer.directions else "")
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell, name).data.copy_(getattr(fused, f"{name}_{suffix}").data)


class StepOnly(nn.Module):
    """A cell without its whole-sequence method, so the layer's step loop runs."""

    def __init__(self, cell: nn.Module):
        super().__init__()
        self.cell = cell

    def initial_state(self, batch_size, device, dtype):
        if hasattr(self.cell, "initial_state"):
            return self.cell.initial_state(batch_size, device, dtype)
        return torch.zeros(batch_size, self.cell.hidden_size, device=device, dtype=dtype)

    def forward(self, x_t, state):
        return self.cell(x_t, state)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("layers,bidirectional", [(1, False), (2, False), (1, True), (2, True)])
@pytest.mark.parametrize("path", ["sequence", "steps"])
def test_reference_cells_equal_the_fused_modules(kind, layers, bidirectional, path):
    torch.manual_seed(0)
    spec = RecurrentSpec(
        cell=f"reference_{kind}", hidden_size=6, num_layers=layers, bidirectional=bidirectional
    )
    layer = build_recurrent_layer(spec, 4).double()
    fused = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind](
        4, 6, num_layers=layers, bidirectional=bidirectional, batch_first=True
    ).double()
    copy_fused_weights(fused, layer)
    if path == "steps":
        layer.cells = nn.ModuleList(StepOnly(cell) for cell in layer.cells)
    x = torch.randn(5, 9, 4, dtype=torch.float64)
    lengths = torch.tensor([9, 3, 7, 1, 5])
    directions = 2 if bidirectional else 1
    h0 = torch.randn(layers * directions, 5, 6, dtype=torch.float64)
    hx = (h0, torch.randn_like(h0)) if kind == "lstm" else h0
    for inputs in (x, pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)):
        ours_out, ours_h = layer(inputs, hx)
        fused_out, fused_h = fused(inputs, hx)
        if not isinstance(inputs, torch.Tensor):  # padded: compare the real steps
            ours_out, ours_lengths = pad_packed_sequence(ours_out, batch_first=True)
            fused_out, _ = pad_packed_sequence(fused_out, batch_first=True)
            assert torch.equal(ours_lengths, lengths)
        torch.testing.assert_close(ours_out, fused_out, rtol=0, atol=1e-6)
        for ours, theirs in zip(
            *(h if isinstance(h, tuple) else (h,) for h in (ours_h, fused_h)), strict=True
        ):
            torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)


@pytest.mark.parametrize("cls", [MinGRU, MinLSTM])
def test_the_parallel_scan_equals_stepping_from_a_random_state_over_2048_steps(cls):
    torch.manual_seed(1)
    cell = cls(4, 32)
    x, h0 = torch.randn(3, 2048, 4), 2 * torch.randn(3, 32)  # negative values too: no log of the state
    with torch.no_grad():
        scanned, last = cell.sequence(x, h0)
        stepped, stepped_last = step_loop(cell, x, h0, None)
        exact, _ = step_loop(cell.double(), x.double(), h0.double(), None)
        cell.float()
        one_chunk = cell.scan_chunk
        cell.scan_chunk = 2048  # the paper's single cumulative sum over the whole sequence
        unchunked, _ = cell.sequence(x, h0)
        cell.scan_chunk = one_chunk
    torch.testing.assert_close(scanned, stepped, rtol=0, atol=2e-5)
    torch.testing.assert_close(last, stepped_last, rtol=0, atol=2e-5)
    chunked_error = (scanned.double() - exact).abs().max()
    assert chunked_error < 2e-5
    assert (unchunked.double() - exact).abs().max() > 10 * chunked_error  # the float32 drift chunks remove


def test_under_bf16_autocast_the_scan_runs_in_float32_and_keeps_the_state_dtype():
    torch.manual_seed(4)
    cell, x, h0 = MinGRU(4, 16), torch.randn(2, 300, 4), torch.randn(2, 16)
    with torch.no_grad():
        exact, _ = step_loop(cell, x, h0, None)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed, last = cell.sequence(x, h0)
    assert mixed.dtype == last.dtype == torch.float32  # bf16 gates, float32 state: as stepping gives
    assert (mixed - exact).abs().max() < 0.05  # bf16 gates (8-bit mantissa), no growth along 300 steps


def test_gradients_of_the_scan_equal_those_of_stepping():
    torch.manual_seed(2)
    cell = MinLSTM(3, 8).double()
    x, h0 = torch.randn(2, 50, 3, dtype=torch.float64), torch.randn(2, 8, dtype=torch.float64)
    grads = []
    for run in (lambda: cell.sequence(x, h0)[0], lambda: step_loop(cell, x, h0, None)[0]):
        cell.zero_grad()
        run().pow(2).sum().backward()
        grads.append([p.grad.clone() for p in cell.parameters()])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("cell", ["mingru", "minlstm", "indrnn", USER_CELL])
def test_a_padded_batch_gives_each_row_what_it_gives_alone(cell):
    torch.manual_seed(3)
    spec = RecurrentSpec(cell=cell, hidden_size=5, num_layers=2, bidirectional=True)
    layer = build_recurrent_layer(spec, 3).double()
    x, lengths = torch.randn(3, 6, 3, dtype=torch.float64), torch.tensor([6, 2, 4])
    out, hidden = layer(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
    out, _ = pad_packed_sequence(out, batch_first=True)
    parts = hidden if isinstance(hidden, tuple) else (hidden,)
    for row, length in enumerate(lengths.tolist()):
        alone_out, alone_hidden = layer(x[row : row + 1, :length])
        torch.testing.assert_close(out[row, :length], alone_out[0], rtol=0, atol=1e-10)
        alone_parts = alone_hidden if isinstance(alone_hidden, tuple) else (alone_hidden,)
        for part, alone in zip(parts, alone_parts, strict=True):
            torch.testing.assert_close(part[:, row], alone[:, 0], rtol=0, atol=1e-10)


@pytest.mark.parametrize("cell", ["mingru", "reference_lstm", USER_CELL])
@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_padding_never_changes_a_prediction_of_any_cell(cell, pooling):
    torch.manual_seed(5)
    spec = RecurrentSpec(cell=cell, hidden_size=6, num_layers=2, bidirectional=True, pooling=pooling)
    net = RecurrentNet(spec, input_size=3, output_size=4).double().eval()
    x, lengths = padded_batch(3), LENGTHS
    batched = net(x, lengths=lengths)
    alone = torch.cat([net(x[row : row + 1, :length]) for row, length in enumerate(lengths.tolist())])
    torch.testing.assert_close(batched, alone, rtol=1e-9, atol=1e-9)
    assert not torch.allclose(net(x), alone)  # without lengths the padding (1e3) is read as data


def test_indrnn_keeps_its_recurrent_weight_within_the_bound():
    spec = RecurrentSpec(cell="indrnn", hidden_size=4, cell_options={"recurrent_max": 0.5})
    cell = build_recurrent_layer(spec, 2).cells[0]
    with torch.no_grad():
        cell.recurrent_weight.copy_(torch.tensor([3.0, -3.0, 0.25, 0.0]))
    assert cell.bounded_recurrent_weight().tolist() == [0.5, -0.5, 0.25, 0.0]
    h = torch.ones(1, 4)
    cell.input_weight.weight.data.zero_()
    cell.input_weight.bias.data.fill_(1.0)
    assert cell(torch.zeros(1, 2), h).tolist() == [[1.5, 0.5, 1.25, 1.0]]  # relu(1 + u * 1)


@pytest.mark.parametrize(
    "cell,options,reason",
    [
        ("tests.test_cells.WrongStateCell", {}, r"is \(2, 4\).*expected \(2, 8\)"),
        ("tests.test_cells.NoSizesCell", {}, r"building it as NoSizesCell\(input_size, hidden_size=8"),
        (USER_CELL, {"speed": 2}, r"unexpected keyword argument 'speed'"),
        ("tests.test_cells.DisagreeingScanCell", {}, r"sequence\(x, state\) disagrees with stepping"),
        ("tests.test_cells.NoSuchCell", {}, r"'tests.test_cells' has no attribute 'NoSuchCell'"),
        ("tests.test_cells.copy_fused_weights", {}, r"not a torch.nn.Module class"),
        ("nowhere_pkg.cells.Cell", {}, r"module 'nowhere_pkg.cells' cannot be imported"),
        ("transformer", {}, r"model.cell='transformer' is not a known cell"),
    ],
)
def test_a_cell_that_breaks_the_contract_is_refused_with_the_reason(cell, options, reason):
    with pytest.raises(ConfigError, match=reason) as refused:
        RecurrentSpec(cell=cell, hidden_size=8, cell_options=options)
    assert f"model.cell={cell!r}" in str(refused.value)


def test_fused_cells_take_no_cell_options():
    with pytest.raises(ConfigError, match=r"model.cell_options=\{'x': 1\}.*fused"):
        RecurrentSpec(cell="gru", cell_options={"x": 1})


CHECKPOINT_LOADER = """
import sys, torch
from rnnexp.errors import DataError
from rnnexp.lifecycle.checkpoint import load_task
import rnnexp.models.cell_contract  # the checker itself, and torch's unpickler, are allowed
for path in sys.argv[1:]:
    torch.load(path, weights_only=True)
    before = set(sys.modules)
    try:
        load_task(path)
    except DataError as err:
        print(str(err))
    print(sorted(set(sys.modules) - before))
"""


def test_a_checkpoint_naming_a_cell_that_cannot_be_imported_is_refused_without_importing_anything(tmp_path):
    cases = [("no_such_package.cells.Cell", "not on this Python path"), ("os.system", "standard library")]
    paths = []
    for number, (cell, _) in enumerate(cases):
        spec = {"cell": cell, "hidden_size": 4, "num_layers": 1, "bidirectional": False, "dropout": 0.0,
                "nonlinearity": None, "pooling": "last", "cell_options": {}}  # fmt: skip
        identity = {"task": "SequenceRegressor", "net_class": "RecurrentNet",
                    "net": {"spec": spec, "input_size": 1, "output_size": 1, "per_step": True}}  # fmt: skip
        paths.append(tmp_path / f"foreign{number}.ckpt")
        torch.save({IDENTITY: identity, "state_dict": {}}, paths[-1])
    run = subprocess.run(
        [sys.executable, "-c", CHECKPOINT_LOADER, *map(str, paths)],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    lines = run.stdout.strip().splitlines()
    assert len(lines) == 4, run.stdout + run.stderr
    for (cell, reason), path, message, imported in zip(cases, paths, lines[::2], lines[1::2], strict=True):
        assert f"model.cell={cell!r}" in message and reason in message and str(path) in message
        assert imported == "[]"  # not the cell's module, not the task's, not the network's


def test_model_cell_composes_and_is_a_searchable_choice(make_cfg):
    for cell in ("mingru", "minlstm", "indrnn", "reference_gru", USER_CELL):
        cfg = make_cfg(f"model.cell={cell}", "model.hidden_size=8")
        assert cfg.model.cell == cell
    assert make_cfg("model=minlstm").model.cell_options.scan_chunk == 64
    # What README's command gives: the sine search with the model group pinned and model.cell searched.
    searched = {"model": "choice(rnn, lstm, gru)", "model.hidden_size": "choice(16, 32)"}
    space, fixed = search_space(searched, ["model=gru", f"model.cell=choice(gru,mingru,{USER_CELL})"])
    assert space["model.cell"] == CategoricalDistribution(["gru", "mingru", USER_CELL])
    assert "model" not in space and fixed == ["model=gru"]


def results_of(run_dir) -> dict:
    return json.loads((run_dir / "results.json").read_text())


# ---- the user's cell through every task ------------------------------------------------------------------------

USE_CELL = [f"model.cell={USER_CELL}", "model.nonlinearity=null", "+model.cell_options.decay=0.8"]
QUIET = ["+trainer.enable_progress_bar=false", "trainer.enable_model_summary=false", "print_config=false"]
NO_BAR = ["~callbacks.progress_bar", "task.log_figures=false"]


@pytest.mark.slow  # a fresh interpreter: about 15 s on a quiet machine, a minute under load
def test_a_user_cell_trains_through_the_cli_on_sine_and_its_checkpoint_predicts(tmp_path):
    run_dir = tmp_path / "run"
    run = run_cli(
        *USE_CELL, *QUIET, *NO_BAR, "model.hidden_size=16", "datamodule.num_sequences=1024", "datamodule.seq_len=32",
        "datamodule.batch_size=32", "trainer.max_epochs=5", "optimizer.lr=2e-2", "callbacks.early_stopping=null",
        f"hydra.run.dir={run_dir}",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    results = results_of(run_dir)
    assert results["test"]["test/mse"] < 0.1  # cos x has variance 0.5: predicting its mean scores 0.5
    task = load_task(results["best_ckpt_path"])
    assert type(task.net.rnn.cells[0]) is SlowFastCell and task.net.rnn.cells[0].decay == 0.8
    assert task.net.spec.cell == USER_CELL  # the checkpoint records the class path


@pytest.mark.slow
def test_a_user_cell_run_killed_mid_epoch_resumes_to_bit_identical_results(tmp_path):
    overrides = [*TINY_RUN, *USE_CELL, "datamodule.tbptt=true"]  # carried 3-part state across batches, too
    reference, _ = train(compose_config(overrides, tmp_path / "reference"))
    run_dir = tmp_path / "run"
    killed = run_cli(*overrides, f"hydra.run.dir={run_dir}", *fault("SignalAtStep", step=13))
    assert killed.returncode == -9, killed.stderr[-2000:]
    carried = torch.load(run_dir / "checkpoints" / "step0000010.ckpt", weights_only=True)["carried_hidden"]
    assert [tuple(part.shape) for part in carried["parts"]] == [(1, 2, 8, 8), (1, 2, 8, 8), (1, 2, 8, 1)]
    results, _ = train(compose_config([*overrides, "ckpt_path=last"], run_dir))
    assert same_results(results, reference), (results, reference)


def test_a_user_cell_language_model_carries_its_state_and_generates_text(tmp_path):
    corpus = write_word_corpus(tmp_path / "words.txt", lines=300)
    overrides = [*USE_CELL, *QUIET, "datamodule=text", f"datamodule.path={corpus}", "model.hidden_size=32",
                 "datamodule.batch_size=16", "datamodule.seq_len=32", "task.embedding_dim=16",
                 "trainer.max_epochs=2", "optimizer.lr=1e-2", "callbacks=model_checkpoint"]  # fmt: skip
    results, objects = train(compose_config(overrides, tmp_path / "run"))
    assert [p.shape[-1] for p in objects["task"].carried["train"]] == [32, 32, 1]  # carried across batches
    assert results["val"]["val/loss_best"] < 0.8 * unigram_entropy_nats(corpus.read_text())
    net = load_char_model(results["best_ckpt_path"])
    text = sample(net, "the cat", 40, temperature=0.8, seed=5)
    assert len(text) == 40 and text == sample(net, "the cat", 40, temperature=0.8, seed=5)


def test_a_user_cell_is_the_encoder_and_decoder_of_seq2seq_and_forecasting(tmp_path):
    pairs = [*USE_CELL, *QUIET, "callbacks=none", "datamodule=char_pairs", "datamodule.task=reverse",
             "datamodule.num_pairs=1200", "datamodule.min_length=2", "datamodule.max_length=4",
             "datamodule.alphabet=abcdef", "datamodule.batch_size=32", "model.hidden_size=48",
             "model.bidirectional=true", "task.embedding_dim=16", "trainer.max_epochs=6", "optimizer.lr=1e-2",
             "~scheduler", "trainer.num_sanity_val_steps=0"]  # fmt: skip
    results, objects = train(compose_config(pairs, tmp_path / "pairs"))
    net = objects["task"].net
    assert type(net.encoder.cells[1]) is SlowFastCell and type(net.decoder.rnn.rnn.cells[0]) is SlowFastCell
    assert results["test"]["test/exact_match"] > 0.3  # chance: 1 in ~6^3
    forecast = [*USE_CELL, *QUIET, *NO_BAR, "datamodule=sine_forecast", "trainer=debug", "model.hidden_size=8",
                "model.bidirectional=true", "model.num_layers=2"]  # fmt: skip
    results, objects = train(compose_config(forecast, tmp_path / "forecast"))
    assert objects["task"].net.decoder.rnn.cells[0].__class__ is SlowFastCell


def test_the_speed_benchmark_times_every_path_and_divides_by_fused_gru():
    from benchmarks import cell_speed

    args = [
        "--cells",
        "gru",
        "mingru",
        "reference_lstm",
        "--lengths",
        "8",
        "16",
        "--steps",
        "1",
        "--repeats",
        "1",
    ]
    text = cell_speed.main(args)
    rows = [
        line.split("|")[1:-1] for line in text.splitlines() if line.startswith("| ") and "cell" not in line
    ]
    paths = {(r[0].strip(), r[1].strip()) for r in rows}
    assert paths == {("gru", "layer"), ("mingru", "layer"), ("mingru", "steps"), ("reference_lstm", "layer"),
                     ("reference_lstm", "steps")}  # fmt: skip
    gru = next(r for r in rows if r[0].strip() == "gru")
    assert [cell.strip().endswith("(1.0×)") for cell in gru[2:]] == [True, True]


def test_a_user_cell_is_the_captioners_decoder_with_greedy_and_beam_search():
    torch.manual_seed(6)
    spec = RecurrentSpec(cell=USER_CELL, hidden_size=8, num_layers=2)
    net = CaptionNet(spec, PairVocabulary("abcdef"), 6, max_output_length=7, feature_size=16).eval()
    images = torch.randn(3, 28, 28)
    state = net.encode(images)  # the image vector bridged into every part of the cell's state
    assert [tuple(part.shape) for part in state] == [(2, 3, 8), (2, 3, 8), (2, 3, 1)]
    target = torch.tensor([[3, 4, 2], [5, 2, 0], [6, 7, 2]])
    assert net(images, target).shape == (3, 3, len(net.vocab))
    greedy, beam_one = net.generate(images), net.generate(images, beam_size=1)
    assert greedy.shape == net.generate(images, beam_size=3).shape == (3, 7) and torch.equal(greedy, beam_one)


@pytest.mark.slow
def test_a_user_cell_trains_under_ddp_on_two_cpu_processes(tmp_path):
    overrides = [
        *TINY_RUN,
        *USE_CELL,
        "trainer=ddp_cpu",
        "trainer.strategy=ddp_spawn",
        "trainer.max_epochs=1",
        "test=false",  # as tests/test_ddp_cpu.py
    ]
    results, _ = train(compose_config(overrides, tmp_path / "run"))
    assert (results["epochs"], results["global_step"]) == (1, 4)  # 32 sequences a rank, batches of 8
    task = load_task(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert type(task.net.rnn.cells[0]) is SlowFastCell and 0 < results["val"]["val/loss"] < 1.0
