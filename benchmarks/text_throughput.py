"""Characters per second of the character language model: training through rnnexp's Lightning path against a
plain PyTorch truncated-BPTT loop, and sampling (generation) one character at a time.

Both training paths use the same ``CharRNN``, the same ``CharCorpus`` streams (a synthetic word corpus written
to a temporary file and read by the real datamodule), AdamW and gradient clipping, and carry the detached hidden
state from batch to batch. The Lightning path is the composed ``datamodule=text`` config with its
``CharLanguageModel`` (metrics, grad-norm logging, the CSV logger, the non-finite-loss guard); checkpointing,
early stopping, the progress bar and validation are off, since they do not run per training step. The two
paths alternate, repeat after repeat, so drift on a shared machine hits both.

    python benchmarks/text_throughput.py --help
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra.utils import get_class
from omegaconf import DictConfig
from torch.nn import functional as F

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # tests.conftest composes the real config

from benchmarks.common import per_step_callbacks, prepare_run, step_only_overrides  # noqa: E402
from rnnexp.data import CharCorpus  # noqa: E402
from rnnexp.models.char_rnn import CharRNN  # noqa: E402
from rnnexp.models.recurrent import repackage_hidden  # noqa: E402
from rnnexp.models.sampling import sample  # noqa: E402
from rnnexp.training import build_task, instantiate, instantiate_group  # noqa: E402
from tests.conftest import compose_config  # noqa: E402

CELLS = ("rnn", "lstm", "gru")
WORDS = (
    "the",
    "king",
    "and",
    "queen",
    "of",
    "a",
    "fair",
    "realm",
    "now",
    "speak",
    "to",
    "thee",
    "my",
    "lord",
)


@dataclass(frozen=True)
class Shape:
    """The ``experiment=shakespeare_char_lstm`` sizes by default."""

    batch_size: int = 64
    seq_len: int = 128
    hidden_size: int = 512
    num_layers: int = 2
    embedding_dim: int = 128

    @property
    def chars_per_step(self) -> int:
        return self.batch_size * self.seq_len


@dataclass
class CellResult:
    """Characters/s of each repeat in the order they ran; ``ratio`` pairs the repeats (same moment)."""

    cell: str
    plain: list[float] = field(default_factory=list)
    lightning: list[float] = field(default_factory=list)
    generate: list[float] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return statistics.median(lit / pl_ for lit, pl_ in zip(self.lightning, self.plain, strict=True))


def write_corpus(path: Path, characters: int, seed: int = 0) -> Path:
    """Random words in lines; timing ignores content, but the vocabulary (~25 symbols) is text-like."""
    rng = random.Random(seed)
    words: list[str] = []
    size = 0
    while size < characters:
        word = rng.choice(WORDS) + ("\n" if rng.random() < 0.1 else " ")
        words.append(word)
        size += len(word)
    path.write_text("".join(words), encoding="utf-8")
    return path


def bench_config(
    cell: str, shape: Shape, corpus: Path, run_dir: Path, max_steps: int, device: str
) -> DictConfig:
    """The config ``train.py datamodule=text model=<cell>`` gets, minus what does not run per step."""
    return compose_config(
        [
            "datamodule=text",
            f"datamodule.path={corpus}",
            f"model={cell}",
            f"model.hidden_size={shape.hidden_size}",
            f"model.num_layers={shape.num_layers}",
            f"task.embedding_dim={shape.embedding_dim}",
            f"datamodule.batch_size={shape.batch_size}",
            f"datamodule.seq_len={shape.seq_len}",
            *step_only_overrides(max_steps, device),
        ],
        run_dir,
    )


class StepClock(pl.Callback):
    """Times the training steps after ``warmup``: from the end of step warmup-1 to the end of the last."""

    def __init__(self, warmup: int, steps: int, device: torch.device):
        self.warmup, self.last, self.device = warmup, warmup + steps - 1, device
        self.start = self.stop = 0.0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if batch_idx in (self.warmup - 1, self.last):
            synchronize(self.device)
            if batch_idx == self.last:
                self.stop = time.perf_counter()
            else:
                self.start = time.perf_counter()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def lightning_chars_per_s(
    cfg: DictConfig, shape: Shape, warmup: int, steps: int, device: torch.device
) -> float:
    """Fit the project's task for warmup + steps batches with a real ``pl.Trainer``."""
    pl.seed_everything(cfg.seed, verbose=False)
    spec = instantiate(cfg.model)
    datamodule = instantiate(cfg.datamodule)
    clock = StepClock(warmup, steps, device)
    callbacks = per_step_callbacks(cfg)
    trainer: pl.Trainer = instantiate(
        cfg.trainer, callbacks=[*callbacks, clock], logger=instantiate_group(cfg.get("logger")) or False
    )
    task = build_task(cfg, spec, datamodule)
    trainer.fit(task, datamodule=datamodule)
    if trainer.global_step != warmup + steps:
        raise RuntimeError(f"Lightning ran {trainer.global_step} steps, expected {warmup + steps}")
    return shape.chars_per_step * steps / (clock.stop - clock.start)


def build_plain(cfg: DictConfig, device: torch.device) -> tuple[CharRNN, CharCorpus]:
    spec = instantiate(cfg.model)
    datamodule: CharCorpus = instantiate(cfg.datamodule)
    task_class = get_class(cfg.task._target_)
    net = task_class.build_net(spec, datamodule, **task_class.net_options(cfg.task))
    return net.to(device), datamodule


