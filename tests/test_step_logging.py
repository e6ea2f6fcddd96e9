"""What a run logs stays what it was when per-step work moves (issue 24): every task's CSV rows on a fixed seed
(the pre-clip gradient norm rows, the epoch metrics, validation and test values) equal the rows recorded in
``tests/fixtures/step_logging.json`` before that work was moved to the logging interval or the epoch end.

The fixture was written by the code as it was before the change (``python -m tests.test_step_logging
--write``); rewrite it only for a change that is meant to alter logged values, and say so in the commit.
Edited once (issue 24, third round), in eight cases' last ``train/grad_norm`` row only: the gradient norm goes
to the loggers directly, not through ``self.log``. Before, at a run's last step (written
because the run stops there), Lightning re-wrote the value of the previous logging step (e.g. step 14's norm
under step 15), a stale copy; that row now holds the step's own norm, recorded from the new code. Every other
value is still the one recorded before the change.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import random
import sys
from pathlib import Path

import pytest
import torch

from rnnexp.training import compose_config, train
from tests.conftest import bar_images
from tests.test_tagging import tagged_sentences, write_columns
from tests.test_text_classes import write_topics

FIXTURE = Path(__file__).parent / "fixtures" / "step_logging.json"
# Every callback that acts per step stays on (the non-finite guard, resume state, lr monitor, checkpoints);
# only the progress bar and the model summary, which print, are off.
COMMON = ["seed=3", "trainer.max_epochs=2", "trainer.log_every_n_steps=3", "trainer.accelerator=cpu",
          "~callbacks.progress_bar", "+trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
          "trainer.gradient_clip_val=0.5"]  # fmt: skip
WORDS = ("the", "king", "and", "queen", "of", "a", "fair", "realm", "speak", "to", "thee", "lord")


def write_words(path: Path, lines: int = 120, seed: int = 0) -> Path:
    rng = random.Random(seed)
    text = "\n".join(
        " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9))) + "." for _ in range(lines)
    )
    path.write_text(text, encoding="utf-8")
    return path


def write_rows(root: Path, folder: str, n_train: int, n_test: int) -> Path:
    """A torchvision root of IDX files whose classes light up one row each (``bar_images``)."""
    from rnnexp.data.mnist_rows import write_idx

    raw = root / folder / "raw"
    for prefix, count, seed in (("train", n_train, 0), ("t10k", n_test, 1)):
        images, labels = bar_images(count, seed)
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return root


def case_overrides(case: str, tmp: Path) -> list[str]:
    """Small runs of every task: a few training steps per epoch, each on its own data written here."""
    # scheduler=cosine: the sine default when these values were recorded (issue 23 made sine's constant).
    sine = ["datamodule.num_sequences=48", "datamodule.seq_len=16", "datamodule.batch_size=8",
            "model.hidden_size=8", "scheduler=cosine"]  # fmt: skip
    if case == "classifier":
        root = write_rows(tmp / "mnist", "MNIST", n_train=160, n_test=32)
        return ["datamodule=mnist_rows", f"datamodule.data_dir={root}", "datamodule.download=false",
                "datamodule.val_size=32", "datamodule.batch_size=16", "model=gru", "model.hidden_size=8"]  # fmt: skip
    if case == "regressor":
        return [*sine, "model=lstm"]
    if case == "regressor_carried":
        return [*sine, "model=gru", "datamodule.tbptt=true", "datamodule.num_sequences=8",
                "datamodule.seq_len=256", "datamodule.batch_size=2"]  # fmt: skip
    if case == "language_model":
        path = write_words(tmp / "words.txt")
        # task.init=uniform: the text default when these values were recorded (issue 24 made it torch).
        return ["datamodule=text", f"datamodule.path={path}", "model=lstm", "model.hidden_size=16",
                "task.embedding_dim=8", "task.init=uniform", "datamodule.batch_size=4", "datamodule.seq_len=16",
                "trainer.val_check_interval=5", "task.sample_length=0"]  # fmt: skip
    if case == "forecaster":
        return ["datamodule=sine_forecast", "datamodule.horizon=4", *sine, "model=gru"]
    if case == "translator":
        return ["datamodule=char_pairs", "datamodule.task=reverse", "datamodule.num_pairs=160",
                "datamodule.min_length=2", "datamodule.max_length=4", "datamodule.alphabet=abcd",
                "datamodule.batch_size=16", "model=gru", "model.hidden_size=16", "task.embedding_dim=8",
                "task.teacher_forcing=0.5", "task.num_samples=0"]  # fmt: skip
    if case == "captioner":
        root = write_rows(tmp / "fashion", "FashionMNIST", n_train=96, n_test=32)
        return ["datamodule=image_captions", "datamodule.variant=fashion", f"datamodule.data_dir={root}",
                "datamodule.download=false", "datamodule.val_size=32", "datamodule.batch_size=16",
                "model=gru", "model.hidden_size=16", "task.feature_size=16", "task.embedding_dim=8",
                "task.num_samples=0"]  # fmt: skip
    if case == "value_regressor":
        return ["datamodule=adding", "datamodule.seq_len=12", "datamodule.train_size=64", "datamodule.val_size=16",
                "datamodule.test_size=16", "datamodule.batch_size=16", "model=lstm", "model.hidden_size=8",
                "optimizer.lr=3e-3"]  # fmt: skip  # the rate the values were recorded at (issue 23 raised the default)
    if case == "copy_memory":
        return ["datamodule=copy_memory", "datamodule.delay=6", "datamodule.length=3", "datamodule.symbols=4",
                "datamodule.train_size=64", "datamodule.val_size=16", "datamodule.test_size=16",
                "datamodule.batch_size=16", "model=gru", "model.hidden_size=8"]  # fmt: skip
    if case == "text_classifier":
        path = write_topics(tmp / "topics.csv", count=120)
        return ["datamodule=text_classes", f"datamodule.path={path}", "datamodule.min_freq=1",
                "datamodule.batch_size=16", "model=gru", "model.hidden_size=8", "task.embedding_dim=8",
                "model.pooling=last"]  # fmt: skip  # the head the values were recorded with (issue 23: mean)
    if case == "tagger":
        path = write_columns(tmp / "tags.txt", tagged_sentences(120))
        return ["datamodule=tagging", f"datamodule.path={path}", "datamodule.min_freq=1",
                "datamodule.batch_size=16", "model=lstm", "model.hidden_size=8", "task.embedding_dim=8",
                "model.bidirectional=false"]  # fmt: skip  # as recorded (issue 23: bidirectional)
    raise ValueError(case)


CASES = (
    "classifier",
    "regressor",
    "regressor_carried",
    "language_model",
    "forecaster",
    "translator",
    "captioner",
    "value_regressor",
    "copy_memory",
    "text_classifier",
    "tagger",
)


def logged_rows(case: str, tmp: Path) -> list[dict[str, float]]:
    """Every row of the run's ``metrics.csv`` with its non-empty values, as floats."""
    torch.set_num_threads(1)
    figures = [] if case == "language_model" else ["task.log_figures=false"]
    cfg = compose_config([*COMMON, *figures, *case_overrides(case, tmp)], tmp / "run")
    train(cfg)
    with open(Path(cfg.paths.output_dir) / "csv" / "metrics.csv", newline="") as file:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(file)]


