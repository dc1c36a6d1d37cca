"""The conformance cases: plain synchronous functions, run with the same virtio-blk driver on every target.

A case gets a `Target` (which knows how to boot a device with a given disk and bind the driver through the
platform bus) and a scratch directory; it raises AssertionError when the target or the driver misbehaves.
Cases use no threads and never sleep on host primitives: completions come from `VirtioBlk.poll`, which is
what lets the same code run inside a cocotb simulation through the greenlet bridge.

`CASES` maps each case id to (function, keyword arguments). A case id states the behaviour the case proves:
it is the pytest test's name without `test_` (plus a parameter suffix) and the cocotb test's name on the RTL
targets.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import numpy as np

from drivers.block.protocol import BlockCommand, BlockFlag, BlockOp, BlockStatus, OpFlag, Vmo
from drivers.virtio.blk import BlkFeature, VirtioBlk
from drivers.virtio.mmio import Feature, Status

MiB = 1 << 20
TIMEOUT = 30.0  # seconds any one batch of requests may take, on the slowest simulator


class Target(ABC):
    """Where the cases run. `scale` shrinks request counts on slow targets (RTL simulators)."""

    name: str = "?"
    scale: float = 1.0
    offers_legacy_mmio = True  # the target can boot a virtio-mmio legacy (Version 1) device
    image_sizes: dict[str, str] = {"ext4": "4M", "vfat": "2M"}

    @abstractmethod
    def device(self, *, image: Path | None = None, disk_size: int = 4 * MiB, readonly: bool = False,
               media_range: tuple[int, int] | None = None, legacy: bool = False,
               **options: Any) -> AbstractContextManager[VirtioBlk]:
        """Boot a device on that disk (the file `image`, used in place, or `disk_size` zero bytes; with
        `media_range` = (offset, size) in bytes, the device-side range: only that part of it; `legacy`: the
        virtio-mmio legacy interface, Version 1), bind the driver through the bus with `options` (always
        completions="poll"), yield the bound VirtioBlk. Every target's device reports 4 KiB physical blocks
        (TOPOLOGY) over 512-byte logical ones."""

    def count(self, n: int) -> int:
        return max(4, int(n * self.scale))


# --- helpers ------------------------------------------------------------------------------------------
def dma_vmo(blk: VirtioBlk, nbytes: int) -> Vmo:
    """A Vmo in the device's DMA pool: the driver uses it in place."""
    buf = blk.pool.alloc(nbytes, align=4096)
    return Vmo(buf, buf.dma_addr)


def run_ops(blk: VirtioBlk, ops: list[BlockOp], depth: int,
            on_done: Callable[[BlockOp, BlockStatus], None] | None = None) -> list[BlockStatus]:
    """Run `ops` keeping at most `depth` in flight; statuses in op order. Polls; never blocks forever."""
    statuses: list[BlockStatus | None] = [None] * len(ops)
    pending = iter(enumerate(ops))
    inflight = 0

    def completion(status: BlockStatus, op: BlockOp) -> None:
        nonlocal inflight
        inflight -= 1
        statuses[op.cookie] = BlockStatus(status)
        if on_done is not None:
            on_done(op, status)

    def submit() -> bool:
        nonlocal inflight
        item = next(pending, None)
        if item is None:
            return False
        i, op = item
        op.cookie = i
        inflight += 1
        blk.queue(op, completion)
        return True

    with blk.batch():
        while inflight < depth and submit():
            pass
    while inflight or any(s is None for s in statuses):
        if not blk.poll(TIMEOUT):
            missing = [i for i, s in enumerate(statuses) if s is None]
            raise AssertionError(f"{len(missing)} ops did not complete within {TIMEOUT} s (first: {missing[0]})")
        with blk.batch():
            while inflight < depth and submit():
                pass
    return [s for s in statuses if s is not None]


