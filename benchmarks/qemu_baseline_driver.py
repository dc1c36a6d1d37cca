"""Baseline for the virtio-blk benchmarks: a minimal hand-written polling driver on the QEMU target.

Stdlib plus `hwsim.qemu.QemuSpace` only — no mmiotk register layer, no virtqueue abstraction: raw qtest
register accesses for setup and notify, `struct` on a memoryview of shared guest RAM for the rings. It
reads 4 KiB blocks at random at queue depth 1 and 16, polling the used ring (interrupts suppressed), and
checks every block it reads (each block of the image starts with its own index). The main virtio driver's
benchmark compares against `run()` measured in the same session.

    .venv/bin/python benchmarks/qemu_baseline_driver.py [--seconds 2] [--depths 1,16]
"""

from __future__ import annotations

import argparse
import os
import random
import struct
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hwsim.qemu import QemuSpace

# virtio-mmio v2 registers and bits (virtio 1.2, 4.2.2)
DEVICE_FEATURES, DEVICE_FEATURES_SEL, DRIVER_FEATURES, DRIVER_FEATURES_SEL = 0x10, 0x14, 0x20, 0x24
QUEUE_SEL, QUEUE_NUM_MAX, QUEUE_NUM, QUEUE_READY, QUEUE_NOTIFY = 0x30, 0x34, 0x38, 0x44, 0x50
STATUS, QUEUE_DESC, QUEUE_DRIVER, QUEUE_DEVICE = 0x70, 0x80, 0x90, 0xA0
ACKNOWLEDGE, DRIVER, DRIVER_OK, FEATURES_OK = 1, 2, 4, 8
DESC_F_NEXT, DESC_F_WRITE, AVAIL_F_NO_INTERRUPT = 1, 2, 1
BLK_T_IN, BLK_S_OK = 0, 0
BLOCK = 4096


class BaselineDriver:
    """One virtqueue of `queue_size`; slot s uses descriptors 3s..3s+2 (header, data, status)."""

    def __init__(self, qemu: QemuSpace, queue_size: int = 64) -> None:
        self.qemu = qemu
        self.base = qemu.device_base
        rd, wr, base = qemu.qtest.read, qemu.qtest.write, self.base
        self.wr = wr
        wr(base + STATUS, 4, 0)
        wr(base + STATUS, 4, ACKNOWLEDGE | DRIVER)
        wr(base + DEVICE_FEATURES_SEL, 4, 1)
        if not rd(base + DEVICE_FEATURES, 4) & 1:
            raise RuntimeError("device does not offer VIRTIO_F_VERSION_1")
        wr(base + DRIVER_FEATURES_SEL, 4, 0)
        wr(base + DRIVER_FEATURES, 4, 0)
        wr(base + DRIVER_FEATURES_SEL, 4, 1)
        wr(base + DRIVER_FEATURES, 4, 1)                     # VERSION_1 only
        wr(base + STATUS, 4, ACKNOWLEDGE | DRIVER | FEATURES_OK)
        if not rd(base + STATUS, 4) & FEATURES_OK:
            raise RuntimeError("device refused the features")
        wr(base + QUEUE_SEL, 4, 0)
        n = min(queue_size, rd(base + QUEUE_NUM_MAX, 4))
        self.n = n
        self.slots = n // 3
        # layout in guest RAM above the DTB: descriptors, avail, used, headers, status bytes, data
        self.desc = 0
        self.avail = self.desc + 16 * n
        self.used = (self.avail + 6 + 2 * n + 3) & ~3
        self.headers = (self.used + 6 + 8 * n + 15) & ~15
        self.status = self.headers + 16 * self.slots
        self.data = (self.status + self.slots + BLOCK - 1) & ~(BLOCK - 1)
        size = self.data + BLOCK * self.slots
        self.paddr = qemu.dma_base
        self.mem = qemu.ram_view(self.paddr, size)
        self.mem[:] = bytes(size)
        for s in range(self.slots):
            d = 3 * s
            struct.pack_into("<QIHH", self.mem, self.desc + 16 * d, self.paddr + self.headers + 16 * s, 16,
                             DESC_F_NEXT, d + 1)
            struct.pack_into("<QIHH", self.mem, self.desc + 16 * (d + 1), self.paddr + self.data + BLOCK * s,
                             BLOCK, DESC_F_NEXT | DESC_F_WRITE, d + 2)
            struct.pack_into("<QIHH", self.mem, self.desc + 16 * (d + 2), self.paddr + self.status + s, 1,
                             DESC_F_WRITE, 0)
        struct.pack_into("<H", self.mem, self.avail, AVAIL_F_NO_INTERRUPT)
        wr(base + QUEUE_NUM, 4, n)
        for reg, off in ((QUEUE_DESC, self.desc), (QUEUE_DRIVER, self.avail), (QUEUE_DEVICE, self.used)):
            wr(base + reg, 4, (self.paddr + off) & 0xFFFFFFFF)
            wr(base + reg + 4, 4, (self.paddr + off) >> 32)
        wr(base + QUEUE_READY, 4, 1)
        wr(base + STATUS, 4, ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK)
        self.avail_idx = 0
        self.used_idx = 0
        self.capacity = rd(base + 0x100, 8)

    def submit_read(self, slot: int, sector: int) -> None:
        """Queue a 4 KiB read of `sector` into slot `slot` (not yet notified)."""
        mem = self.mem
        struct.pack_into("<IIQ", mem, self.headers + 16 * slot, BLK_T_IN, 0, sector)
        mem[self.status + slot] = 0xFF
        struct.pack_into("<H", mem, self.avail + 4 + 2 * (self.avail_idx % self.n), 3 * slot)
        self.avail_idx = (self.avail_idx + 1) & 0xFFFF
        struct.pack_into("<H", mem, self.avail + 2, self.avail_idx)   # x86 host: stores stay in order

    def notify(self) -> None:
        self.wr(self.base + QUEUE_NOTIFY, 4, 0)

    def reap(self, deadline: float) -> list[int]:
        """Slots completed since the last call; polls until at least one, or raises at `deadline`."""
        mem, used, unpack = self.mem, self.used, struct.unpack_from
        spins = 0
        while unpack("<H", mem, used + 2)[0] == self.used_idx:
            spins += 1
            if spins % 4096 == 0 and time.monotonic() > deadline:
                raise TimeoutError("virtio-blk baseline: no completion before the deadline")
        done = []
        head_idx = unpack("<H", mem, used + 2)[0]
        while self.used_idx != head_idx:
            head, _length = unpack("<II", mem, used + 4 + 8 * (self.used_idx % self.n))
            slot = head // 3
            if mem[self.status + slot] != BLK_S_OK:
                raise RuntimeError(f"request in slot {slot} failed with status {mem[self.status + slot]}")
            done.append(slot)
            self.used_idx = (self.used_idx + 1) & 0xFFFF
        return done

    def check(self, slot: int, block: int) -> None:
        got = struct.unpack_from("<Q", self.mem, self.data + BLOCK * slot)[0]
        if got != block:
            raise RuntimeError(f"slot {slot}: read block {block} but found the stamp of block {got}")


