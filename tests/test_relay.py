"""The relay of ``benchmarks.harness``: paths on their own threads, one step each in turn. The fake paths here
sleep instead of training, so what is checked is the relay's bookkeeping (turns, the steps timed, the rounds
left out, failures), not the speed of this machine; each bound on time is several times looser than the
sleeps need."""

import math
import os
import platform
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
import torch

from benchmarks import train_step_overhead
from benchmarks.harness import Relay, Timing

CPU = torch.device("cpu")
NO_OUTLIERS = math.inf  # tests not about outliers keep every round, whatever a busy machine does to a sleep


def run_in_time(relay: Relay, measures: Mapping[str, Callable[[], object]], limit_s: float = 10.0):
    """``relay.run(measures)`` on a thread of its own, so that a relay that deadlocks fails the test in
    seconds instead of hanging it."""
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["timings"] = relay.run(measures)
        except BaseException as error:  # re-raised below, in the test's thread
            outcome["error"] = error

    thread = threading.Thread(target=target, name="relay-test", daemon=True)
    thread.start()
    thread.join(limit_s)
    assert not thread.is_alive(), f"the relay was still running after {limit_s} s: a deadlock"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["timings"]


def sleeper(relay: Relay, path: str, steps: int, seconds: Callable[[int], float]) -> Callable[[], None]:
    """A fake training loop: ``steps`` steps, step i sleeping ``seconds(i)``, each ending with the clock."""

    def loop() -> None:
        clock = relay.clock(path)
        for i in range(steps):
            time.sleep(seconds(i))
            clock.step_done()

    return loop


def test_steps_never_overlap_and_go_round_in_the_relay_order():
    """Only the path holding the baton runs: no step starts while another is running, and the paths take
    turns in ``order`` (not in the order of the measures given to ``run``)."""
    order = ["c", "a", "b"]
    relay = Relay(order, warmup=1, steps=4, items_per_step=1, device=CPU, outlier=NO_OUTLIERS)
    running: list[str] = []  # the paths inside a step right now
    sequence: list[str] = []

    def loop(path: str) -> Callable[[], None]:
        def steps() -> None:
            clock = relay.clock(path)
            for _ in range(5):
                running.append(path)
                sequence.append(path)
                time.sleep(0.001)  # releases the GIL: an overlapping path would run now
                assert running == [path], f"{path}'s step overlapped {running}"
                running.remove(path)
                clock.step_done()

        return steps

    timings = run_in_time(relay, {path: loop(path) for path in sorted(order)})
    assert sequence == order * 5
    assert set(timings) == set(order)


def test_a_path_is_timed_over_its_own_steps_after_the_warmup():
    """A path's time is the sum of its own timed steps: neither its waits for the baton (the other path's
    steps) nor the slow warm-up steps count, so a 5 ms path and a 15 ms path time about 1 : 3. (Steps of a
    few ms: a 20 ms preemption, which this machine's core shows now and then, moves the ratio little.)"""
    warmup, steps, items_per_step = 2, 10, 5
    relay = Relay(["fast", "slow"], warmup, steps, items_per_step, CPU, outlier=NO_OUTLIERS)

    def seconds(step_s: float) -> Callable[[int], float]:
        return lambda i: 0.1 if i < warmup else step_s  # warm-up steps: 100 ms, like a first compile

    timings = run_in_time(
        relay,
        {
            "fast": sleeper(relay, "fast", warmup + steps, seconds(0.005)),
            "slow": sleeper(relay, "slow", warmup + steps, seconds(0.015)),
        },
    )
    fast, slow = timings["fast"], timings["slow"]
    for timing in (fast, slow):
        assert isinstance(timing, Timing)
        assert (timing.steps, timing.items, timing.left_out) == (steps, steps * items_per_step, 0)
    assert fast.wall_s >= steps * 0.005 and slow.wall_s >= steps * 0.015  # a sleep lasts at least that
    assert fast.wall_s < warmup * 0.1  # the warm-up steps alone would take longer: they are not timed
    assert 2 <= slow.wall_s / fast.wall_s <= 4.5  # the waits (the other's steps) would pull this to 1