def _chunks(blk: VirtioBlk, offset: int, count: int) -> list[tuple[int, int]]:
    """(first block, blocks) pieces of at most max_transfer bytes covering [offset, offset + count)."""
    info = blk.query()
    per = max(1, info.max_transfer_size // info.block_size)
    return [(b, min(per, offset + count - b)) for b in range(offset, offset + count, per)]


def read(blk: VirtioBlk, offset: int, count: int) -> bytes:
    """Blocks [offset, offset + count), in max_transfer-sized requests, 8 in flight."""
    vmo = dma_vmo(blk, count * blk.query().block_size)
    ops = [BlockOp(BlockCommand.READ, n, b, b - offset, vmo) for b, n in _chunks(blk, offset, count)]
    statuses = run_ops(blk, ops, 8)
    assert all(s is BlockStatus.OK for s in statuses), f"read of {count} blocks at {offset}: {statuses}"
    return vmo.array.tobytes()


def write(blk: VirtioBlk, offset: int, data: bytes, flags: OpFlag = OpFlag.NONE) -> BlockStatus:
    """Write whole blocks; the first status other than OK, else OK."""
    vmo = dma_vmo(blk, len(data))
    vmo.array[:] = np.frombuffer(data, dtype=np.uint8)
    count = len(data) // blk.query().block_size
    ops = [BlockOp(BlockCommand.WRITE, n, b, b - offset, vmo, flags) for b, n in _chunks(blk, offset, count)]
    return next((s for s in run_ops(blk, ops, 8) if s is not BlockStatus.OK), BlockStatus.OK)


def read_all(blk: VirtioBlk) -> bytes:
    return read(blk, 0, blk.query().block_count)


def pattern(nbytes: int, seed: int) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, nbytes, dtype=np.uint8).tobytes()


# --- the cases ----------------------------------------------------------------------------------------
def case_negotiation_accepts_only_offered_features(target: Target, workdir: Path) -> None:
    """VERSION_1 negotiated, FEATURES_OK and DRIVER_OK set, nothing accepted that was not offered."""
    with target.device() as blk:
        dev = blk.dev
        status = dev.status
        for name in ("ACKNOWLEDGE", "DRIVER", "FEATURES_OK", "DRIVER_OK"):
            assert status & getattr(Status, name), f"device status {status:#x} lacks {name}"
        assert not status & (Status.FAILED | Status.DEVICE_NEEDS_RESET), f"device status {status:#x}"
        assert dev.has(Feature.VERSION_1)
        offered = dev.device_features()
        assert dev.features & ~offered == 0, f"accepted {dev.features:#x} but the device offers {offered:#x}"
        assert not dev.has(Feature.RING_PACKED)
        for feature in (Feature.RING_EVENT_IDX, Feature.RING_INDIRECT_DESC, BlkFeature.TOPOLOGY):
            assert dev.has(feature) == bool(offered >> feature & 1), f"feature {feature}: offered but not used"
        assert blk.query().block_count * blk.query().block_size == 4 * MiB


def case_written_blocks_read_back_and_flushes_complete(target: Target, workdir: Path) -> None:
    """Written blocks read back; FLUSH and FORCE_ACCESS writes complete OK; neighbours untouched."""
    with target.device() as blk:
        bs = blk.query().block_size
        data = pattern(8 * bs, 1)
        assert write(blk, 16, data) is BlockStatus.OK
        assert read(blk, 16, 8) == data
        assert read(blk, 15, 1) == bytes(bs) and read(blk, 24, 1) == bytes(bs)
        [flushed] = run_ops(blk, [BlockOp(BlockCommand.FLUSH)], 1)
        assert flushed is BlockStatus.OK
        assert write(blk, 40, data[:bs], OpFlag.FORCE_ACCESS) is BlockStatus.OK
        assert read(blk, 40, 1) == data[:bs]


