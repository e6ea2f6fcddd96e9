"""Characters per second of the character language model: training through rnnexp's Lightning path against a
plain PyTorch truncated-BPTT loop, and sampling (generation) one character at a time.

Both training paths use the same ``CharRNN``, the same ``CharCorpus`` streams (a synthetic word corpus written
to a temporary file and read by the real datamodule), AdamW and gradient clipping, and carry the detached hidden
state from batch to batch. The Lightning path is what ``rnnexp.training.build_experiment`` composes for
``train()`` from the ``datamodule=text`` config: its ``CharLanguageModel`` (metrics, grad-norm logging, the
CSV logger, the non-finite-loss guard); checkpointing, early stopping, the progress bar and validation are
off, since they do not run per training step. The two paths alternate, repeat after repeat, so drift on a
shared machine hits both.

    python benchmarks/text_throughput.py --help
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig
from torch.nn import functional as F

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `python benchmarks/<script>.py` finds rnnexp and benchmarks.harness

from benchmarks.harness import (  # noqa: E402
    CellResult,
    Stopwatch,
    Timing,
    argument_parser,
    build_plain,
    check_counts,
    markdown_table,
    prepare_run,
    repeat_lines,
    run_alternating,
    step_only_overrides,
    time_fit,
)
from rnnexp.models.recurrent import repackage_hidden  # noqa: E402
from rnnexp.models.sampling import sample  # noqa: E402
from rnnexp.training import compose_config, instantiate  # noqa: E402

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


def time_plain(cfg: DictConfig, shape: Shape, warmup: int, steps: int, device: torch.device) -> Timing:
    """The hand-written TBPTT loop of the word_language_model example, with AdamW and clipping."""
    pl.seed_everything(cfg.seed, verbose=False)
    net, datamodule = build_plain(cfg, device)  # CharRNN, CharCorpus
    net.train()
    optimizer = instantiate(cfg.optimizer)(params=net.parameters())
    clip = cfg.trainer.gradient_clip_val
    batches = datamodule.dataset("train")
    hidden = None
    stopwatch = Stopwatch(device)
    for step in range(warmup + steps):
        if step == warmup:
            stopwatch.start()
        inputs, targets = (t.to(device) for t in batches[step])  # (streams, time) ids each
        logits, hidden = net(inputs, hidden)
        hidden = repackage_hidden(hidden)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), clip)
        optimizer.step()
    return stopwatch.stop(steps, shape.chars_per_step * steps)


def time_generate(cfg: DictConfig, length: int, device: torch.device) -> Timing:
    """``rnnexp.models.sampling.sample``: one prompt, one character per forward step (as the CLI runs it)."""
    net, _ = build_plain(cfg, device)
    sample(net, "the ", 20, seed=0)  # warm-up: kernels, allocator
    stopwatch = Stopwatch(device)
    stopwatch.start()
    text = sample(net, "the ", length, temperature=0.8, seed=1)  # ends with a device-to-host copy
    timing = stopwatch.stop(length, length)
    if len(text) != length:
        raise RuntimeError(f"sample returned {len(text)} characters, expected {length}")
    return timing


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
    check_counts(warmup, steps, repeats)
    torch_device = torch.device(device)
    # Enough text for warmup + steps batches of every stream in the 90% training slice.
    characters = int(shape.chars_per_step * (warmup + steps + 2) / 0.9) + 1000
    corpus = write_corpus(work_dir / "corpus.txt", characters)
    timed = {"warmup": warmup, "steps": steps, "device": torch_device}
    paths = {
        "lightning": partial(time_fit, items_per_step=shape.chars_per_step, **timed),
        "plain": partial(time_plain, shape=shape, **timed),
    }
    generate = {"generate": partial(time_generate, length=gen_length, device=torch_device)}

    def config_for(cell: str, repeat: int) -> DictConfig:
        return bench_config(cell, shape, corpus, work_dir / f"run-{cell}", warmup + steps, device)

    return run_alternating(cells, repeats, config_for, paths, after=generate)


def format_table(results: list[CellResult], shape: Shape) -> str:
    """Median chars/s per path, the paired Lightning / plain ratio and generation chars/s."""
    header = ["cell", "plain chars/s", "lightning chars/s", "paired ratio", "generate chars/s"]
    rows = [
        [r.cell, *(f"{r.per_s(path):.0f}" for path in ("plain", "lightning")), f"{r.paired_ratio():.3f}",
         f"{r.per_s('generate'):.0f}"]
        for r in results
    ]  # fmt: skip
    caption = (
        f"batch {shape.batch_size} streams x seq_len {shape.seq_len}, embedding {shape.embedding_dim}, "
        f"{shape.num_layers} layer(s) x hidden {shape.hidden_size}; generation: batch 1, 1 char per step; "
        f"median of {len(results[0].timings['plain'])} repeats"
    )
    return markdown_table(caption, header, rows)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argument_parser(__doc__, steps=30, repeats=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--hidden-size", type=int, default=512)
    parser.add_argument("--num-layers", type=int, default=2)
    parser.add_argument("--embedding-dim", type=int, default=128)
    parser.add_argument(
        "--gen-length", type=int, default=500, help="characters sampled per generation timing"
    )
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
        print("\n".join(repeat_lines(results, "chars")))
    print(format_table(results, shape))


if __name__ == "__main__":
    main()
