"""CharPairs: generated addition and reversal pairs, TSV files with their bad lines, padded tensors; ImageCaptions."""

import logging

import pytest
import torch

from rnnexp.data.char_pairs import CharPairs, addition_pairs, read_pairs, reverse_pairs
from rnnexp.data.image_captions import ImageCaptions
from rnnexp.errors import ConfigError, DataError


def test_addition_pairs_are_right_distinct_and_seeded():
    pairs = addition_pairs(500, digits=3, seed=1)
    assert len(pairs) == 500 == len({tuple(sorted(map(int, s.split("+")))) for s, _ in pairs})
    assert all(int(t) == sum(int(n) for n in s.split("+")) for s, t in pairs)
    assert max(len(n) for s, _ in pairs for n in s.split("+")) == 3
    assert pairs == addition_pairs(500, digits=3, seed=1) != addition_pairs(500, digits=3, seed=2)


def test_reverse_pairs_reverse_distinct_strings_of_the_configured_lengths():
    pairs = reverse_pairs(300, min_length=2, max_length=5, alphabet="abc", seed=0)
    assert len({s for s, _ in pairs}) == 300
    assert all(t == s[::-1] and 2 <= len(s) <= 5 and set(s) <= set("abc") for s, t in pairs)


def test_impossible_counts_name_the_key():
    with pytest.raises(ConfigError, match=r"datamodule\.num_pairs=100 .*distinct sums"):
        addition_pairs(100, digits=1, seed=0)
    with pytest.raises(ConfigError, match=r"datamodule\.num_pairs"):
        reverse_pairs(100, min_length=1, max_length=2, alphabet="ab", seed=0)


def test_splits_tensors_and_batches():
    dm = CharPairs(task="reverse", num_pairs=200, min_length=2, max_length=6, alphabet="xyz", batch_size=16)
    dm.setup("fit")
    assert [len(dm.datasets[s]) for s in ("train", "val", "test")] == [160, 20, 20]
    assert dm.vocab.chars[:3] == ["<pad>", "<start>", "<end>"] and dm.vocab.characters == "xyz"
    source, source_lengths, target, target_lengths = dm.datasets["train"].tensors
    assert source.shape == (160, 6) and target.shape == (160, 7)  # room for <end>
    row = 0
    n = int(source_lengths[row])
    assert dm.vocab.decode(target[row, :n]) == dm.vocab.decode(source[row, :n])[::-1]
    assert target[row, n] == dm.vocab.end_id and int(target_lengths[row]) == n + 1
    batch = dm.on_before_batch_transfer(dm.datasets["train"][torch.arange(4)], 0)
    assert batch[0].shape[1] == int(batch[1].max()) and batch[2].shape[1] == int(batch[3].max())


def test_a_tsv_file_gives_the_pairs_and_splits_them_with_the_seed(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("".join(f"word{i}\tmot{i}\tCC-BY\n" for i in range(50)) + "\n", encoding="utf-8")
    assert read_pairs(path, 0.1)[:2] == [("word0", "mot0"), ("word1", "mot1")]  # third column ignored
    first = CharPairs(path=str(path), val_fraction=0.2, test_fraction=0.2, seed=3)
    first.setup()
    again = CharPairs(path=str(path), val_fraction=0.2, test_fraction=0.2, seed=3)
    again.setup()
    assert len(first.datasets["train"]) == 30
    assert torch.equal(first.datasets["val"].tensors[0], again.datasets["val"].tensors[0])


def test_a_few_bad_lines_are_skipped_with_their_line_numbers(tmp_path, caplog, monkeypatch):
    path = tmp_path / "pairs.tsv"
    good = [f"a{i}\tb{i}" for i in range(30)]
    lines = [*good[:10], "no tab here", *good[10:20], "\tempty source", *good[20:]]
    path.write_bytes("\n".join(lines).encode() + b"\nbad \xff byte\tx\n")
    # In-process Hydra runs earlier in a session reconfigure logging (disabling or detaching existing loggers);
    # the warning is caught at its own logger.
    logger = logging.getLogger("rnnexp.data.char_pairs")
    monkeypatch.setattr(logger, "disabled", False)
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.WARNING, logger=logger.name):
            pairs = read_pairs(path, max_bad_fraction=0.2)
    finally:
        logger.removeHandler(caplog.handler)
    assert len(pairs) == 30
    message = caplog.text
    assert "skipped 3 bad lines of 33" in message
    assert "line 11: no tab" in message and "line 22: empty source" in message
    assert "line 33: undecodable byte" in message


def test_a_file_of_mostly_bad_lines_is_refused(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("just some prose\nwith no tabs at all\nbut one\tpair\n", encoding="utf-8")
    with pytest.raises(DataError) as err:
        CharPairs(path=str(path)).setup()
    message = str(err.value)
    assert str(path) in message and "2 of 3 lines" in message and "line 1: no tab" in message
    assert "datamodule.max_bad_fraction=0.1" in message


def test_an_empty_file_is_refused(tmp_path):
    path = tmp_path / "empty.tsv"
    path.write_text("\n\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"empty\.tsv holds no pairs .*datamodule\.path"):
        CharPairs(path=str(path)).setup()
    with pytest.raises(DataError, match="does not exist"):
        CharPairs(path=str(tmp_path / "missing.tsv")).setup()


def test_an_unknown_task_names_the_choices():
    with pytest.raises(ConfigError, match=r"datamodule\.task='sort'.*addition"):
        CharPairs(task="sort")


def test_captions_read_the_mnist_files_with_the_same_checks(tmp_path, fake_mnist_root):
    dm = ImageCaptions(variant="fashion", data_dir=str(tmp_path), download=False)
    with pytest.raises(DataError, match=r"FashionMNIST/raw.*train-images-idx3-ubyte.*dataset-fashion-mnist"):
        dm.setup("fit")
    root = fake_mnist_root(n_train=40, n_test=10, folder="FashionMNIST")
    dm = ImageCaptions(variant="fashion", data_dir=str(root), download=False, val_size=8)
    dm.setup("fit")
    assert dm.captions[9] == "ankle boot" and dm.captions[0] == "t-shirt/top"
    images, captions, lengths, labels = dm.on_after_batch_transfer(dm.datasets["test"][torch.arange(10)], 0)
    assert images.dtype == torch.float32 and images.shape == (10, 28, 28)
    for row, label in enumerate(labels.tolist()):
        assert dm.vocab.decode_until_end(captions[row]) == dm.captions[label]
        assert captions[row, lengths[row] - 1] == dm.vocab.end_id
    assert ImageCaptions(variant="mnist", data_dir=str(root)).captions[7] == "seven"
    with pytest.raises(ConfigError, match=r"datamodule\.captions needs one non-empty caption per class"):
        ImageCaptions(variant="mnist", captions=["zero", "one"])
