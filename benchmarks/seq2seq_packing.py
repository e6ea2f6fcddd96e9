"""What packing saves: the char seq2seq encoder over packed sequences against the same encoder run over the
padded batch (every sequence as long as the longest), forward + backward, on a batch of mixed lengths.

    python benchmarks/seq2seq_packing.py --cells gru lstm --batch-size 128 --max-length 60 --threads 1
    python benchmarks/seq2seq_packing.py --device cuda      # cuDNN's packed kernels

Source lengths are drawn uniformly from 1..max_length (TSV files of sentences vary like this; the addition
task's 3..7 characters vary little). Medians of alternating repeats are reported.
"""

from __future__ import annotations

import argparse
import statistics
import time
from functools import partial

import torch
from torch.nn.utils.rnn import pack_padded_sequence

from rnnexp.data.vocab import PairVocabulary
from rnnexp.models.char_seq2seq import CharSeq2Seq
from rnnexp.models.recurrent import RecurrentSpec


def encode_padded(net: CharSeq2Seq, source: torch.Tensor) -> torch.Tensor:
    """The encoder over every position, padding included (what packing avoids)."""
    _, hidden = net.encoder(net.decoder.embedding(source))
    return hidden[0] if isinstance(hidden, tuple) else hidden


def encode_packed(net: CharSeq2Seq, source: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    packed = pack_padded_sequence(
        net.decoder.embedding(source), lengths, batch_first=True, enforce_sorted=False
    )
    _, hidden = net.encoder(packed)
    return hidden[0] if isinstance(hidden, tuple) else hidden


def time_once(step, repeats: int) -> float:
    """Seconds per forward + backward pass; waits for the device before reading the clock."""
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    sync()
    start = time.perf_counter()
    for _ in range(repeats):
        step().sum().backward()
    sync()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", nargs="+", default=["rnn", "gru", "lstm"])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--max-length", type=int, default=60)
    parser.add_argument("--hidden-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10, help="forward+backward passes per repeat")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="cpu | cuda")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    vocab = PairVocabulary("abcdefghijklmnopqrstuvwxyz ")
    lengths = torch.randint(1, args.max_length + 1, (args.batch_size,), generator=generator)
    source = torch.randint(4, len(vocab), (args.batch_size, int(lengths.max())), generator=generator)
    source[torch.arange(source.shape[1]) >= lengths[:, None]] = vocab.pad_id
    source = source.to(args.device)  # lengths stay on the CPU, where pack_padded_sequence wants them
    useful = lengths.sum().item() / lengths.numel() / source.shape[1]
    print(f"batch {args.batch_size}, lengths 1..{args.max_length} (mean {lengths.float().mean():.1f}), "
          f"hidden {args.hidden_size}, {args.threads} thread(s); useful share of the padded steps: {useful:.0%}")  # fmt: skip
    print("| cell | padded ms/step | packed ms/step | packed / padded |")
    print("|---|---:|---:|---:|")
    for cell in args.cells:
        net = CharSeq2Seq(RecurrentSpec(cell=cell, hidden_size=args.hidden_size), vocab, 32, 10).to(
            args.device
        )
        padded_times, packed_times = [], []
        run_padded, run_packed = (
            partial(encode_padded, net, source),
            partial(encode_packed, net, source, lengths),
        )
        time_once(run_packed, 2)  # warm-up
        time_once(run_padded, 2)
        for _ in range(args.repeats):
            padded_times.append(time_once(run_padded, args.steps))
            packed_times.append(time_once(run_packed, args.steps))
        padded, packed = statistics.median(padded_times) * 1e3, statistics.median(packed_times) * 1e3
        print(f"| {cell} | {padded:.1f} | {packed:.1f} | {packed / padded:.2f} |")


if __name__ == "__main__":
    main()