def test_a_path_s_cpu_time_is_that_of_its_own_steps():
    """``cpu_s`` is CPU time spent in the path's steps: a path that spins has most of its 15 ms, one that
    sleeps next to it almost none. (Not "about its wall time": a preempted spin's wall time runs on.)"""
    relay = Relay(["spin", "sleep"], warmup=1, steps=5, items_per_step=1, device=CPU, outlier=NO_OUTLIERS)

    def spin() -> None:
        clock = relay.clock("spin")
        for _ in range(6):
            end = time.perf_counter() + 0.003
            while time.perf_counter() < end:
                pass
            clock.step_done()

    timings = run_in_time(relay, {"spin": spin, "sleep": sleeper(relay, "sleep", 6, lambda i: 0.003)})
    assert timings["spin"].cpu_s > 0.3 * 5 * 0.003
    assert timings["sleep"].cpu_s < 0.25 * timings["sleep"].wall_s


def test_a_path_that_stops_early_hands_the_baton_on_and_is_named():
    """A path with fewer steps than warm-up + timed ones ends its turn for good: the others go on in turn
    without it (no deadlock), and ``run`` then fails naming the short path and how many steps it timed."""
    relay = Relay(["a", "b", "c"], warmup=1, steps=3, items_per_step=1, device=CPU, outlier=NO_OUTLIERS)
    sequence: list[str] = []

    def loop(path: str, steps: int) -> Callable[[], None]:
        def run() -> None:
            clock = relay.clock(path)
            for _ in range(steps):
                sequence.append(path)
                clock.step_done()

        return run

    with pytest.raises(RuntimeError, match=r"fewer than 3 steps: \{'b': 1\}"):
        run_in_time(relay, {"a": loop("a", 4), "b": loop("b", 2), "c": loop("c", 4)})
    assert sequence == ["a", "b", "c", "a", "b", "c", "a", "c", "a", "c"]


@pytest.mark.parametrize(("failing", "at_step"), [("a", 0), ("b", 2), ("c", 3)])
def test_a_failing_path_stops_only_itself_and_run_raises_its_error(failing, at_step):
    """A path that raises (before its first step, midway, at its last) ends its turns; the others still
    train every step, then ``run`` raises naming the path, chained from the path's own error."""
    order, total = ["a", "b", "c"], 4
    relay = Relay(order, warmup=1, steps=3, items_per_step=1, device=CPU, outlier=NO_OUTLIERS)
    done = dict.fromkeys(order, 0)

    def loop(path: str) -> Callable[[], None]:
        def run() -> None:
            clock = relay.clock(path)
            for i in range(total):
                if path == failing and i == at_step:
                    raise ValueError(f"{path} broke at step {i}")
                time.sleep(0.001)
                done[path] += 1
                clock.step_done()

        return run

    with pytest.raises(RuntimeError, match=f"the '{failing}' path failed") as raised:
        run_in_time(relay, {path: loop(path) for path in order})
    assert isinstance(raised.value.__cause__, ValueError)
    assert str(raised.value.__cause__) == f"{failing} broke at step {at_step}"
    assert done == {path: at_step if path == failing else total for path in order}


def test_a_round_with_one_slow_step_is_left_out_of_every_path():
    """One step far slower than its path's median (a preemption, a page fault) drops that round from every
    path, so the paths stay paired step for step and the spike counts nowhere. (10 ms steps: a 20 ms
    preemption stays under the 3x limit, so only the 250 ms spike is left out.)"""
    warmup, steps, items_per_step = 1, 5, 2
    relay = Relay(["a", "b"], warmup, steps, items_per_step, CPU)  # the default outlier: 3x the median
    spike = warmup + 2  # b's third timed step

    timings = run_in_time(
        relay,
        {
            "a": sleeper(relay, "a", warmup + steps, lambda i: 0.01),
            "b": sleeper(relay, "b", warmup + steps, lambda i: 0.25 if i == spike else 0.01),
        },
    )
    kept = steps - 1
    for path, timing in timings.items():
        assert (timing.steps, timing.items, timing.left_out) == (kept, kept * items_per_step, 1), path
        assert kept * 0.01 <= timing.wall_s < 0.25, path  # the 250 ms spike is not in b's time