def make_image(path: str, blocks: int) -> None:
    """A raw image whose 4 KiB block i starts with the 64-bit index i."""
    with open(path, "wb") as f:
        f.truncate(blocks * BLOCK)
        for i in range(blocks):
            f.seek(i * BLOCK)
            f.write(struct.pack("<Q", i))


def run(driver: BaselineDriver, depth: int, seconds: float, seed: int = 1) -> tuple[int, float]:
    """Random 4 KiB reads at `depth` for about `seconds`; (requests completed, elapsed seconds)."""
    if not 1 <= depth <= driver.slots:
        raise ValueError(f"depth must be 1..{driver.slots}, got {depth}")
    rng = random.Random(seed)
    blocks = driver.capacity * 512 // BLOCK
    inflight: dict[int, int] = {}
    start = time.perf_counter()
    stop = start + seconds
    done = 0
    for slot in range(depth):
        inflight[slot] = rng.randrange(blocks)
        driver.submit_read(slot, inflight[slot] * (BLOCK // 512))
    driver.notify()
    while inflight:
        now = time.perf_counter()
        for slot in driver.reap(time.monotonic() + 10):
            driver.check(slot, inflight.pop(slot))
            done += 1
            if now < stop:
                inflight[slot] = rng.randrange(blocks)
                driver.submit_read(slot, inflight[slot] * (BLOCK // 512))
        if inflight and now < stop:
            driver.notify()
    return done, time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per queue depth")
    parser.add_argument("--depths", default="1,16")
    parser.add_argument("--disk-mib", type=int, default=64)
    args = parser.parse_args(argv)
    depths = [int(d) for d in args.depths.split(",")]
    with tempfile.TemporaryDirectory(prefix="mmiotk-bench-") as tmp:
        image = os.path.join(tmp, "disk.img")
        make_image(image, args.disk_mib * (1 << 20) // BLOCK)
        with QemuSpace(image=image, ram_size=64 << 20) as qemu:
            driver = BaselineDriver(qemu)
            run(driver, 1, 0.2)                                 # warm-up
            print("QEMU virtio-blk, minimal polling driver (stdlib + QemuSpace), random 4 KiB reads")
            print(f"{'depth':>5} {'requests':>9} {'seconds':>8} {'req/s':>9} {'MiB/s':>7}")
            for depth in depths:
                count, elapsed = run(driver, depth, args.seconds)
                rate = count / elapsed
                print(f"{depth:>5} {count:>9} {elapsed:>8.2f} {rate:>9.0f} {rate * BLOCK / (1 << 20):>7.1f}")


if __name__ == "__main__":
    main()
