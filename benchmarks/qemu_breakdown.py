"""Where a QEMU virtio-blk request's time goes, for the project's driver and the minimal polling driver.

Random 4 KiB reads, the two drivers in adjacent rounds on one QEMU (as bench_block.py runs them). Every
qtest exchange is timed (request sent to reply parsed: that includes what QEMU does before it answers,
which under qtest is the whole device work of a doorbell on a busy machine); the rest of each request's
time is the driver's own Python (and any polling for the used ring).

    .venv/bin/python benchmarks/qemu_breakdown.py [--seconds 0.4] [--rounds 4]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import bench_block as bb  # noqa: E402
from qemu_baseline_driver import BaselineDriver, make_image  # noqa: E402
from qemu_baseline_driver import run as baseline_run  # noqa: E402

from drivers.block.protocol import BlockCommand  # noqa: E402
from hwsim.integration.block_targets import virtio_blk_board  # noqa: E402
from hwsim.qemu import QemuSpace  # noqa: E402


class ExchangeClock:
    """Counts and times the qtest client's exchanges (one request line, one reply)."""

    def __init__(self, client: Any) -> None:
        self.count = 0
        self.seconds = 0.0
        inner: Callable[[bytes], bytes] = client._exchange
        clock = time.perf_counter

        def timed(request: bytes) -> bytes:
            start = clock()
            try:
                return inner(request)
            finally:
                self.count += 1
                self.seconds += clock() - start

        client._exchange = timed

    def reset(self) -> None:
        self.count, self.seconds = 0, 0.0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.4, help="per round")
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args(argv)
    rows: dict[tuple[str, int], list[tuple[float, float, float]]] = {}
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory(prefix="mmiotk-breakdown-", dir=shm) as tmp:
        image = os.path.join(tmp, "disk.img")
        make_image(image, bb.DISK // bb.IO)
        with QemuSpace(image=image, ram_size=128 * bb.MiB) as space:
            clock = ExchangeClock(space.qtest)

            def ours(depth: int) -> tuple[int, float]:
                bus, blk = bb.bind(virtio_blk_board(space, "bench"), space, space.irq_factory, spin=1.0)
                try:
                    vmos = bb.dma_vmos(blk, 16)
                    clock.reset()
                    return bb.measure(blk, BlockCommand.READ, depth, seconds=args.seconds, vmos=vmos, poll=blk.poll)
                finally:
                    bus.close()

            def baseline(depth: int) -> tuple[int, float]:
                driver = BaselineDriver(space)
                clock.reset()
                return baseline_run(driver, depth, args.seconds)

            for r in range(args.rounds):
                for depth in (1, 16):
                    for name, run in (("ours", ours), ("baseline", baseline))[::1 if r % 2 == 0 else -1]:
                        n, elapsed = run(depth)
                        rows.setdefault((name, depth), []).append((elapsed / n, clock.seconds / n, clock.count / n))
    print("QEMU virtio-blk random 4 KiB reads: per request, median over rounds (us; qtest lines)")
    print(f"{'driver':9} {'QD':>3} {'total':>7} {'in qtest':>9} {'the rest':>9} {'qtest lines':>12}")
    for depth in (1, 16):
        for name in ("ours", "baseline"):
            got = rows[(name, depth)]
            total, qtest, rest, lines = (statistics.median(f(g) for g in got) for f in (
                lambda g: g[0] * 1e6, lambda g: g[1] * 1e6, lambda g: (g[0] - g[1]) * 1e6, lambda g: g[2]))
            print(f"{name:9} {depth:>3} {total:7.1f} {qtest:9.1f} {rest:9.1f} {lines:12.3f}")


if __name__ == "__main__":
    main()