def plain_chars_per_s(cfg: DictConfig, shape: Shape, warmup: int, steps: int, device: torch.device) -> float:
    """The hand-written TBPTT loop of the word_language_model example, with AdamW and clipping."""
    pl.seed_everything(cfg.seed, verbose=False)
    net, datamodule = build_plain(cfg, device)
    net.train()
    optimizer = instantiate(cfg.optimizer)(params=net.parameters())
    clip = cfg.trainer.gradient_clip_val
    batches = datamodule.dataset("train")
    hidden = None
    start = 0.0
    for step in range(warmup + steps):
        if step == warmup:
            synchronize(device)
            start = time.perf_counter()
        inputs, targets = (t.to(device) for t in batches[step])  # (streams, time) ids each
        logits, hidden = net(inputs, hidden)
        hidden = repackage_hidden(hidden)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), clip)
        optimizer.step()
    synchronize(device)
    return shape.chars_per_step * steps / (time.perf_counter() - start)


def generate_chars_per_s(cfg: DictConfig, length: int, device: torch.device) -> float:
    """``rnnexp.models.sampling.sample``: one prompt, one character per forward step (as the CLI runs it)."""
    net, _ = build_plain(cfg, device)
    sample(net, "the ", 20, seed=0)  # warm-up: kernels, allocator
    synchronize(device)
    start = time.perf_counter()
    text = sample(net, "the ", length, temperature=0.8, seed=1)  # ends with a device-to-host copy
    elapsed = time.perf_counter() - start
    if len(text) != length:
        raise RuntimeError(f"sample returned {len(text)} characters, expected {length}")
    return length / elapsed


def run_benchmark(
    cells: tuple[str, ...],
    shape: Shape,
    warmup: int,
    steps: int,
    repeats: int,
    gen_length: int,
    device: str,
    work_dir: Path,
) -> list[CellResult]:
    """Alternate the two training paths per cell and repeat (order flips every repeat), then generation."""
    if warmup < 1 or steps < 1 or repeats < 1:
        raise ValueError(f"warmup={warmup}, steps={steps}, repeats={repeats} must all be >= 1")
    torch_device = torch.device(device)
    # Enough text for warmup + steps batches of every stream in the 90% training slice.
    characters = int(shape.chars_per_step * (warmup + steps + 2) / 0.9) + 1000
    corpus = write_corpus(work_dir / "corpus.txt", characters)
    results = {cell: CellResult(cell) for cell in cells}
    for repeat in range(repeats):
        for cell in cells:
            cfg = bench_config(cell, shape, corpus, work_dir / f"run-{cell}", warmup + steps, device)
            paths = [("lightning", lightning_chars_per_s), ("plain", plain_chars_per_s)]
            for name, measure in paths if repeat % 2 == 0 else paths[::-1]:
                getattr(results[cell], name).append(measure(cfg, shape, warmup, steps, torch_device))
            results[cell].generate.append(generate_chars_per_s(cfg, gen_length, torch_device))
    return list(results.values())


def format_table(results: list[CellResult], shape: Shape) -> str:
    lines = [
        f"{'cell':<5} {'plain chars/s':>14} {'lightning chars/s':>18} {'ratio':>6} {'generate chars/s':>17}"
        "   (median of repeats)"
    ]
    for r in results:
        lines.append(
            f"{r.cell:<5} {statistics.median(r.plain):>14.0f} {statistics.median(r.lightning):>18.0f} "
            f"{r.ratio:>6.3f} {statistics.median(r.generate):>17.0f}"
        )
    lines.append(
        f"batch {shape.batch_size} streams x seq_len {shape.seq_len}, embedding {shape.embedding_dim}, "
        f"{shape.num_layers} layer(s) x hidden {shape.hidden_size}; generation: batch 1, 1 char per step"
    )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cells", nargs="+", choices=CELLS, default=list(CELLS))
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--hidden-size", type=int, default=512)
    parser.add_argument("--num-layers", type=int, default=2)
    parser.add_argument("--embedding-dim", type=int, default=128)
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps before the timed ones")
    parser.add_argument("--steps", type=int, default=30, help="timed training steps per repeat")
    parser.add_argument("--repeats", type=int, default=3, help="alternating repeats; the median is reported")
    parser.add_argument(
        "--gen-length", type=int, default=500, help="characters sampled per generation timing"
    )
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch.set_num_threads")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--verbose", action="store_true", help="print every repeat's chars/s")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    prepare_run(args.device, args.threads)
    shape = Shape(args.batch_size, args.seq_len, args.hidden_size, args.num_layers, args.embedding_dim)
    with tempfile.TemporaryDirectory(prefix="rnnexp-text-bench-") as tmp:
        results = run_benchmark(
            tuple(args.cells),
            shape,
            args.warmup,
            args.steps,
            args.repeats,
            args.gen_length,
            args.device,
            Path(tmp),
        )
    if args.verbose:
        for r in results:
            print(
                f"{r.cell}: plain {[round(v) for v in r.plain]}  lightning {[round(v) for v in r.lightning]}  "
                f"generate {[round(v) for v in r.generate]}"
            )
    print(format_table(results, shape))


if __name__ == "__main__":
    main()
