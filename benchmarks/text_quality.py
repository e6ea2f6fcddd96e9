"""Equal budget, equal quality: rnnexp's character language model against a plain truncated-BPTT loop with the
plain loop's exact settings (2-layer LSTM 256, sequence 100, batch 64 streams, Adam 2e-3, gradient-norm
clipping 5, constant rate, 400 steps), both scored by one function on the identical validation characters (all
of the corpus's validation split, streams carried across windows), with bits/char and training chars/s side
by side.

Arms (``--arms``; each runs in its own process with ``--out``, and ``--report`` prints the table):

- ``plain``: a hand-written loop in the style of char-rnn.pytorch: ``nn.Embedding(V, 256)`` → ``nn.LSTM`` →
  ``nn.Linear``, PyTorch's default initialisation, the corpus's training split laid out as 64 contiguous
  streams (``rnnexp.data.streams.batchify``, the classic layout), the detached state carried from window to
  window.
- ``rnnexp``: ``python train.py datamodule=text`` with those settings as overrides (``optimizer=adam``,
  ``~scheduler``, ``trainer.gradient_clip_val=5``, ...) and everything else at its defaults: the embedding as
  wide as the LSTM (``task.embedding_dim: ${model.hidden_size}``) and PyTorch's default initialisation
  (``task.init: torch``), validation every 40 steps on at most 32 batches.
- ``rnnexp_before``: the same run with the text defaults before issue 24 (``task.embedding_dim=64
  task.init=uniform``: U(-0.1, 0.1) embedding and decoder), which were the gap.

The corpus: any UTF-8 text of a few MB (``--corpus``). BENCHMARKS.md used the King James Bible from Debian's
``bible-kjv-text`` package (4.4 MB, public domain), extracted offline with::

    apt-get download bible-kjv-text bible-kjv && for d in bible-kjv*.deb; do dpkg-deb -x $d kjv; done
    kjv/usr/bin/bible -p kjv/usr/lib -f gen1:1-rev22:21 > kjv.txt

    python benchmarks/text_quality.py --corpus kjv.txt --arms plain --out plain.json
    python benchmarks/text_quality.py --report plain.json rnnexp.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn
from torch.nn import functional as F

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `python benchmarks/<script>.py` finds rnnexp and benchmarks.harness

from benchmarks.harness import markdown_table, prepare_run  # noqa: E402
from rnnexp.data.char_corpus import CharCorpus  # noqa: E402
from rnnexp.data.streams import batchify  # noqa: E402
from rnnexp.models.recurrent import repackage_hidden  # noqa: E402
from rnnexp.training import compose_config, train  # noqa: E402

ARMS = ("plain", "rnnexp", "rnnexp_before")
BEFORE = ("task.embedding_dim=64", "task.init=uniform")  # the text defaults before issue 24


@dataclass(frozen=True)
class Settings:
    """The plain loop's settings, which every arm trains with."""

    hidden_size: int = 256
    num_layers: int = 2
    seq_len: int = 100
    batch_size: int = 64
    lr: float = 2e-3
    clip: float = 5.0
    steps: int = 400
    seed: int = 0


@dataclass
class ArmResult:
    arm: str
    seed: int
    val_bpc: float  # the same evaluation for every arm: all validation characters
    logged_val_bpc: float | None  # rnnexp's own val/bpc at its last validation (its subset)
    train_chars: int
    train_wall_s: float  # training steps only (rnnexp: minus its validation passes)
    train_cpu_s: float
    load: str

    @property
    def chars_per_s(self) -> float:
        return self.train_chars / self.train_wall_s

    @property
    def chars_per_cpu_s(self) -> float:
        return self.train_chars / self.train_cpu_s


def corpus_splits(path: Path, settings: Settings) -> CharCorpus:
    """rnnexp's own reading and split (train 90%, validation 5%, test 5%): both loops see the same
    characters, and the same vocabulary ids."""
    datamodule = CharCorpus(path=str(path), batch_size=settings.batch_size, seq_len=settings.seq_len)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule


@torch.no_grad()
def bits_per_char(model: nn.Module, ids: torch.Tensor, settings: Settings) -> float:
    """Mean next-character cross-entropy in bits over every character of ``ids`` (laid out as the training
    streams, state carried across windows, from zeros): ``model(ids, hidden) -> (logits, hidden)``."""
    model.eval()
    streams = batchify(ids, settings.batch_size)
    inputs, targets = streams[:, :-1], streams[:, 1:]
    hidden, total, count = None, 0.0, 0
    for start in range(0, inputs.shape[1], settings.seq_len):
        x, y = inputs[:, start : start + settings.seq_len], targets[:, start : start + settings.seq_len]
        logits, hidden = model(x, hidden)
        total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="sum").item()
        count += y.numel()
    model.train()
    return total / count / math.log(2)


class PlainCharLSTM(nn.Module):
    """Embedding (as wide as the LSTM) → LSTM → linear decoder, every layer at PyTorch's default init."""

    def __init__(self, vocab_size: int, settings: Settings):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, settings.hidden_size)
        self.rnn = nn.LSTM(settings.hidden_size, settings.hidden_size, settings.num_layers, batch_first=True)
        self.decoder = nn.Linear(settings.hidden_size, vocab_size)

    def forward(self, ids: torch.Tensor, hidden=None):
        outputs, hidden = self.rnn(self.embedding(ids), hidden)
        return self.decoder(outputs), hidden


def run_plain(datamodule: CharCorpus, settings: Settings) -> ArmResult:
    torch.manual_seed(settings.seed)
    model = PlainCharLSTM(len(datamodule.vocab), settings)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    streams = batchify(datamodule.ids["train"], settings.batch_size)
    inputs, targets = streams[:, :-1], streams[:, 1:]
    hidden = None
    wall, cpu = time.perf_counter(), time.process_time()
    for step in range(settings.steps):
        start = (step * settings.seq_len) % (inputs.shape[1] - settings.seq_len)
        x, y = inputs[:, start : start + settings.seq_len], targets[:, start : start + settings.seq_len]
        logits, hidden = model(x, hidden)
        hidden = repackage_hidden(hidden)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), settings.clip)
        optimizer.step()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    chars = settings.steps * settings.batch_size * settings.seq_len
    val = bits_per_char(model, datamodule.ids["val"], settings)
    return ArmResult("plain", settings.seed, val, None, chars, wall, cpu, load())


class TrainingClock(pl.Callback):
    """Training time without the validation passes."""

    def __init__(self):
        self.wall = self.cpu = 0.0
        self.val_wall = self.val_cpu = 0.0

    def on_train_start(self, trainer, pl_module) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def on_validation_start(self, trainer, pl_module) -> None:
        self.val_started = (time.perf_counter(), time.process_time())

    def on_validation_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking and hasattr(self, "val_started"):
            self.val_wall += time.perf_counter() - self.val_started[0]
            self.val_cpu += time.process_time() - self.val_started[1]

    def on_train_end(self, trainer, pl_module) -> None:
        self.wall = time.perf_counter() - self.wall - self.val_wall
        self.cpu = time.process_time() - self.cpu - self.val_cpu


def rnnexp_overrides(corpus: Path, settings: Settings, extra: tuple[str, ...] = ()) -> list[str]:
    """The plain loop's settings as ``train.py`` overrides; everything else at rnnexp's defaults."""
    overrides = [
        "datamodule=text", f"datamodule.path={corpus}", "model=lstm", f"model.hidden_size={settings.hidden_size}",
        f"model.num_layers={settings.num_layers}", f"datamodule.seq_len={settings.seq_len}",
        f"datamodule.batch_size={settings.batch_size}", "optimizer=adam", f"optimizer.lr={settings.lr}",
        "~scheduler", f"trainer.gradient_clip_val={settings.clip}", f"trainer.max_steps={settings.steps}",
        "trainer.accelerator=cpu", f"seed={settings.seed}", "test=false", "task.sample_length=0",
        "callbacks=none", "logger=csv", "num_threads=1",
    ]  # fmt: skip
    return [*overrides, *extra]


