"""4 KiB random reads and writes through the block stack: requests/s and MiB/s per target, QD1 and QD16.

Run: .venv/bin/python benchmarks/bench_block.py [--seconds 1.5] [--rounds 3] [--rtl-requests 64]

The same VirtioBlk driver, bound through the platform bus with completions="poll" and DMA-able buffers
(zero copy), runs against the behavioural model, QEMU's virtio-blk-device and the RTL controller under
Icarus and Verilator (few requests there: a simulator does thousands of bus transactions per second).
The RAM-disk is the in-process ceiling: the protocol without any device. On QEMU the minimal hand-written
polling driver (benchmarks/qemu_baseline_driver.py) reads the same image in the same QEMU, rounds
interleaved with ours; each side keeps its best round, and the ratio is printed. On QEMU the driver's process
runs on one CPU and QEMU on the others (`timing.cpus_apart`), and the qtest client polls for replies
(`reply_spin`): both drivers poll, and each gets the same machine. `--targets ...,qemu-pci`
adds QEMU's virtio-blk-pci through the virtio-pci transport (not in the default set; compare it with the
`qemu` rows of the same run).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from timing import cpus_apart  # noqa: E402

from drivers.block.protocol import BlockCommand, BlockDevice, BlockOp, BlockStatus, Vmo  # noqa: E402
from hwsim.integration.block_targets import virtio_blk_board  # noqa: E402

IO = 4096
MiB = 1 << 20
DISK = 64 * MiB
REPLY_SPIN = 1e-3  # s: both drivers on QEMU poll, so the qtest client polls for its replies too (QemuOptions)


def measure(dev: BlockDevice, command: BlockCommand, depth: int, *, seconds: float | None = None,
            count: int | None = None, vmos: list[Vmo], seed: int = 1,
            poll: Callable[[float], int] | None = None, stamp: bool = False) -> tuple[int, float]:
    """Random 4 KiB `command`s at queue `depth` for `seconds` or `count` requests: (completed, elapsed).

    Completions put their op back on a ready list; the loop re-queues everything ready in one `queue_many`
    (one doorbell) and polls when nothing is ready, so devices that complete inside queue() work too. `stamp`
    writes each 4 KiB block's index into its first 8 bytes (the baseline driver checks them)."""
    info = dev.query()
    per = IO // info.block_size
    slots = info.block_count // per
    rng = random.Random(seed)
    stamps = [memoryview(cast(Any, vmo.array)).cast("Q") for vmo in vmos[:depth]]
    ready: deque[BlockOp] = deque(BlockOp(command, per, 0, 0, vmos[k], cookie=stamps[k]) for k in range(depth))
    errors = 0
    ok = BlockStatus.OK

    def completion(status: BlockStatus, op: BlockOp) -> None:
        nonlocal errors
        if status is not ok:
            errors += 1
        ready.append(op)

    clock = time.perf_counter
    start = clock()
    stop = start + seconds if seconds is not None else float("inf")
    issued = 0
    limit = count if count is not None else 1 << 62
    randrange, popleft, queue_many = rng.randrange, ready.popleft, dev.queue_many
    while True:  # every op is either in flight or back on `ready`
        if ready and issued < limit and clock() < stop:
            k = min(len(ready), limit - issued)  # not what completes meanwhile
            issued += k
            if k == len(ready):
                ops = list(ready)
                ready.clear()
            else:
                ops = [popleft() for _ in range(k)]
            for op in ops:
                op.offset_dev = slot = randrange(slots) * per
                if stamp:
                    op.cookie[0] = slot // per
            queue_many(ops, completion)
        elif len(ready) < depth:
            if poll is None:
                raise RuntimeError("ops in flight on a device that cannot be polled")
            if not poll(10.0):
                raise TimeoutError(f"no completion within 10 s ({depth - len(ready)} in flight)")
        else:
            break
    elapsed = clock() - start
    if len(ready) != depth:
        raise RuntimeError(f"{len(ready) - depth} completions more than requests")
    done = issued  # all back on `ready`: every op issued has completed
    if errors:
        raise RuntimeError(f"{errors} of {done} requests failed")
    return done, elapsed


def dma_vmos(blk: Any, depth: int) -> list[Vmo]:
    bufs = [blk.pool.alloc(IO, align=IO) for _ in range(depth)]
    return [Vmo(b, b.dma_addr) for b in bufs]