def rows_by_key(rows: list[dict[str, float]]) -> dict[str, list[tuple[float, float]]]:
    """``{key: [(step, value), ...]}`` in the order written: the CSV's row grouping is Lightning's concern."""
    series: dict[str, list[tuple[float, float]]] = {}
    for row in rows:
        for key, value in row.items():
            if key not in ("step", "epoch"):
                series.setdefault(key, []).append((row["step"], value))
    return series


@pytest.mark.parametrize("case", CASES)
def test_the_logged_values_are_the_ones_recorded_before_per_step_work_moved(case, tmp_path):
    expected = json.loads(FIXTURE.read_text())[case]
    got = rows_by_key(logged_rows(case, tmp_path))
    assert sorted(got) == sorted(expected), f"{case}: logged keys differ"
    assert any(key == "train/grad_norm" for key in got), "the gradient norm rows are part of what is pinned"
    for key, series in expected.items():
        steps = [step for step, _ in got[key]]
        assert steps == [step for step, _ in series], f"{case}: {key} is logged at other steps"
        for (step, value), (_, want) in zip(got[key], series, strict=True):
            assert math.isclose(value, want, rel_tol=1e-5, abs_tol=1e-7), f"{case}: {key} at step {step}"


def main(argv: list[str] | None = None) -> None:
    """``--write``: record every case's rows as the fixture (the behaviour the tests then pin)."""
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true")
    parser.add_argument("cases", nargs="*", help=f"only these of {list(CASES)}, kept beside the others")
    args = parser.parse_args(argv)
    if not args.write:
        sys.exit("pass --write to record the fixture")
    if unknown := sorted(set(args.cases) - set(CASES)):
        sys.exit(f"unknown case(s) {unknown}; known: {list(CASES)}")
    recorded = json.loads(FIXTURE.read_text()) if args.cases and FIXTURE.exists() else {}
    for case in args.cases or CASES:
        with tempfile.TemporaryDirectory() as tmp:
            recorded[case] = rows_by_key(logged_rows(case, Path(tmp)))
    FIXTURE.write_text(json.dumps(recorded, indent=1) + "\n")
    print(f"wrote {FIXTURE}")


if __name__ == "__main__":
    main()