def case_random_io_matches_a_shadow_copy(target: Target, workdir: Path, depth: int) -> None:
    """Random reads and writes of 1-8 blocks at queue depth `depth`: every read matches a shadow copy."""
    area = 512
    with target.device() as blk:
        bs = blk.query().block_size
        shadow = bytearray(pattern(area * bs, depth))
        status = write(blk, 0, bytes(shadow))
        assert status is BlockStatus.OK, f"initial write: {status.name}"
        rng = random.Random(depth)
        n = target.count(400)
        vmo = dma_vmo(blk, 8 * bs * n)
        ops: list[BlockOp] = []
        for i in range(n):
            length = rng.randint(1, 8)
            op = BlockOp(BlockCommand.WRITE if rng.random() < 0.5 else BlockCommand.READ, length,
                         rng.randrange(area - length + 1), 8 * i, vmo)
            if op.command is BlockCommand.WRITE:
                vmo.array[8 * i * bs:(8 * i + length) * bs] = np.frombuffer(pattern(length * bs, i),
                                                                            dtype=np.uint8)
            ops.append(op)
        # order-sensitive pairs (a write and anything overlapping it) must not be in flight together
        ops = _serialize_conflicts(ops, depth)
        mismatches: list[int] = []

        def check(op: BlockOp, status: BlockStatus) -> None:
            lo, hi = op.offset_dev * bs, (op.offset_dev + op.length) * bs
            mem = vmo.array[op.offset_vmo * bs:op.offset_vmo * bs + hi - lo]
            if op.command is BlockCommand.WRITE:
                shadow[lo:hi] = mem.tobytes()
            elif mem.tobytes() != bytes(shadow[lo:hi]):
                mismatches.append(op.offset_dev)

        for batch in ops_batches(ops):
            statuses = run_ops(blk, batch, depth, check)
            assert all(s is BlockStatus.OK for s in statuses), f"statuses {set(statuses)}"
        assert not mismatches, f"reads disagreeing with the shadow at blocks {mismatches[:10]}"
        assert read(blk, 0, area) == bytes(shadow), "the disk disagrees with the shadow copy"
        assert blk.bytes_copied == 0, f"{blk.bytes_copied} bytes bounced although every buffer is DMA-able"


def _serialize_conflicts(ops: list[BlockOp], depth: int) -> list[BlockOp]:
    """Mark batch boundaries (cookie=None placeholders) so that no window of `depth` consecutive ops holds
    a write overlapping another op; the shadow is then exact whatever order the device completes them."""
    out: list[BlockOp] = []
    window: list[BlockOp] = []
    for op in ops:
        clash = any(o.offset_dev < op.offset_dev + op.length and op.offset_dev < o.offset_dev + o.length
                    and BlockCommand.WRITE in (o.command, op.command) for o in window)
        if clash:
            out.append(BARRIER)
            window = []
        out.append(op)
        window.append(op)
    return out


BARRIER = BlockOp(BlockCommand.FLUSH, cookie="barrier")


def ops_batches(ops: list[BlockOp]) -> Iterator[list[BlockOp]]:
    batch: list[BlockOp] = []
    for op in ops:
        if op is BARRIER:
            if batch:
                yield batch
            batch = []
        else:
            batch.append(op)
    if batch:
        yield batch


def case_readonly_device_rejects_writes(target: Target, workdir: Path) -> None:
    """A read-only device (VIRTIO_BLK_F_RO): READONLY flag, writes ACCESS_DENIED, reads still work."""
    image = workdir / "ro.img"
    image.write_bytes(pattern(MiB, 7))
    with target.device(image=image, readonly=True) as blk:
        assert blk.dev.has(BlkFeature.RO), "the device did not offer VIRTIO_BLK_F_RO"
        assert blk.query().flags & BlockFlag.READONLY
        bs = blk.query().block_size
        assert write(blk, 0, bytes(bs)) is BlockStatus.ACCESS_DENIED
        assert read(blk, 0, 4) == image.read_bytes()[:4 * bs]


def case_out_of_range_ops_complete_out_of_range_and_change_nothing(target: Target, workdir: Path) -> None:
    """Ops past the end of the disk or of their buffer complete OUT_OF_RANGE and change nothing."""
    with target.device() as blk:
        info = blk.query()
        bs, last = info.block_size, info.block_count
        vmo = dma_vmo(blk, 4 * bs)
        vmo.array[:] = 0xAB
        before = read(blk, last - 2, 2)
        bad = [BlockOp(BlockCommand.READ, 1, last, 0, vmo), BlockOp(BlockCommand.WRITE, 4, last - 2, 0, vmo),
               BlockOp(BlockCommand.READ, 2, 0, 3, vmo), BlockOp(BlockCommand.WRITE, 1, -1, 0, vmo)]
        statuses = run_ops(blk, bad, 4)
        assert statuses == [BlockStatus.OUT_OF_RANGE] * 4, statuses
        assert read(blk, last - 2, 2) == before


