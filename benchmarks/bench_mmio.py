"""Accessor cost: mmiotk vs python-periphery's MMIO vs the raw memoryview floor, on one /dev/shm file.

Run: .venv/bin/python benchmarks/bench_mmio.py
Every column is measured in this run, on the same mapped file, as bare calls in timeit loops; the three
sides are interleaved over 9 rounds and each keeps its best.
The floor is a cast memoryview subscript with no checks; block copies compare with numpy.copyto.
Targets (issue 17): relaxed read32/write32 >= 10x periphery and <= 1.5x the floor; ordered <= 1.1x relaxed
on x86-64; 4 KiB block copies at >= 100% of numpy's copy. The last line is the summary:
`mmio: read32 N.Nx periphery N.Nx floor, write32 N.Nx periphery N.Nx floor`. Exit status 1 when a target is missed.
"""

from __future__ import annotations

import os
import sys
import tempfile

import numpy as np
from periphery import MMIO

sys.path.insert(0, os.path.dirname(__file__))
from timing import ns_per_op_interleaved, print_table

from mmiotk import CachePolicy, DevMemSpace, MmioResource, native
from mmiotk.barrier import HOST_ARCH

SIZE = 1 << 16
OFF = 0x40


def main() -> int:
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
    path = os.path.join(shm, f"mmiotk-bench-{os.getpid()}")
    with open(path, "wb") as f:
        f.truncate(SIZE)
    try:
        return run(path)
    finally:
        os.unlink(path)


def run(path: str) -> int:
    space = DevMemSpace(path)
    buf = MmioResource(space, 0, SIZE).create_region(0, SIZE, "bench").map(CachePolicy.UNCACHED)
    periph = MMIO(0, SIZE, path=path)
    fd = os.open(path, os.O_RDWR | os.O_SYNC)
    import mmap

    raw_map = mmap.mmap(fd, SIZE)
    os.close(fd)
    raw = memoryview(raw_map).cast("I")

    block = bytes(range(256)) * 16
    src = np.frombuffer(block, dtype=np.uint8).copy()
    dst = np.frombuffer(raw_map, dtype=np.uint8)[0x1000:0x2000]

    env = {
        "r32": buf.read32_relaxed, "w32": buf.write32_relaxed, "o_r32": buf.read32, "o_w32": buf.write32,
        "modify32": buf.modify32, "read_block": buf.read_block, "write_block": buf.write_block,
        "p_r32": periph.read32, "p_w32": periph.write32, "p_read": periph.read, "p_write": periph.write,
        "raw": raw, "i": OFF >> 2, "OFF": OFF, "block": block, "src": src, "dst": dst, "copyto": np.copyto,
    }
    rows = []
    results: dict[str, float] = {}

    def add_row(name: str, ns_ours: float, ns_theirs: float, ns_floor: float) -> None:
        results[name], results[name + ":periphery"], results[name + ":floor"] = ns_ours, ns_theirs, ns_floor
        rows.append([name, f"{ns_ours:.0f}", f"{ns_theirs:.0f}", f"{ns_floor:.0f}",
                     f"{ns_theirs / ns_ours:.1f}x", f"{ns_ours / ns_floor:.2f}x"])

    def measure(name: str, ours: str, theirs: str, floor: str, number: int = 200_000) -> None:
        add_row(name, *ns_per_op_interleaved([ours, theirs, floor], env, number))

    def measure_pair(op: str, relaxed: str, ordered: str, theirs: str, floor: str) -> None:
        """Relaxed and ordered in the same interleaved rounds, so that their ratio is not load noise."""
        ns_relaxed, ns_ordered, ns_theirs, ns_floor = ns_per_op_interleaved([relaxed, ordered, theirs, floor], env,
                                                                            200_000)
        add_row(f"{op}_relaxed", ns_relaxed, ns_theirs, ns_floor)
        add_row(f"{op} (ordered)", ns_ordered, ns_theirs, ns_floor)

    measure_pair("read32", "r32(OFF)", "o_r32(OFF)", "p_r32(OFF)", "raw[i]")
    measure_pair("write32", "w32(OFF, 0x1234)", "o_w32(OFF, 0x1234)", "p_w32(OFF, 0x1234)", "raw[i] = 0x1234")
    measure("modify32", "modify32(OFF, 0xF0, 0x30)", "p_w32(OFF, (p_r32(OFF) & ~0xF0) | 0x30)",
            "raw[i] = (raw[i] & ~0xF0) | 0x30")
    measure("read_block 4 KiB", "read_block(0x1000, 4096)", "p_read(0x1000, 4096)", "copyto(src, dst)", 50_000)
    measure("write_block 4 KiB", "write_block(0x1000, block)", "p_write(0x1000, block)", "copyto(dst, src)",
            50_000)

    print(f"accessors on {path} (mmiotk: {buf.mechanism}, {native.CORE_DESCRIPTION}); ns/op, bare calls, "
          "best of 9 interleaved rounds")
    print_table(["operation", "mmiotk ns", "periphery ns", "raw/numpy ns", "mmiotk speed-up vs periphery",
                 "mmiotk / floor"], rows)

    def vs_periphery(name: str) -> float:
        return results[name + ":periphery"] / results[name]

    def vs_floor(name: str) -> float:
        return results[name] / results[name + ":floor"]

    targets = [
        ("relaxed read32 >= 10x faster than periphery", vs_periphery("read32_relaxed") >= 10),
        ("relaxed write32 >= 10x faster than periphery", vs_periphery("write32_relaxed") >= 10),
        ("relaxed read32 within 1.5x of the raw floor", vs_floor("read32_relaxed") <= 1.5),
        ("relaxed write32 within 1.5x of the raw floor", vs_floor("write32_relaxed") <= 1.5),
        ("read_block 4 KiB >= 100% of numpy copy bandwidth", vs_floor("read_block 4 KiB") <= 1.0),
        ("write_block 4 KiB >= 100% of numpy copy bandwidth", vs_floor("write_block 4 KiB") <= 1.0),
    ]
    if HOST_ARCH == "x86_64":  # TSO: Linux's readl/writel are the relaxed accesses; elsewhere they carry barriers
        targets += [
            ("ordered read32 within 1.1x of relaxed (x86-64)",
             results["read32 (ordered)"] / results["read32_relaxed"] <= 1.1),
            ("ordered write32 within 1.1x of relaxed (x86-64)",
             results["write32 (ordered)"] / results["write32_relaxed"] <= 1.1),
        ]
    print()
    for label, ok in targets:
        print(f"{'met ' if ok else 'MISSED'} {label}")
    print(f"mmio: read32 {vs_periphery('read32_relaxed'):.1f}x periphery {vs_floor('read32_relaxed'):.1f}x floor, "
          f"write32 {vs_periphery('write32_relaxed'):.1f}x periphery {vs_floor('write32_relaxed'):.1f}x floor")
    periph.close()
    del raw
    return 0 if all(ok for _, ok in targets) else 1


if __name__ == "__main__":
    sys.exit(main())
