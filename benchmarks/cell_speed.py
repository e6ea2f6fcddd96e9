"""What a generic cell costs: one training step (forward, MSE loss, backward, Adam step) of a one-layer
recurrent net over ``(batch, T, features)``, for every built-in cell against torch's fused ``nn.GRU`` and
``nn.LSTM`` of the same width, at several sequence lengths.

    python benchmarks/cell_speed.py --threads 1                      # CPU, T = 64, 256, 1024
    python benchmarks/cell_speed.py --device cuda --batch-size 256   # a GPU

Paths per cell: ``layer`` is what training runs (``CellLayer``: the cell's whole-sequence method when it has
one: a log-space parallel scan for minGRU/minLSTM, a loop with every step's input projection done at once for
the others); ``steps`` is the same cell stepped one ``forward(x_t, state)`` at a time (what a user's cell
without ``sequence`` gets, and what decoding runs); ``compiled`` (``--compile``) is ``steps`` with the cell's
step under ``torch.compile``. Repeats alternate the paths; the table gives the median milliseconds per step
and the ratio to fused ``nn.GRU`` at the same T (CPU time per step on a CPU, so a loaded machine's
waiting is not counted).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from rnnexp.models.cell_layer import CellLayer
from rnnexp.models.recurrent import RecurrentSpec, build_recurrent_layer

CELLS = ("gru", "lstm", "reference_rnn", "reference_gru", "reference_lstm", "indrnn", "mingru", "minlstm")


class Stepped(nn.Module):
    """A cell with its whole-sequence method hidden, so ``CellLayer`` steps it."""

    def __init__(self, cell: nn.Module, step: Callable | None = None):
        super().__init__()
        self.cell, self.step = cell, (cell if step is None else step)

    def initial_state(self, batch_size: int, device: torch.device, dtype: torch.dtype):
        if hasattr(self.cell, "initial_state"):
            return self.cell.initial_state(batch_size, device, dtype)
        return torch.zeros(batch_size, self.cell.hidden_size, device=device, dtype=dtype)

    def forward(self, x_t, state):
        return self.step(x_t, state)


def build(cell: str, path: str, input_size: int, hidden: int) -> nn.Module:
    layer = build_recurrent_layer(RecurrentSpec(cell=cell, hidden_size=hidden), input_size)
    if path != "layer":
        assert isinstance(layer, CellLayer)
        wrap = (lambda c: Stepped(c, torch.compile(c, dynamic=False))) if path == "compiled" else Stepped
        layer.cells = nn.ModuleList(wrap(c) for c in layer.cells)
    return layer


def time_steps(layer: nn.Module, head: nn.Linear, x: torch.Tensor, y: torch.Tensor, steps: int) -> float:
    """Milliseconds per training step, after one untimed warm-up step: this process's CPU time on a CPU
    (other processes on a shared machine do not inflate it; one thread, so it is the step's cost), wall
    time on a GPU."""
    clock = time.perf_counter if x.is_cuda else time.process_time
    optimizer = torch.optim.Adam([*layer.parameters(), *head.parameters()], lr=1e-3)
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        outputs, _ = layer(x)
        nn.functional.mse_loss(head(outputs), y).backward()
        optimizer.step()

    step()
    sync()
    start = clock()
    for _ in range(steps):
        step()
    sync()
    return (clock() - start) / steps * 1000


def measure(args: argparse.Namespace) -> dict[tuple[str, str, int], list[float]]:
    device = torch.device(args.device)
    paths = ["layer", "steps"] + (["compiled"] if args.compile else [])
    runs: dict[tuple[str, str, int], list[float]] = {}
    for length in args.lengths:
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(args.batch_size, length, args.input_size, generator=generator).to(device)
        y = torch.randn(args.batch_size, length, 1, generator=generator).to(device)
        models = {}
        for cell in args.cells:
            for path in paths if cell not in ("gru", "lstm", "rnn") else ["layer"]:
                torch.manual_seed(0)
                models[cell, path] = (
                    build(cell, path, args.input_size, args.hidden_size).to(device),
                    nn.Linear(args.hidden_size, 1).to(device),
                )
        steps = max(1, args.steps * 64 // length)
        for _ in range(args.repeats):  # alternate: load changes hit every path alike
            for (cell, path), (layer, head) in models.items():
                runs.setdefault((cell, path, length), []).append(time_steps(layer, head, x, y, steps))
        print(table(runs, [length]), flush=True)  # each length as it is done: a long run shows progress
    return runs


def table(runs: dict[tuple[str, str, int], list[float]], lengths: list[int]) -> str:
    median = {key: statistics.median(values) for key, values in runs.items()}
    rows = sorted({(cell, path) for cell, path, _ in runs}, key=lambda k: (CELLS.index(k[0]), k[1]))
    header = "| cell | path | " + " | ".join(f"T={t} ms (× gru)" for t in lengths) + " |"
    lines = [header, "|" + "---|" * (2 + len(lengths))]
    for cell, path in rows:
        cells = [
            f"{median[cell, path, t]:.1f} ({median[cell, path, t] / median['gru', 'layer', t]:.1f}×)"
            for t in lengths
        ]
        lines.append(f"| {cell} | {path} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", nargs="+", default=list(CELLS), choices=CELLS)
    parser.add_argument("--lengths", nargs="+", type=int, default=[64, 256, 1024])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--input-size", type=int, default=8)
    parser.add_argument("--hidden-size", type=int, default=64)
    parser.add_argument(
        "--steps", type=int, default=4, help="training steps timed at T=64 (fewer at longer T)"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--compile", action="store_true", help="also time the step under torch.compile")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]
    runs = measure(args)
    text = (
        f"{args.device}, {args.threads} thread(s), batch {args.batch_size}, input {args.input_size}, hidden "
        f"{args.hidden_size}, one layer; load average {load:.1f} before, {os.getloadavg()[0]:.1f} after\n\n"
        + table(runs, args.lengths)
    )
    print(text)
    return text


if __name__ == "__main__":
    main()