def case_range_option_exposes_part_of_the_disk(target: Target, workdir: Path) -> None:
    """start/length expose part of the disk: block 0 of the range is block `start` of the disk."""
    image = workdir / "range.img"
    image.write_bytes(pattern(2 * MiB, 3))
    start, length = 100, 50
    with target.device(image=image, start=start, length=length) as blk:
        bs = blk.query().block_size
        assert blk.query().block_count == length
        assert read(blk, 0, 2) == image.read_bytes()[start * bs:(start + 2) * bs]
        assert write(blk, length - 1, pattern(bs, 9)) is BlockStatus.OK
        vmo = dma_vmo(blk, bs)
        [status] = run_ops(blk, [BlockOp(BlockCommand.READ, 1, length, 0, vmo)], 1)
        assert status is BlockStatus.OUT_OF_RANGE
        assert run_ops(blk, [BlockOp(BlockCommand.FLUSH)], 1) == [BlockStatus.OK]
    disk, original = image.read_bytes(), pattern(2 * MiB, 3)
    end = (start + length) * bs
    assert disk[end - bs:end] == pattern(bs, 9), "the write to the range's last block landed elsewhere"
    assert disk[:end - bs] == original[:end - bs] and disk[end:] == original[end:], "other blocks changed"


def case_device_is_part_of_its_backing_file(target: Target, workdir: Path) -> None:
    """The device itself is part of its backing file (the seed's `range=start/size`): capacity is the
    range, block 0 is the range's first block, and nothing outside the range changes."""
    image = workdir / "device-range.img"
    image.write_bytes(pattern(2 * MiB, 11))
    offset, size = 256 * 1024, 128 * 1024
    with target.device(image=image, media_range=(offset, size)) as blk:
        bs = blk.query().block_size
        count = size // bs
        assert blk.query().block_count == count, f"capacity {blk.query().block_count} blocks, range {count}"
        assert read(blk, 0, 4) == image.read_bytes()[offset:offset + 4 * bs]
        assert write(blk, count - 1, pattern(bs, 12)) is BlockStatus.OK
        assert write(blk, 0, pattern(bs, 13)) is BlockStatus.OK
        assert run_ops(blk, [BlockOp(BlockCommand.FLUSH)], 1) == [BlockStatus.OK]
    disk, original = image.read_bytes(), pattern(2 * MiB, 11)
    assert disk[offset:offset + bs] == pattern(bs, 13)
    assert disk[offset + size - bs:offset + size] == pattern(bs, 12)
    assert disk[:offset] == original[:offset] and disk[offset + size:] == original[offset + size:]
    assert disk[offset + bs:offset + size - bs] == original[offset + bs:offset + size - bs]


def case_long_chains_go_through_indirect_tables(target: Target, workdir: Path) -> None:
    """With RING_INDIRECT_DESC offered, chains longer than the threshold go through indirect tables (here:
    every request) and the data is right; without it, plain chains."""
    with target.device(indirect_threshold=2) as blk:
        offered = bool(blk.dev.device_features() >> Feature.RING_INDIRECT_DESC & 1)
        bs = blk.query().block_size
        data = pattern(24 * bs, 21)
        assert write(blk, 8, data) is BlockStatus.OK
        assert read(blk, 8, 24) == data
        ops = [BlockOp(BlockCommand.READ, 1 + i % 4, 8 + 2 * i, 4 * i, dma_vmo(blk, 16 * 4 * bs)) for i in range(8)]
        assert run_ops(blk, ops, 8) == [BlockStatus.OK] * 8
        for i, op in enumerate(ops):
            assert op.vmo is not None
            got = op.vmo.array[4 * i * bs:(4 * i + op.length) * bs].tobytes()
            assert got == data[2 * i * bs:(2 * i + op.length) * bs], f"op {i}"
        if offered:
            assert blk.vq.indirect_chains >= 10, f"only {blk.vq.indirect_chains} chains went indirect"
        else:
            assert blk.vq.indirect_chains == 0


