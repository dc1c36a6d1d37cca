"""Timing helpers shared by the benchmarks: best-of-N ns per statement, and a plain table printer."""

from __future__ import annotations

import contextlib
import os
import timeit
from collections.abc import Iterator, Sequence
from typing import Any


def ns_per_op(stmt: str, env: dict[str, Any], number: int = 200_000, repeats: int = 7) -> float:
    """Best of `repeats` timeit runs of `stmt` (a bare call, no wrapper), in ns per execution."""
    return min(timeit.repeat(stmt, globals=env, number=number, repeat=repeats)) / number * 1e9


def ns_per_op_interleaved(stmts: Sequence[str], env: dict[str, Any], number: int = 200_000,
                          rounds: int = 9) -> list[float]:
    """Best ns per execution of each statement, measured in interleaved rounds so that a change in
    machine load during the run hits every statement alike."""
    best = [float("inf")] * len(stmts)
    timers = [timeit.Timer(stmt, globals=env) for stmt in stmts]
    for _ in range(rounds):
        for k, timer in enumerate(timers):
            best[k] = min(best[k], timer.timeit(number) / number * 1e9)
    return best


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
        if n == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")


@contextlib.contextmanager
def cpus_apart(pid: int) -> Iterator[str]:
    """This process on one CPU and process `pid` (every thread it has and makes) on the others, restored on
    exit; yields what was done, for the report. A polling driver spins on its CPU; left to the scheduler, the
    device's threads are now and then woken on that same CPU and wait a time slice (~1 ms) behind the spin,
    which made QEMU's QD1 rate jump between 0.6k and 20k req/s from one run to the next on the 2-CPU VM."""
    if not hasattr(os, "sched_setaffinity"):
        yield "not pinned (no sched_setaffinity)"
        return
    mine = os.sched_getaffinity(0)
    if len(mine) < 2:
        yield "not pinned (one CPU)"
        return
    driver_cpu = min(mine)
    others = mine - {driver_cpu}
    os.sched_setaffinity(0, {driver_cpu})
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            os.sched_setaffinity(int(task), others)
        yield f"driver on CPU {driver_cpu}, device process {pid} on CPUs {sorted(others)}"
    finally:
        os.sched_setaffinity(0, mine)
