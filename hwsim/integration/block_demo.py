"""The block part of `mmiotk demo`: QEMU's virt board with a virtio-blk disk, the driver bound through the
platform bus, a disk image made by real tools written and read back, and how fast it went.

`run_blk_demo(boot, out)` is what the demo calls. Drivers never import a target, so the caller passes
`boot(disk_image_path, ram_size) -> context manager of the machine's AddressSpace`: hwsim's
`QemuSpace(image=..., ram_size=...)` (registers over qtest, guest RAM shared) for QEMU's `virt` board. It
needs qemu-img and mkfs.ext4 (`make bootstrap` installs them).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from drivers.block.protocol import BlockCommand, BlockOp, BlockStatus, Vmo
from drivers.bus.platform import BOARDS_DIR, PlatformBus
from drivers.virtio.blk import BlkFeature, VirtioBlk, VirtioBlkDriver
from drivers.virtio.mmio import Feature
from mmiotk.bus import format_address_map

BOARD = BOARDS_DIR / "qemu-virt.yaml"
MiB = 1 << 20
FEATURE_NAMES = {BlkFeature.SIZE_MAX: "SIZE_MAX", BlkFeature.SEG_MAX: "SEG_MAX", BlkFeature.RO: "RO",
                 BlkFeature.BLK_SIZE: "BLK_SIZE", BlkFeature.FLUSH: "FLUSH", BlkFeature.CONFIG_WCE: "CONFIG_WCE",
                 BlkFeature.WRITE_ZEROES: "WRITE_ZEROES", Feature.VERSION_1: "VERSION_1",
                 Feature.ACCESS_PLATFORM: "ACCESS_PLATFORM"}


def make_image(path: Path, size_mib: int) -> str:
    """An ext4 image made by qemu-img and mkfs.ext4, with a few files in it; returns what it holds."""
    subprocess.run([_tool("qemu-img"), "create", "-q", "-f", "raw", str(path), f"{size_mib}M"], check=True)
    with tempfile.TemporaryDirectory(prefix="mmiotk-demo-root-") as root:
        for i in range(8):
            Path(root, f"file{i}.bin").write_bytes(os.urandom(64 * 1024 * (i + 1)))
        Path(root, "README").write_text("written by mmiotk's virtio-blk driver through QEMU\n")
        subprocess.run([_tool("mkfs.ext4"), "-q", "-F", "-L", "mmiotk", "-d", root, str(path)], check=True,
                       capture_output=True)
    return "ext4 (mkfs.ext4 -d: 8 files, 2.3 MiB, and a README)"


def _tool(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if path is None:
        raise RuntimeError(f"{name} is not installed (make bootstrap installs it)")
    return path


def transfer(blk: VirtioBlk, command: BlockCommand, buf: Any, depth: int = 16) -> float:
    """Move the whole disk between it and `buf` (a DMA buffer: zero-copy) in max_transfer requests at
    queue depth `depth`; returns the seconds it took."""
    info = blk.query()
    per = info.max_transfer_size // info.block_size
    vmo = Vmo(buf, buf.dma_addr)
    todo = [BlockOp(command, min(per, info.block_count - b), b, b, vmo) for b in range(0, info.block_count, per)]
    failed: list[BlockStatus] = []
    inflight = 0

    def completion(status: BlockStatus, op: BlockOp) -> None:
        nonlocal inflight
        inflight -= 1
        if status is not BlockStatus.OK:
            failed.append(status)

    start = time.perf_counter()
    while todo or inflight:
        with blk.batch():
            while todo and inflight < depth:
                inflight += 1
                blk.queue(todo.pop(0), completion)
        if inflight and not blk.poll(10.0):
            raise TimeoutError(f"{command.name}: no completion within 10 s")
    if failed:
        raise RuntimeError(f"{command.name}: {len(failed)} requests failed: {failed[0].name}")
    return time.perf_counter() - start


def random_reads(blk: VirtioBlk, depth: int, seconds: float) -> float:
    """4 KiB random reads at queue depth `depth` for `seconds`; requests per second."""
    import random

    info = blk.query()
    per = 4096 // info.block_size
    rng = random.Random(depth)
    bufs = [blk.pool.alloc(4096, align=4096) for _ in range(depth)]
    ready = [BlockOp(BlockCommand.READ, per, 0, 0, Vmo(b, b.dma_addr)) for b in bufs]
    done = 0

    def completion(status: BlockStatus, op: BlockOp) -> None:
        nonlocal done
        done += 1
        ready.append(op)

    start = time.perf_counter()
    stop = start + seconds
    while time.perf_counter() < stop:
        with blk.batch():
            while ready:
                op = ready.pop()
                op.offset_dev = rng.randrange(info.block_count // per) * per
                blk.queue(op, completion)
        blk.poll(10.0)
    while len(ready) < depth:
        blk.poll(10.0)
    for b in bufs:
        b.free()
    return done / (time.perf_counter() - start)


def run_blk_demo(boot: Callable[..., AbstractContextManager[Any]], out: TextIO | None = None, *,
                 image_mib: int = 16, say: Callable[[str], None] | None = None) -> int:
    """The demo on the machine `boot(image=..., ram_size=...)` starts (QEMU virt: `QemuSpace`); returns 0 when
    the image read back byte-identical and landed on the disk file."""
    out = out if out is not None else sys.stdout
    emit = say or (lambda line: print(line, file=out, flush=True))
    with tempfile.TemporaryDirectory(prefix="mmiotk-demo-blk-") as tmp:
        image = Path(tmp, "source.img")
        what = make_image(image, image_mib)
        disk = Path(tmp, "disk.img")
        subprocess.run([_tool("qemu-img"), "create", "-q", "-f", "raw", str(disk), f"{image_mib}M"], check=True)
        emit(f"\nvirtio-blk on QEMU: image {image.name}, {image_mib} MiB, {what}")
        t0 = time.perf_counter()
        with boot(image=str(disk), ram_size=256 * MiB) as qemu:
            emit(f"boot    {' '.join(qemu.command[:3])} (pid {qemu.pid}), blank {image_mib} MiB disk in "
                 f"virtio-mmio slot {qemu.device_slot}, guest RAM shared at {qemu.ram_path} "
                 f"({time.perf_counter() - t0:.2f} s)")
            bus = PlatformBus.from_board(BOARD, qemu, irq_factory=qemu.irq_factory)
            bus.register_driver(VirtioBlkDriver, lambda: VirtioBlkDriver(completions="poll", spin=1.0))
            bound = bus.bind_all()
            try:
                status = _exercise(bus, bound, image, disk, emit)
            finally:
                bus.close()
            after: list[BlockStatus] = []
            for driver in bound.values():
                if isinstance(driver, VirtioBlkDriver):
                    driver.queue(BlockOp(BlockCommand.FLUSH), lambda s, op: after.append(s))
            emit("unbind  " + "; ".join(line.removeprefix("unbind ") for line in bus.log if line.startswith("unbind"))
                 + (f"; a request after unbind completes {after[0].name}" if after else ""))
        return status


def _exercise(bus: PlatformBus, bound: dict[str, Any], image: Path, disk: Path,
              emit: Callable[[str], None]) -> int:
    blks = {name: d for name, d in bound.items() if isinstance(d, VirtioBlkDriver) and d.block is not None}
    if not blks:
        emit("bind    no virtio-blk device bound: " + "; ".join(
            f"{d.name}: {d.bind_errors[-1]}" for d in bus if d.bind_errors)[:400])
        return 1
    name, driver = next(iter(blks.items()))
    blk = driver.block
    assert blk is not None
    empty = sum(1 for d in bus if d.driver is None and any("device id 0" in e for e in d.bind_errors))
    map_line = next(line for line in format_address_map(bus.address_map()).splitlines() if name in line)
    emit(f"bind    {name} -> VirtioBlkDriver ({empty} empty virtio-mmio slots refused, as Linux does)")
    emit(f"map     {map_line.strip()}")
    features = [label for bit, label in sorted(FEATURE_NAMES.items()) if blk.dev.has(bit)]
    info = blk.query()
    emit(f"device  {info.block_count} blocks x {info.block_size} B, max transfer {info.max_transfer_size // 1024} "
         f"KiB, {'writeback' if blk.writeback else 'writethrough'} cache, queue of {blk.vq.size}, "
         f"{blk.max_in_flight} requests in flight at most")
    emit(f"        features negotiated: {', '.join(features)}")

    source = np.fromfile(image, dtype=np.uint8)
    buf = blk.pool.alloc(source.size, align=4096, name="demo-image")
    buf[:] = source
    t_write = transfer(blk, BlockCommand.WRITE, buf)
    flushed: list[BlockStatus] = []
    blk.queue(BlockOp(BlockCommand.FLUSH), lambda s, op: flushed.append(s))
    while not flushed:
        blk.poll(10.0)
    buf[:] = 0
    t_read = transfer(blk, BlockCommand.READ, buf)
    same = bool(np.array_equal(buf, source))
    mib = source.size / MiB
    emit(f"write   {mib:.0f} MiB in {t_write * 1000:.0f} ms ({mib / t_write:.0f} MiB/s), then FLUSH: {flushed[0].name}")
    emit(f"read    {mib:.0f} MiB in {t_read * 1000:.0f} ms ({mib / t_read:.0f} MiB/s): "
         f"{'byte-identical to the image' if same else 'DIFFERENT from the image'}")
    on_disk = hashlib.sha256(disk.read_bytes()).hexdigest() == hashlib.sha256(image.read_bytes()).hexdigest()
    emit(f"        QEMU's disk file {'matches' if on_disk else 'does NOT match'} the image (sha256); "
         f"bytes bounced: {blk.bytes_copied} (every buffer was DMA-able)")
    qd1, qd16 = random_reads(blk, 1, 0.5), random_reads(blk, 16, 0.5)
    emit(f"random  4 KiB reads: {qd1:,.0f} req/s at QD1, {qd16:,.0f} req/s at QD16 "
         f"({qd16 * 4096 / MiB:.0f} MiB/s), {blk.vq.notifications} doorbells in all")
    buf.free()
    return 0 if same and on_disk else 1
