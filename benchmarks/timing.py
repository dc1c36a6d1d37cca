"""Timing helpers shared by the benchmarks: best-of-N ns per statement, and a plain table printer."""

from __future__ import annotations

import timeit
from collections.abc import Sequence
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
