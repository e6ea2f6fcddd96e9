"""The text corpus: vocabulary, contiguous splits, the truncated-BPTT stream layout, chunks, bad files."""

import itertools
from pathlib import Path

import pytest
import torch

from rnnexp.data.char_corpus import CharCorpus
from rnnexp.data.streams import StreamBatches, batchify
from rnnexp.data.vocab import UNKNOWN, Vocabulary
from rnnexp.errors import ConfigError, DataError


def write_text(tmp_path: Path, text: str, name: str = "corpus.txt") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def corpus(path: Path, **kwargs) -> CharCorpus:
    options = {"val_fraction": 0.1, "test_fraction": 0.1, "batch_size": 4, "seq_len": 5} | kwargs
    dm = CharCorpus(path=str(path), **options)
    dm.setup("fit")
    return dm


def test_vocabulary_round_trips_text_and_maps_unseen_characters_to_unknown():
    vocab = Vocabulary.from_text("hello wörld ☃")
    ids = vocab.encode("hello wörld ☃")
    assert ids.dtype == torch.long and vocab.decode(ids) == "hello wörld ☃"
    assert 0 not in ids.tolist()  # id 0 is reserved for the unknown symbol
    assert vocab.encode("hZ").tolist() == [vocab.index["h"], 0]
    assert vocab.decode(vocab.encode("hZ")) == "h" + UNKNOWN
    assert vocab.missing("hZZyh") == ["Z", "y"]
    assert Vocabulary.from_dict(vocab.to_dict()) == vocab and len(vocab) == len(set("hello wörld ☃")) + 1


def test_batchify_cuts_the_text_into_contiguous_streams():
    ids = torch.arange(23)
    streams = batchify(ids, 4)  # (streams, length): 23 // 4 = 5 characters per stream, the tail dropped
    assert streams.shape == (4, 5)
    assert streams.flatten().tolist() == list(range(20))


def test_consecutive_batches_continue_every_stream_exactly():
    streams = batchify(torch.arange(4 * 23), 4)  # length 23: windows of 5 → 5, 5, 5, 5, 2 (the last is short)
    batches = [StreamBatches(streams, seq_len=5)[i] for i in range(len(StreamBatches(streams, 5)))]
    assert [x.shape[1] for x, _ in batches] == [5, 5, 5, 5, 2]
    for (x0, y0), (x1, _) in itertools.pairwise(batches):
        assert torch.equal(x1[:, 0], y0[:, -1])  # the next window starts where this one's targets end
        assert torch.equal(y0[:, :-1], x0[:, 1:])  # targets are the inputs shifted by one character
    inputs = torch.cat([x for x, _ in batches], dim=1)
    targets = torch.cat([y for _, y in batches], dim=1)
    assert torch.equal(inputs, streams[:, :-1]) and torch.equal(targets, streams[:, 1:])


def test_splits_are_contiguous_and_the_vocabulary_comes_from_training_text(tmp_path):
    text = "abcd" * 200 + "xyz" * 30  # the last 10% (the test slice) holds characters never seen in training
    dm = corpus(write_text(tmp_path, text), val_fraction=0.05, test_fraction=0.1)
    assert dm.vocab.chars[1:] == list("abcd") and dm.vocab_size == 5 == dm.input_size == dm.output_size
    train_streams = dm.dataset("train").streams
    assert dm.vocab.decode(train_streams[0, :8]) == "abcdabcd"
    test_streams = dm.dataset("test").streams
    assert (test_streams == 0).sum() > 0.8 * test_streams.numel()  # x, y, z → unknown


def test_training_batches_are_served_in_order_every_epoch(tmp_path):
    dm = corpus(write_text(tmp_path, "the quick brown fox jumps over the lazy dog. " * 40))
    loader = dm.train_dataloader()
    assert loader.batch_size is None and not loader.sampler.shuffle
    first, second = list(loader), list(loader)
    assert len(first) > 3 and all(torch.equal(a[0], b[0]) for a, b in zip(first, second, strict=True))
    for (x0, y0), (x1, _) in itertools.pairwise(first):
        assert x0.shape[0] == dm.batch_size and torch.equal(x1[:, 0], y0[:, -1])


def test_a_loader_restored_mid_epoch_continues_with_the_next_batch(tmp_path):
    dm = corpus(write_text(tmp_path, "the quick brown fox jumps over the lazy dog. " * 40))
    loader = dm.train_dataloader()
    batches = iter(loader)
    for _ in range(3):
        next(batches)
    restored = dm.train_dataloader()
    restored.load_state_dict(loader.state_dict())
    assert torch.equal(next(iter(restored))[0], list(loader)[3][0])


