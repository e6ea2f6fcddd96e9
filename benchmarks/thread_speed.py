"""Speed of one training step with 1 and 2 torch threads, alternating in one process (paired repeats), on
the shapes of the defaults: what `num_threads: 1` (conf/train.yaml) costs against 2 threads.

    python -m benchmarks.thread_speed --repeats 7 --steps 20

Each repeat times ``--steps`` forward + backward + AdamW steps of a ``RecurrentNet`` (sine shapes: batch 64,
64 steps, 1 feature, hidden 128, many-to-many; and MNIST-row shapes: batch 128, 28 steps of 28 features,
many-to-one) at 1 thread, then at 2 (the order flips every repeat). Reported per shape and cell: the median
wall ms/step at each count, the median of the paired ratios (2 threads / 1 thread; below 1: 2 threads faster)
and the same ratio of process CPU time (how much more CPU 2 threads burn for that speed). State the load
(``uptime``) beside the numbers: on a shared machine a second thread waits for a busy core.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from rnnexp.models.recurrent import RecurrentNet, RecurrentSpec

SHAPES = {  # name: (batch, time, features, outputs, per_step)
    "sine": (64, 64, 1, 1, True),
    "mnist_rows": (128, 28, 28, 10, False),
}


def time_steps(
    net: RecurrentNet, batch: tuple[torch.Tensor, torch.Tensor], steps: int, per_step: bool
) -> tuple[float, float]:
    """Wall and process-CPU seconds per training step."""
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3)
    inputs, targets = batch
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        optimizer.zero_grad()
        out = net(inputs)
        loss = (
            torch.nn.functional.mse_loss(out, targets)
            if per_step
            else torch.nn.functional.cross_entropy(out, targets)
        )
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - wall) / steps, (time.process_time() - cpu) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--cells", nargs="+", default=["lstm", "gru"])
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, load {os.getloadavg()}")
    print(
        "| shape | cell | 1 thread ms/step | 2 threads ms/step | paired wall ratio 2/1 | paired CPU ratio 2/1 |"
    )
    print("|---|---|---:|---:|---:|---:|")
    for shape, (batch, steps_in_time, features, outputs, per_step) in SHAPES.items():
        for cell in args.cells:
            torch.manual_seed(0)
            spec = RecurrentSpec(cell=cell, hidden_size=128)
            net = RecurrentNet(spec, input_size=features, output_size=outputs, per_step=per_step)
            inputs = torch.randn(batch, steps_in_time, features)
            targets = (
                torch.randn(batch, steps_in_time, outputs)
                if per_step
                else torch.randint(0, outputs, (batch,))
            )
            times: dict[int, list[tuple[float, float]]] = {1: [], 2: []}
            for repeat in range(args.repeats + 1):
                order = (1, 2) if repeat % 2 else (2, 1)
                for threads in order:
                    torch.set_num_threads(threads)
                    measured = time_steps(net, (inputs, targets), args.steps, per_step)
                    if repeat:  # the first repeat warms up
                        times[threads].append(measured)
            wall = [two[0] / one[0] for one, two in zip(times[1], times[2], strict=True)]
            cpu = [two[1] / one[1] for one, two in zip(times[1], times[2], strict=True)]
            one_ms = statistics.median(t[0] for t in times[1]) * 1e3
            two_ms = statistics.median(t[0] for t in times[2]) * 1e3
            print(
                f"| {shape} | {cell} | {one_ms:.1f} | {two_ms:.1f} | {statistics.median(wall):.2f} | {statistics.median(cpu):.2f} |"
            )
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
