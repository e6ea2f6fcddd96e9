"""The character seq2seq network: packing, decoding that never reads the target, beam search, translate."""

import sys
from pathlib import Path

import pytest
import torch

from rnnexp import translate as translate_cli
from rnnexp.data.vocab import PairVocabulary
from rnnexp.errors import ConfigError, DataError
from rnnexp.lifecycle.checkpoint import load_translation_model
from rnnexp.models.caption_net import CaptionNet
from rnnexp.models.char_decoder import mask_after_end
from rnnexp.models.char_seq2seq import CharSeq2Seq
from rnnexp.models.recurrent import RecurrentSpec
from rnnexp.models.translation import translate
from rnnexp.tasks import CharTranslator
from rnnexp.training import build_experiment

VOCAB = PairVocabulary("abcdefgh")
SOURCES = ["abcdefgh", "ab", "hgf", "c"]
TARGETS = ["hgfedcba", "ba", "fgh", "c"]
SPECS = [
    RecurrentSpec(cell="lstm", hidden_size=12, num_layers=2, bidirectional=True),
    RecurrentSpec(cell="gru", hidden_size=12),
    RecurrentSpec(cell="rnn", hidden_size=12, num_layers=2),
]


def make_net(spec: RecurrentSpec, seed: int = 0) -> CharSeq2Seq:
    torch.manual_seed(seed)
    return CharSeq2Seq(spec, VOCAB, embedding_dim=6, max_output_length=10).eval()


def with_end(texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    ids, lengths = VOCAB.encode_padded(texts)
    ids = torch.nn.functional.pad(ids, (0, 1))
    ids[torch.arange(len(texts)), lengths] = VOCAB.end_id
    return ids, lengths + 1


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.cell)
def test_a_padded_batch_gives_each_sequence_what_it_gives_alone(spec):
    net = make_net(spec)
    source, lengths = VOCAB.encode_padded(SOURCES)
    target, _ = with_end(TARGETS)
    with torch.no_grad():
        batched_logits = net(source, lengths, target)
        batched_outputs = net.generate(source, lengths)
        for i, text in enumerate(SOURCES):
            alone, alone_lengths = VOCAB.encode_padded([text])  # no padding at all
            logits = net(alone, alone_lengths, target[i : i + 1])
            torch.testing.assert_close(batched_logits[i], logits[0], rtol=1e-5, atol=1e-6)
            assert torch.equal(batched_outputs[i], net.generate(alone, alone_lengths)[0])


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.cell)
def test_free_running_decoding_never_reads_the_target(spec):
    net = make_net(spec)
    source, lengths = VOCAB.encode_padded(SOURCES)
    state = net.encode(source, lengths)
    greedy = net.decoder.greedy(state, max_length=9)
    # With no teacher forcing the decode loop must ignore whatever target it is handed.
    for seed in range(3):
        noise = torch.randint(0, len(VOCAB), (len(SOURCES), 9), generator=torch.Generator().manual_seed(seed))
        logits = net.decoder.teacher_forced(state, noise, teacher_forcing=0.0)
        free = mask_after_end(logits.argmax(-1), VOCAB.end_id, VOCAB.pad_id)
        assert torch.equal(free, greedy)
    # ... while with teacher forcing it does read it (the comparison above can fail).
    forced = net.decoder.teacher_forced(state, noise, teacher_forcing=1.0)
    assert not torch.allclose(forced, logits)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.cell)
def test_beam_size_one_is_greedy(spec):
    for seed in range(3):
        net = make_net(spec, seed)
        source, lengths = VOCAB.encode_padded(SOURCES)
        with torch.no_grad():
            state = net.encode(source, lengths)
            assert torch.equal(net.decoder.beam_search(state, 10, beam_size=1), net.decoder.greedy(state, 10))


def sequence_log_prob(net: CharSeq2Seq, source, lengths, outputs: torch.Tensor) -> torch.Tensor:
    """log p(output | source) up to and including <end>, per sequence."""
    ended = mask_after_end(outputs, VOCAB.end_id, VOCAB.pad_id)
    log_probs = net(source, lengths, ended).log_softmax(-1).gather(2, ended[..., None])[..., 0]
    return (log_probs * (ended != VOCAB.pad_id)).sum(1)


def test_a_wider_beam_finds_outputs_at_least_as_likely_as_greedy():
    net = make_net(SPECS[1], seed=4)
    source, lengths = VOCAB.encode_padded(SOURCES)
    with torch.no_grad():
        greedy = net.generate(source, lengths, beam_size=1)
        beam = net.generate(source, lengths, beam_size=4)
        assert (
            sequence_log_prob(net, source, lengths, beam)
            >= sequence_log_prob(net, source, lengths, greedy) - 1e-5
        ).all()


def test_the_caption_network_spells_from_an_image_vector():
    for encoder in ("mlp", "cnn"):
        net = CaptionNet(
            SPECS[0], VOCAB, 6, max_output_length=7, image_encoder=encoder, feature_size=16
        ).eval()
        images = torch.randn(3, 28, 28)
        target, _ = with_end(["ab", "cde", "f"])
        assert net(images, target).shape == (3, target.shape[1], len(VOCAB))
        assert net.generate(images, beam_size=2).shape == (3, 7)
    with pytest.raises(ConfigError, match=r"task\.image_encoder='vit'"):
        CaptionNet(SPECS[0], VOCAB, 6, 7, image_encoder="vit")


def test_a_source_with_unknown_characters_is_refused_with_them_listed():
    net = make_net(SPECS[1])
    assert len(translate(net, ["abc", "h"], beam_size=2)) == 2
    with pytest.raises(ConfigError) as err:
        translate(net, ["ab1Z"])
    message = str(err.value)
    assert "source='ab1Z'" in message and "'1', 'Z'" in message and "'abcdefgh'" in message
    with pytest.raises(ConfigError, match="source is empty"):
        translate(net, [""])


def test_a_checkpoint_of_another_kind_is_named(capsys, monkeypatch):
    text_checkpoint = Path(__file__).parent / "fixtures" / "layout_v0" / "text_lstm_epoch1.ckpt"
    with pytest.raises(DataError, match=r"holds a CharRNN \(task CharLanguageModel\).*datamodule=char_pairs"):
        load_translation_model(text_checkpoint)
    monkeypatch.setattr(sys, "argv", ["translate", f"ckpt_path={text_checkpoint}", "source=abc"])
    with pytest.raises(SystemExit) as exit_:
        translate_cli.main()
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: Checkpoint") and "holds a CharRNN" in err and "Traceback" not in err


def test_the_configs_compose_into_the_seq2seq_tasks(make_cfg):
    cfg = make_cfg(
        "datamodule=char_pairs", "datamodule.task=reverse", "datamodule.num_pairs=200",
        "model.bidirectional=true", "model.num_layers=2", "callbacks=none",
    )  # fmt: skip
    experiment = build_experiment(cfg)
    assert isinstance(experiment.task, CharTranslator) and cfg.optimized_metric == "val/exact_match_best"
    assert experiment.task.net.spec.bidirectional and not experiment.task.net.decoder.rnn.spec.bidirectional
    with pytest.raises(ConfigError, match=r"task\.beam_size=0 must be an integer >= 1"):
        build_experiment(make_cfg("datamodule=char_pairs", "datamodule.num_pairs=200", "task.beam_size=0"))
    captions = make_cfg("datamodule=image_captions")
    assert (
        captions.task._target_ == "rnnexp.tasks.ImageCaptioner"
        and captions.monitor.metric == "val/exact_match"
    )