def case_event_idx_is_used_where_offered(target: Target, workdir: Path) -> None:
    """Every target offers RING_EVENT_IDX (the model, the RTL, QEMU) and the driver uses used_event and
    avail_event: I/O at queue depth 16 completes, data intact."""
    with target.device() as blk:
        offered = bool(blk.dev.device_features() >> Feature.RING_EVENT_IDX & 1)
        assert offered, f"{target.name} does not offer VIRTIO_F_EVENT_IDX"
        assert blk.dev.has(Feature.RING_EVENT_IDX) and blk.vq.event_idx
        bs = blk.query().block_size
        n = target.count(64)
        data = pattern(n * bs, 22)
        vmo = dma_vmo(blk, n * bs)
        vmo.array[:] = np.frombuffer(data, dtype=np.uint8)
        writes = [BlockOp(BlockCommand.WRITE, 1, i, i, vmo) for i in range(n)]
        assert run_ops(blk, writes, 16) == [BlockStatus.OK] * n
        assert read(blk, 0, n) == data


def case_event_idx_interrupts_at_used_event_and_avail_event_follows_the_ring(target: Target,
                                                                             workdir: Path) -> None:
    """EVENT_IDX: with used_event two entries ahead, the device raises no used-buffer interrupt for the next
    two completions and raises one for the third (avail.flags plays no part); once idle it has written
    avail_event = avail.idx, the next entry it wants a notify for."""
    with target.device() as blk:
        assert blk.vq.event_idx, f"{target.name}: EVENT_IDX not negotiated"
        vmo = dma_vmo(blk, blk.query().block_size)
        read(blk, 0, 1)                       # warm up (QEMU always interrupts on its first completion)
        dev, vq = blk.dev, blk.vq
        dev.ack_interrupt(dev.interrupt_status())
        vq.set_used_event(vq.last_used + 2)
        seen = []
        for i in range(3):
            done: list[BlockStatus] = []
            def complete(status: BlockStatus, op: BlockOp, done: list[BlockStatus] = done) -> None:
                done.append(status)
            blk.queue(BlockOp(BlockCommand.READ, 1, i, 0, vmo), complete)
            bits, reads = 0, 0
            # InterruptStatus reads let simulated time pass on the RTL targets; on virtio-pci reading the
            # ISR clears it, so every read is kept. Look a few times more once the request is done (the
            # device decides about the interrupt after publishing used.idx), longer when one is expected.
            deadline = time.monotonic() + TIMEOUT
            while time.monotonic() < deadline:
                blk.poll(0)
                bits |= dev.interrupt_status()
                if done:
                    reads += 1
                    if reads >= (200 if i == 2 else 8) or bits & 1:
                        break
            assert done == [BlockStatus.OK], f"read {i}: {done}"
            dev.ack_interrupt(bits)
            seen.append(bits & 1)
        assert seen == [0, 0, 1], f"used-buffer interrupts per completion {seen}, used_event named the third"
        for _ in range(100):                  # the device writes avail_event before it goes idle
            if vq.avail_event == vq.avail_published:
                break
            dev.interrupt_status()
        assert vq.avail_event == vq.avail_published, \
            f"avail_event {vq.avail_event}, avail.idx {vq.avail_published}"


def case_topology_reaches_block_info(target: Target, workdir: Path) -> None:
    """VIRTIO_BLK_F_TOPOLOGY reaches BlockInfo: 4 KiB physical blocks over 512-byte logical ones."""
    with target.device() as blk:
        info = blk.query()
        assert blk.dev.has(BlkFeature.TOPOLOGY), "every target offers TOPOLOGY"
        assert (info.block_size, info.physical_block_size) == (512, 4096), info
        assert info.alignment_offset == 0, info
        assert info.min_io_size % info.block_size == 0 and info.opt_io_size % info.block_size == 0, info
        assert info.opt_io_size == 0 or info.opt_io_size >= info.min_io_size, info