def bind(board: dict[str, Any], space: Any, irq_factory: Any, memory: Any = None, **options: Any) -> tuple[Any, Any]:
    from drivers.bus.platform import PlatformBus
    from drivers.virtio.blk import VirtioBlkDriver

    bus = PlatformBus.from_board(board, space, memory=memory, irq_factory=irq_factory)
    bus.register_driver(VirtioBlkDriver, lambda: VirtioBlkDriver(completions="poll", **options))
    driver = bus.bind("blk0")
    assert isinstance(driver, VirtioBlkDriver)
    return bus, driver.block


Row = tuple[str, str, int, int, float]  # target, op, depth, requests, seconds


def bench_device(name: str, blk: Any, seconds: float, rounds: int, rows: list[Row]) -> None:
    vmos = dma_vmos(blk, 16)
    for command in (BlockCommand.READ, BlockCommand.WRITE):
        for depth in (1, 16):
            best = max((measure(blk, command, depth, seconds=seconds, vmos=vmos, poll=blk.poll)
                        for _ in range(rounds)), key=lambda r: r[0] / r[1])
            rows.append((name, command.name.lower(), depth, best[0], best[1]))
    assert blk.bytes_copied == 0, "the benchmark buffers are DMA-able: nothing may be bounced"


def bench_ramdisk(seconds: float, rounds: int, rows: list[Row]) -> None:
    import numpy as np

    from drivers.block.ramdisk import RamDisk

    disk = RamDisk(DISK, 512)
    vmos = [Vmo(np.zeros(IO, dtype=np.uint8)) for _ in range(16)]
    for command in (BlockCommand.READ, BlockCommand.WRITE):
        for depth in (1, 16):
            best = max((measure(disk, command, depth, seconds=seconds, vmos=vmos) for _ in range(rounds)),
                       key=lambda r: r[0] / r[1])
            rows.append(("ramdisk", command.name.lower(), depth, best[0], best[1]))


def bench_model(seconds: float, rounds: int, rows: list[Row]) -> None:
    from hwsim.models import ModelSpace, VirtioBlkModel

    with ModelSpace(VirtioBlkModel(size=DISK), ram_size=32 * MiB) as space:
        bus, blk = bind(virtio_blk_board(space, "bench"), space, space.interrupt)
        try:
            bench_device("model", blk, seconds, rounds, rows)
        finally:
            bus.close()