def run_rnnexp(
    corpus: Path, datamodule: CharCorpus, settings: Settings, arm: str, extra: tuple[str, ...] = ()
) -> ArmResult:
    """One rnnexp arm (``rnnexp`` or ``rnnexp_before``)."""
    import rnnexp.training as training

    clock = TrainingClock()
    extra = (*(BEFORE if arm == "rnnexp_before" else ()), *extra)
    build = training.build_experiment

    def build_with_clock(cfg, callbacks=None):  # the configured callbacks (none) and the clock
        return build(cfg, callbacks=[*training.instantiate_group(cfg.get("callbacks")), clock])

    with tempfile.TemporaryDirectory(prefix="rnnexp-text-quality-") as tmp:
        cfg = compose_config(rnnexp_overrides(corpus, settings, extra), Path(tmp) / "run")
        training.build_experiment = build_with_clock
        try:
            results, objects = train(cfg)
        finally:
            training.build_experiment = build
    net = objects["task"].net
    if net.vocab.to_dict() != datamodule.vocab.to_dict():
        raise RuntimeError("rnnexp read a different vocabulary than the evaluation")
    val = bits_per_char(net, datamodule.ids["val"], settings)
    chars = results["global_step"] * settings.batch_size * settings.seq_len
    return ArmResult(
        arm, settings.seed, val, results["val"].get("val/bpc"), chars,
        clock.wall, clock.cpu, load(),
    )  # fmt: skip


def load() -> str:
    try:
        return Path("/proc/loadavg").read_text().split(" ")[0]
    except OSError:
        return "?"


def format_table(results: list[dict[str, Any]]) -> str:
    header = ["arm", "seed", "val bits/char (all val chars)", "rnnexp's logged val/bpc", "train chars/s",
              "train chars/CPU-s", "load"]  # fmt: skip
    rows = [
        [r["arm"], str(r["seed"]), f"{r['val_bpc']:.4f}",
         f"{r['logged_val_bpc']:.4f}" if r["logged_val_bpc"] is not None else "",
         f"{r['train_chars'] / r['train_wall_s']:.0f}", f"{r['train_chars'] / r['train_cpu_s']:.0f}", r["load"]]
        for r in results
    ]  # fmt: skip
    return markdown_table("equal budget: same settings, steps and validation characters", header, rows)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", type=Path, help="a UTF-8 text file of a few MB")
    parser.add_argument("--arms", nargs="+", choices=ARMS, default=list(ARMS))
    parser.add_argument("--steps", type=int, default=Settings.steps)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hidden-size", type=int, default=Settings.hidden_size)
    parser.add_argument("--batch-size", type=int, default=Settings.batch_size)
    parser.add_argument("--seq-len", type=int, default=Settings.seq_len)
    parser.add_argument(
        "--validate-at-end-only", action="store_true",
        help="rnnexp validates once, after the last step, instead of every 40 (saves CPU; training is unchanged)",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, help="write the arms' results as JSON")
    parser.add_argument("--report", nargs="+", type=Path, help="print the table of these JSON files")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    args = parse_args(argv)
    if args.report:
        results = [r for path in args.report for r in json.loads(path.read_text())]
        print(format_table(results))
        return results
    if args.corpus is None:
        raise SystemExit(
            "--corpus is required (a UTF-8 text file; see --help for the KJV used in BENCHMARKS.md)"
        )
    prepare_run("cpu", 1)
    settings = Settings(
        hidden_size=args.hidden_size, seq_len=args.seq_len, batch_size=args.batch_size, steps=args.steps,
        seed=args.seed,
    )  # fmt: skip
    datamodule = corpus_splits(args.corpus, settings)
    results = []
    for arm in args.arms:
        if arm == "plain":
            result = run_plain(datamodule, settings)
        else:
            extra = (f"trainer.val_check_interval={args.steps}",) if args.validate_at_end_only else ()
            result = run_rnnexp(args.corpus, datamodule, settings, arm, extra)
        results.append({**asdict(result)})
        print(json.dumps(results[-1]), flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1))
    print(format_table(results))
    return results


if __name__ == "__main__":
    main()
