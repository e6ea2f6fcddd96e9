"""Bad files and values for datamodule=text_classes and datamodule=tagging, as `python train.py <case>` (all
cases in one interpreter, tests/cli_cases.py): each exits non-zero before training, prints no traceback, and
its last line names the key, the file, the line, or the columns found."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli_cases import refusal_problems
from tests.test_checked_values import QUIET
from tests.test_tagging import tagged_sentences, write_columns, write_conllu
from tests.test_text_classes import write_topics


def text_cases(tmp: Path) -> list[tuple[list[str], str]]:
    good = write_topics(tmp / "good.csv", count=60)
    wrong_columns = tmp / "reviews.csv"
    wrong_columns.write_text("review,stars\ngreat film,5\nawful,1\n")
    header_only = tmp / "header.csv"
    header_only.write_text("text,label\n")
    empty = tmp / "empty.tsv"
    empty.write_text("")
    one_class = tmp / "one.csv"
    one_class.write_text("text,label\n" + "".join(f"text number {i},pos\n" for i in range(20)))
    only_in_test = tmp / "split.csv"
    rows = [f"text {i},{'ab'[i % 2]},{'train' if i < 16 else 'val'}" for i in range(20)]
    only_in_test.write_text("text,label,split\n" + "\n".join([*rows, "odd one,z,test"]) + "\n")
    bad_split = tmp / "bad_split.csv"
    bad_split.write_text("text,label,split\nsome text,a,train\nmore text,b,holdout\n")
    no_label = tmp / "no_label.jsonl"
    no_label.write_text('{"text": "fine", "label": "a"}\n{"text": "also fine", "label": null}\n')
    flat = tmp / "flat"
    flat.mkdir()
    (flat / "a.txt").write_text("no class folders here")
    odd_suffix = tmp / "data.xyz"
    odd_suffix.write_text("text,label\n")
    classes = ["datamodule=text_classes"]
    return [
        ([*classes, f"datamodule.path={wrong_columns}"], "its columns are ['review', 'stars']"),
        ([*classes, f"datamodule.path={header_only}"], f"{header_only} holds no rows"),
        ([*classes, f"datamodule.path={empty}"], f"{empty} holds no rows"),
        ([*classes, f"datamodule.path={one_class}"], "needs at least two classes"),
        ([*classes, f"datamodule.path={only_in_test}"], "label 'z' is in the test split but never in train"),
        ([*classes, f"datamodule.path={bad_split}"], "data row 2: split 'holdout'"),
        ([*classes, f"datamodule.path={no_label}"], f"{no_label}, line 2: the label (column 'label') is empty"),
        ([*classes, f"datamodule.path={flat}"], f"Folder {flat} has no sub-folders"),
        ([*classes, f"datamodule.path={odd_suffix}"], "datamodule.format=auto cannot tell"),
        ([*classes, f"datamodule.path={tmp / 'missing.csv'}"], f"{tmp / 'missing.csv'} does not exist"),
        ([*classes, "datamodule.path=package:no-such-dataset-package/data"], "'no-such-dataset-package' is not installed"),
        (classes, "datamodule.path is not set"),
        ([*classes, f"datamodule.path={good}", "datamodule.tokens=bpe"], "datamodule.tokens='bpe'"),
        ([*classes, f"datamodule.path={good}", "datamodule.truncate=middle"], "datamodule.truncate='middle'"),
        ([*classes, f"datamodule.path={good}", "datamodule.max_length=0"], "datamodule.max_length=0"),
        ([*classes, f"datamodule.path={good}", "datamodule.format=xml"], "datamodule.format='xml'"),
        ([*classes, f"datamodule.path={good}", "datamodule.min_freq=0"], "datamodule.min_freq=0"),
        ([*classes, f"datamodule.path={good}", "task.embedding_dim=0"], "task.embedding_dim=0"),
        ([*classes, f"datamodule.path={good}", "task.class_weights=inverse"], "task.class_weights='inverse'"),
    ]  # fmt: skip


def tagging_cases(tmp: Path) -> list[tuple[list[str], str]]:
    sentences = tagged_sentences(30)
    good = write_conllu(tmp / "good.conllu", sentences)
    lines = good.read_text().splitlines()
    broken = tmp / "broken.conllu"
    number = next(i for i, line in enumerate(lines, 1) if i >= 8 and line[:1].isdigit())  # a token line
    lines[number - 1] = "\t".join(lines[number - 1].split("\t")[:7])
    broken.write_text("\n".join(lines) + "\n")
    bad_id = tmp / "bad_id.conllu"
    bad_id.write_text(good.read_text().replace("\n3\t", "\nthree\t", 1))
    bad_id_line = next(i for i, line in enumerate(good.read_text().splitlines(), 1) if line.startswith("3\t"))
    no_tag = tmp / "no_tag.conllu"
    no_tag.write_text(good.read_text().replace("\tDET\t", "\t_\t", 1))
    short = tmp / "short.txt"
    short.write_text("the DET\ndog NOUN\nbarks\n")
    test_only = write_columns(tmp / "test.txt", [[("the", "DET"), ("zebra", "ANIMAL")]])
    one_tag = write_columns(tmp / "one.txt", [[("a", "X"), ("b", "X")]] * 10)
    empty = tmp / "empty.conllu"
    empty.write_text("# just a comment\n\n")
    tagging = ["datamodule=tagging"]
    return [
        ([*tagging, f"datamodule.path={broken}"], f"{broken}, line {number} has 7 tab-separated fields"),
        ([*tagging, f"datamodule.path={bad_id}"], f"{bad_id}, line {bad_id_line} has the ID 'three'"),
        ([*tagging, f"datamodule.path={no_tag}"], f"{no_tag}, line 4 has no upos"),
        ([*tagging, f"datamodule.path={short}"], f"{short}, line 3 has 1 column(s)"),
        ([*tagging, f"datamodule.path={write_columns(tmp / 'train.txt', sentences)}", f"datamodule.test_path={test_only}"],
         "Tag 'ANIMAL' is in the test split but never in train"),
        ([*tagging, f"datamodule.path={one_tag}"], "tagging needs at least two tags"),
        ([*tagging, f"datamodule.path={empty}"], f"{empty} holds no sentences"),
        ([*tagging, f"datamodule.path={good}", "datamodule.tag_column=pos"], "datamodule.tag_column='pos'"),
        ([*tagging, f"datamodule.path={short}", "datamodule.tag_column=0"], "datamodule.tag_column=0"),
        ([*tagging, f"datamodule.path={tmp / 'missing.conllu'}"], f"{tmp / 'missing.conllu'} does not exist"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    "subset", ["the file cases the issue names", pytest.param("all", marks=pytest.mark.slow)]
)
def test_every_bad_text_file_or_value_is_refused_in_one_paragraph_naming_it(tmp_path, subset):
    table = [*text_cases(tmp_path), *tagging_cases(tmp_path)]
    if subset != "all":  # a missing column, an empty file, one class, a label only in test, a broken line
        table = [table[i] for i in (0, 2, 3, 4, len(text_cases(tmp_path / "again")))]
    cases = [[*args, *QUIET, f"hydra.run.dir={tmp_path / f'run{i}'}"] for i, (args, _) in enumerate(table)]
    problems = refusal_problems(table, cases, tmp_path, timeout=600)
    assert not problems, "\n".join(problems)