def bench_qemu(seconds: float, rounds: int, rows: list[Row], baseline: list[Row],
               ratios: dict[int, list[float]]) -> None:
    """Reads: ours and the baseline's in adjacent pairs (alternating which goes first) on an image in
    /dev/shm (no disk writeback competing). Each side keeps its best round; `ratios` gets each pair's
    ours/baseline, whose median is the comparison least disturbed by other load. Writes come last."""
    from qemu_baseline_driver import BaselineDriver, make_image
    from qemu_baseline_driver import run as baseline_run

    from hwsim.qemu import QemuSpace

    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory(prefix="mmiotk-bench-block-", dir=shm) as tmp:
        image = os.path.join(tmp, "disk.img")
        make_image(image, DISK // IO)
        with QemuSpace(image=image, ram_size=128 * MiB, reply_spin=REPLY_SPIN) as space, \
                cpus_apart(space.pid) as pinning:
            print(f"qemu: {pinning}")
            best: dict[tuple[str, str, int], tuple[int, float]] = {}

            def keep(key: tuple[str, str, int], result: tuple[int, float]) -> None:
                if key not in best or result[0] / result[1] > best[key][0] / best[key][1]:
                    best[key] = result

            def ours(command: BlockCommand, depth: int) -> tuple[int, float]:
                bus, blk = bind(virtio_blk_board(space, "bench"), space, space.irq_factory, spin=1.0)
                try:
                    result = measure(blk, command, depth, seconds=seconds, vmos=dma_vmos(blk, 16),
                                     poll=blk.poll, stamp=command is BlockCommand.WRITE)
                    assert blk.bytes_copied == 0
                    return result
                finally:
                    bus.close()

            for r in range(rounds):
                for depth in (1, 16):
                    pair = [lambda d=depth: ours(BlockCommand.READ, d),
                            lambda d=depth: baseline_run(BaselineDriver(space), d, seconds)]
                    if r % 2:
                        pair.reverse()  # neither side always goes first
                    a, b = (run() for run in pair)
                    mine, theirs = (b, a) if r % 2 else (a, b)
                    keep(("qemu", "read", depth), mine)
                    keep(("baseline", "read", depth), theirs)
                    ratios.setdefault(depth, []).append((mine[0] / mine[1]) / (theirs[0] / theirs[1]))
            for _ in range(rounds):
                for depth in (1, 16):
                    keep(("qemu", "write", depth), ours(BlockCommand.WRITE, depth))
            for (target, op, depth), (n, t) in sorted(best.items(), key=lambda kv: (kv[0][0] != "qemu", kv[0])):
                (baseline if target == "baseline" else rows).append((target, op, depth, n, t))


def bench_qemu_pci(seconds: float, rounds: int, rows: list[Row]) -> None:
    """virtio-blk-pci (MSI-X), its image in /dev/shm as the `qemu` rows' is."""
    from qemu_baseline_driver import make_image

    from hwsim.integration.block_targets import bound_virtio_blk_pci
    from hwsim.qemu import QemuSpace

    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory(prefix="mmiotk-bench-block-", dir=shm) as tmp:
        image = os.path.join(tmp, "disk.img")
        make_image(image, DISK // IO)
        with QemuSpace(transport="pci", image=image, ram_size=128 * MiB, reply_spin=REPLY_SPIN) as space, \
                cpus_apart(space.pid) as pinning, bound_virtio_blk_pci(space, spin=1.0) as blk:
            print(f"qemu-pci: {pinning}")
            bench_device("qemu-pci", blk, seconds, rounds, rows)


def bench_rtl(sim: str, requests: int, rows: list[Row]) -> None:
    from hwsim.cosim import runner
    from hwsim.vblk import simbuild

    with tempfile.TemporaryDirectory(prefix=f"mmiotk-bench-{sim}-") as tmp:
        out = Path(tmp) / "results.json"
        built = simbuild.build(sim)
        results = runner.run(built, "cocotb_bench_block", test_dir=Path(tmp), module_dir=HERE,
                             extra_env={"BENCH_BLOCK_OUT": str(out), "BENCH_BLOCK_REQUESTS": str(requests)})
        failed = [r for r in results.values() if not r.passed]
        if failed or not out.exists():
            raise RuntimeError(f"{sim}: benchmark simulation failed: {failed[0].message if failed else 'no output'}")
        for op, depth, n, t in json.loads(out.read_text()):
            rows.append((sim, op, depth, n, t))


def print_rows(rows: list[Row], baseline: list[Row], ratios: dict[int, list[float]]) -> None:
    from timing import print_table

    median = {depth: statistics.median(r) for depth, r in ratios.items()}
    ceiling = {(op, depth): n / t for target, op, depth, n, t in rows if target == "ramdisk"}
    table = []
    for target, op, depth, n, t in rows + baseline:
        rate = n / t
        vs_base = f"{median[depth]:.0%}" if target == "qemu" and op == "read" and depth in median else ""
        vs_ram = f"{100 * rate / ceiling[(op, depth)]:.2g}%" if (op, depth) in ceiling and target != "ramdisk" else ""
        table.append((target, op, depth, n, f"{t:.2f}", f"{rate:,.0f}", f"{rate * IO / MiB:.1f}", vs_base,
                      vs_ram))
    print_table(("target", "op", "QD", "requests", "s", "req/s", "MiB/s", "vs baseline*", "vs ramdisk"), table)
    print("* median over adjacent pairs of (ours / baseline driver), reads on the same QEMU; req/s: best round")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.4, help="per measurement")
    parser.add_argument("--rounds", type=int, default=9, help="each keeps its best round")
    parser.add_argument("--rtl-requests", type=int, default=64, help="requests per RTL measurement")
    parser.add_argument("--targets", default="ramdisk,model,qemu,icarus,verilator")
    args = parser.parse_args(argv)
    targets = args.targets.split(",")
    rows: list[Row] = []
    baseline: list[Row] = []
    ratios: dict[int, list[float]] = {}
    if "ramdisk" in targets:
        bench_ramdisk(args.seconds, args.rounds, rows)
    if "model" in targets:
        bench_model(args.seconds, args.rounds, rows)
    if "qemu" in targets:
        bench_qemu(args.seconds, args.rounds, rows, baseline, ratios)
    if "qemu-pci" in targets:
        bench_qemu_pci(args.seconds, args.rounds, rows)
    for sim in ("icarus", "verilator"):
        if sim in targets:
            bench_rtl(sim, args.rtl_requests, rows)
    print("4 KiB random I/O through the block protocol; VirtioBlk polled, zero-copy DMA buffers")
    print_rows(rows, baseline, ratios)
    low = {depth: statistics.median(r) for depth, r in ratios.items() if statistics.median(r) < 0.9}
    if low:
        print(f"below 90% of the baseline driver on QEMU at queue depth(s): {low}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