def test_a_relay_that_leaves_out_most_rounds_says_the_machine_was_too_busy():
    """Three paths, each slow in a different round, leave out three of four rounds: instead of a timing over
    one step (or none, and a division by zero later) the relay says why and what to do."""
    warmup, steps = 1, 4
    relay = Relay(["a", "b", "c"], warmup, steps, items_per_step=1, device=CPU)
    slow_round = {"a": warmup, "b": warmup + 1, "c": warmup + 2}

    def slow_once(path: str) -> Callable[[int], float]:
        return lambda i: 0.25 if i == slow_round[path] else 0.01

    measures = {path: sleeper(relay, path, warmup + steps, slow_once(path)) for path in slow_round}
    with pytest.raises(RuntimeError, match=r"only 1 of 4 rounds .* too busy .*taskset -c"):
        run_in_time(relay, measures)


@pytest.mark.parametrize(("warmup", "steps"), [(0, 5), (1, 0)])
def test_a_relay_without_a_warmup_or_timed_steps_is_refused(warmup, steps):
    with pytest.raises(ValueError, match=f"warmup={warmup}, steps={steps}"):
        Relay(["a"], warmup, steps, items_per_step=1, device=CPU)


def test_the_plain_loop_steps_with_a_relay_clock_and_leaves_the_timing_to_the_relay(tmp_path):
    """``time_plain`` with a relay's clock hands the baton on after every optimizer step and returns
    nothing: the relay times its steps alongside the other path's."""
    warmup, steps = 1, 2
    cfg = train_step_overhead.bench_config(
        "regressor", "gru", 4, tmp_path / "data", tmp_path / "run", warmup + steps, "cpu", 4
    )
    relay = Relay(["plain", "other"], warmup, steps, items_per_step=4, device=CPU, outlier=NO_OUTLIERS)
    sequence: list[str] = []
    clock = relay.clock("plain")

    class Recorded:
        """The plain loop's clock, recording each step it ends."""

        def step_done(self) -> None:
            sequence.append("plain")
            clock.step_done()

    def other() -> None:
        other_clock = relay.clock("other")
        for _ in range(warmup + steps):
            sequence.append("other")
            other_clock.step_done()

    returned: list[object] = []
    timings = run_in_time(
        relay,
        {
            "plain": lambda: returned.append(
                train_step_overhead.time_plain(cfg, warmup, steps, CPU, clock=Recorded())
            ),
            "other": other,
        },
        limit_s=60,
    )
    assert returned == [None]
    assert sequence == ["plain", "other"] * (warmup + steps)
    assert (timings["plain"].steps, timings["plain"].items) == (steps, steps * 4)
    assert timings["plain"].wall_s > 0 and timings["plain"].cpu_s > 0


HEAPS_AFTER_A_THREAD_ALLOCATES = """
import ctypes, ctypes.util, sys, threading
share = sys.argv[1] == "share"
if share:
    from benchmarks.harness import share_one_malloc_arena
    assert share_one_malloc_arena()
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype = libc.fopen.restype = ctypes.c_void_p
worker = threading.Thread(target=lambda: [libc.malloc(64 * 1024) for _ in range(50)])
worker.start()
worker.join()
report = ctypes.c_void_p(libc.fopen(sys.argv[2].encode(), b"w"))
libc.malloc_info(0, report)
libc.fclose(report)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's allocator and malloc_info")
@pytest.mark.parametrize(("mode", "heaps"), [("separate", 2), ("share", 1)])
def test_the_relay_threads_allocate_from_glibcs_main_heap(tmp_path, mode, heaps):
    """A thread started after ``share_one_malloc_arena`` allocates from the main heap (malloc_info lists one
    heap), where by default glibc gives it a heap of its own (two): the relay's paths then allocate as a
    single-threaded loop does. In a fresh process: the setting lasts for the process's life."""
    report = tmp_path / "malloc_info.xml"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    env.pop("MALLOC_ARENA_MAX", None)
    subprocess.run(
        [sys.executable, "-c", HEAPS_AFTER_A_THREAD_ALLOCATES, mode, str(report)], check=True, env=env
    )
    assert report.read_text().count("<heap nr=") == heaps