def test_each_process_of_a_data_parallel_run_reads_its_own_streams(tmp_path):
    dm = corpus(write_text(tmp_path, "".join(chr(ord("a") + i % 26) for i in range(4000))))
    ranks = [dm.dataset("train", rank, world_size=2).streams for rank in (0, 1)]
    assert ranks[0].shape == ranks[1].shape and ranks[0].shape[0] == dm.batch_size  # equal steps per rank
    together = torch.cat(ranks)
    assert len({tuple(row) for row in together.tolist()}) == 2 * dm.batch_size  # no stream read twice
    assert sorted(together.flatten().tolist()) == sorted(batchify(dm.ids["train"], 8).flatten().tolist())


def test_independent_chunks_are_shuffled_for_training_and_cover_the_text(tmp_path):
    dm = corpus(write_text(tmp_path, "".join(chr(ord("a") + i % 26) for i in range(2000))), tbptt=False)
    epoch = [batch for batch in dm.train_dataloader()]
    inputs = torch.cat([x for x, _ in epoch])
    targets = torch.cat([y for _, y in epoch])
    assert inputs.shape[1] == dm.seq_len and torch.equal(targets[:, :-1], inputs[:, 1:])
    train_chunks = dm.dataset("train").tensors[0]
    assert len(inputs) == len(train_chunks) and not torch.equal(inputs, train_chunks)  # shuffled ...
    assert sorted(map(tuple, inputs.tolist())) == sorted(map(tuple, train_chunks.tolist()))  # ... each once
    val = torch.cat([x for x, _ in dm.val_dataloader()])
    assert torch.equal(val, dm.dataset("val").tensors[0])  # evaluation keeps the text's order


def test_empty_file_is_named(tmp_path):
    path = write_text(tmp_path, "", "empty.txt")
    with pytest.raises(DataError, match=r"empty\.txt is empty"):
        corpus(path)


@pytest.mark.parametrize(
    "payload", [b"\x89PNG\r\n\x1a\n\xff\xfe\x00\x01", b"plain start then \x00\x00\x00 nul bytes"]
)
def test_binary_file_is_named(tmp_path, payload):
    path = tmp_path / "image.bin"
    path.write_bytes(payload)
    with pytest.raises(DataError, match=r"image\.bin .*(not UTF-8|binary)"):
        corpus(path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(DataError, match=r"nowhere\.txt does not exist.*datamodule\.path"):
        corpus(tmp_path / "nowhere.txt")


def test_default_corpus_without_network_says_to_pass_a_path(tmp_path):
    # Port 9 on the loopback refuses at once: the download fails the way it does offline, without a network.
    dm = CharCorpus(url="http://127.0.0.1:9/input.txt", download_path=str(tmp_path / "shakespeare.txt"))
    with pytest.raises(DataError, match=r"shakespeare\.txt is missing.*datamodule\.path=/some/file\.txt"):
        dm.setup("fit")
    assert not (tmp_path / "shakespeare.txt").exists()


def test_a_default_corpus_already_on_disk_is_used_without_downloading(tmp_path):
    path = write_text(tmp_path, "To be, or not to be: that is the question. " * 20, "shakespeare.txt")
    dm = CharCorpus(url="http://127.0.0.1:9/input.txt", download_path=str(path), batch_size=2, seq_len=8)
    dm.setup("fit")
    assert dm.vocab.decode(dm.dataset("train").streams[0, :5]) == "To be"


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"batch_size": 0}, "datamodule.batch_size"),
        ({"seq_len": -3}, "datamodule.seq_len"),
        ({"val_fraction": 1.2}, "datamodule.val_fraction"),
        ({"val_fraction": 0.5, "test_fraction": 0.5}, "datamodule.test_fraction"),
    ],
)
def test_bad_values_name_the_key(tmp_path, kwargs, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        CharCorpus(path=str(tmp_path / "x.txt"), **kwargs)


def test_a_split_too_short_for_the_streams_says_what_to_change(tmp_path):
    path = write_text(tmp_path, "abcdefghij" * 10)  # val slice: 10 characters for 16 streams
    with pytest.raises(ConfigError, match=r"val split .* datamodule\.batch_size=16"):
        corpus(path, batch_size=16)