def case_legacy_interface_binds_and_serves_io(target: Target, workdir: Path) -> None:
    """The legacy interface (virtio-mmio Version 1, the seed's): the same driver binds and does I/O. A target
    without virtio-mmio (qemu-pci: a modern-only virtio-pci device) binds a modern device instead."""
    if not target.offers_legacy_mmio:
        with target.device() as blk:
            assert not getattr(blk.dev, "legacy", False)
        return
    with target.device(legacy=True) as blk:
        dev: Any = blk.dev                  # a legacy transport: VirtioMmio, which has .legacy and .version
        assert dev.legacy and dev.version == 1
        assert not blk.dev.has(Feature.VERSION_1)
        bs = blk.query().block_size
        data = pattern(16 * bs, 23)
        assert write(blk, 32, data) is BlockStatus.OK
        assert read(blk, 32, 16) == data
        assert run_ops(blk, [BlockOp(BlockCommand.FLUSH)], 1) == [BlockStatus.OK]


def case_writethrough_is_the_default(target: Target, workdir: Path) -> None:
    """Every target starts in writethrough mode (the seed's default): a completed write is durable, the
    driver needs no FLUSH, and the device's cache-mode field says so when CONFIG_WCE is offered."""
    with target.device() as blk:
        assert not blk.writeback, "the device came up in writeback mode"
        assert not blk.emulated_writethrough, "writethrough was emulated, not the device's own mode"
        if blk.dev.has(BlkFeature.CONFIG_WCE):
            assert int(blk.config.WRITEBACK.read()) == 0


def case_tool_made_image_reads_back_identical(target: Target, workdir: Path, fs: str) -> None:
    """A disk image made by qemu-img and mkfs reads back through the driver byte for byte."""
    image = workdir / f"{fs}.img"
    size = target.image_sizes[fs]
    subprocess.run([_tool("qemu-img"), "create", "-q", "-f", "raw", str(image), size], check=True)
    mkfs = [_tool("mkfs.ext4"), "-q", "-F", str(image)] if fs == "ext4" else \
        [_tool("mkfs.vfat"), str(image)]
    subprocess.run(mkfs, check=True, capture_output=True)
    expected = image.read_bytes()
    with target.device(image=image) as blk:
        got = read_all(blk)
    assert len(got) == len(expected), f"disk is {len(got)} bytes, image {len(expected)}"
    if got != expected:
        first = next(i for i in range(len(got)) if got[i] != expected[i])
        raise AssertionError(f"{fs} image differs from byte {first:#x} on")
    if fs == "ext4":
        assert got[0x438:0x43A] == b"\x53\xef", "no ext4 superblock magic at 0x438"
    else:
        assert got[510:512] == b"\x55\xaa", "no boot sector signature at 510"


def _tool(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin")
    if path is None:
        raise AssertionError(f"{name} is not installed (make bootstrap installs it)")
    return path


def case_unreachable_buffers_are_bounced_and_counted(target: Target, workdir: Path) -> None:
    """A Vmo the device cannot reach is bounced and counted; a DMA-able one is used in place."""
    with target.device() as blk:
        bs = blk.query().block_size
        plain = Vmo(np.frombuffer(pattern(4 * bs, 5), dtype=np.uint8).copy())
        assert run_ops(blk, [BlockOp(BlockCommand.WRITE, 4, 0, 0, plain)], 1) == [BlockStatus.OK]
        assert blk.bytes_copied == 4 * bs
        assert read(blk, 0, 4) == plain.array.tobytes()
        assert blk.bytes_copied == 4 * bs, "a DMA-able read was bounced"
        back = Vmo(np.zeros(4 * bs, dtype=np.uint8))
        assert run_ops(blk, [BlockOp(BlockCommand.READ, 4, 0, 0, back)], 1) == [BlockStatus.OK]
        assert back.array.tobytes() == plain.array.tobytes() and blk.bytes_copied == 8 * bs


def case_writethrough_option_turns_the_cache_off_or_flushes_every_write(target: Target, workdir: Path) -> None:
    """writeback=False turns the device's cache off (CONFIG_WCE) or emulates writethrough with flushes."""
    with target.device(writeback=False) as blk:
        assert not blk.writeback or blk.emulated_writethrough
        bs = blk.query().block_size
        assert write(blk, 3, pattern(bs, 4)) is BlockStatus.OK
        assert read(blk, 3, 1) == pattern(bs, 4)


def case_trim_zeroes_or_is_not_supported(target: Target, workdir: Path) -> None:
    """TRIM zeroes the blocks when the device can (WRITE_ZEROES), and is NOT_SUPPORTED when it cannot."""
    with target.device() as blk:
        bs = blk.query().block_size
        assert write(blk, 4, pattern(4 * bs, 6)) is BlockStatus.OK
        [status] = run_ops(blk, [BlockOp(BlockCommand.TRIM, 2, 5)], 1)
        if blk.query().trim_supported:
            assert status is BlockStatus.OK
            assert read(blk, 4, 4) == pattern(bs, 6)[:bs] + bytes(2 * bs) + pattern(4 * bs, 6)[3 * bs:]
        else:
            assert status is BlockStatus.NOT_SUPPORTED
            assert read(blk, 4, 4) == pattern(4 * bs, 6)


def case_unbind_completes_every_op_io_not_present(target: Target, workdir: Path) -> None:
    """After unbind, every op completes IO_NOT_PRESENT."""
    with target.device() as blk:
        vmo = dma_vmo(blk, blk.query().block_size)
        blk.unbind()
        ops = [BlockOp(BlockCommand.READ, 1, 0, 0, vmo), BlockOp(BlockCommand.WRITE, 1, 0, 0, vmo),
               BlockOp(BlockCommand.FLUSH)]
        assert run_ops(blk, ops, 3) == [BlockStatus.IO_NOT_PRESENT] * 3


CaseFn = Callable[..., None]
CASES: dict[str, tuple[CaseFn, dict[str, Any]]] = {
    "negotiation_accepts_only_offered_features": (case_negotiation_accepts_only_offered_features, {}),
    "written_blocks_read_back_and_flushes_complete": (case_written_blocks_read_back_and_flushes_complete, {}),
    **{f"random_io_matches_a_shadow_copy-qd{d}": (case_random_io_matches_a_shadow_copy, {"depth": d})
       for d in (1, 4, 16, 64)},
    "readonly_device_rejects_writes": (case_readonly_device_rejects_writes, {}),
    "out_of_range_ops_complete_out_of_range_and_change_nothing":
        (case_out_of_range_ops_complete_out_of_range_and_change_nothing, {}),
    "range_option_exposes_part_of_the_disk": (case_range_option_exposes_part_of_the_disk, {}),
    **{f"tool_made_image_reads_back_identical-{fs}": (case_tool_made_image_reads_back_identical, {"fs": fs})
       for fs in ("ext4", "vfat")},
    "unreachable_buffers_are_bounced_and_counted": (case_unreachable_buffers_are_bounced_and_counted, {}),
    "writethrough_option_turns_the_cache_off_or_flushes_every_write":
        (case_writethrough_option_turns_the_cache_off_or_flushes_every_write, {}),
    "trim_zeroes_or_is_not_supported": (case_trim_zeroes_or_is_not_supported, {}),
    "unbind_completes_every_op_io_not_present": (case_unbind_completes_every_op_io_not_present, {}),
    "device_is_part_of_its_backing_file": (case_device_is_part_of_its_backing_file, {}),
    "writethrough_is_the_default": (case_writethrough_is_the_default, {}),
    "long_chains_go_through_indirect_tables": (case_long_chains_go_through_indirect_tables, {}),
    "event_idx_is_used_where_offered": (case_event_idx_is_used_where_offered, {}),
    "event_idx_interrupts_at_used_event_and_avail_event_follows_the_ring":
        (case_event_idx_interrupts_at_used_event_and_avail_event_follows_the_ring, {}),
    "topology_reaches_block_info": (case_topology_reaches_block_info, {}),
    "legacy_interface_binds_and_serves_io": (case_legacy_interface_binds_and_serves_io, {}),
}


def run_case(case_id: str, target: Target, workdir: Path) -> None:
    fn, kwargs = CASES[case_id]
    workdir.mkdir(parents=True, exist_ok=True)
    fn(target, workdir, **kwargs)
