"""Byte-addressed access to a BlockDevice, for exports whose clients speak bytes (NBD).

Block-aligned reads and writes go to the device asynchronously, split at `max_transfer_size`, straight
from and into the caller's buffer. Unaligned writes become a read-modify-write of the covering blocks,
serialised by one lock so two clients writing different bytes of one block cannot lose each other's
update. FUA is the device's own when it supports it (`BlockInfo.fua_supported`), otherwise a FLUSH after the
write. Errors come back as `BlockStatus`. `extents` is the device's allocation in bytes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import numpy as np

from drivers.block.protocol import (
    MAX_TRANSFER_UNBOUNDED,
    BlockCommand,
    BlockDevice,
    BlockFlag,
    BlockOp,
    BlockStatus,
    ExtentFlag,
    OpFlag,
    Vmo,
    run_op,
)

log = logging.getLogger(__name__)
ZERO_CHUNK = 1 << 20  # bytes written per op when zeroing

ReadDone = Callable[[BlockStatus, np.ndarray | None], None]
WriteDone = Callable[[BlockStatus], None]


class _Parts:
    """Counts the completions of one request's ops; calls `finish(first error or OK)` after the last."""

    def __init__(self, count: int, finish: WriteDone) -> None:
        self.count = count
        self.status = BlockStatus.OK
        self.finish = finish
        self.lock = threading.Lock()

    def __call__(self, status: BlockStatus, _op: BlockOp) -> None:
        with self.lock:
            if status is not BlockStatus.OK and self.status is BlockStatus.OK:
                self.status = BlockStatus(status)
            self.count -= 1
            last = self.count == 0
        if last:
            self.finish(self.status)


class Export:
    """A BlockDevice seen as `size` bytes."""

    def __init__(self, device: BlockDevice, *, read_only: bool = False, timeout: float = 30.0) -> None:
        self.device = device
        info = device.query()
        self.info = info
        self.block_size = bs = info.block_size
        self.size = info.block_count * bs
        self.read_only = read_only or bool(info.flags & BlockFlag.READONLY)
        self.fua_native = info.fua_supported
        self.trim_supported = info.trim_supported
        mts = info.max_transfer_size
        self._max_blocks = (1 << 62) if mts == MAX_TRANSFER_UNBOUNDED else max(1, mts // bs)
        self.timeout = timeout
        self._rmw = threading.Lock()

    def aligned(self, offset: int, length: int) -> bool:
        return offset % self.block_size == 0 and length % self.block_size == 0

    # --- asynchronous, the hot path -----------------------------------------------------------------
    def read(self, offset: int, length: int, done: ReadDone) -> None:
        """Read [offset, offset + length) into a new array; `done(status, array)` runs on any thread."""
        bs = self.block_size
        first, end = offset // bs, -(-(offset + length) // bs)
        buf = np.empty((end - first) * bs, dtype=np.uint8)
        lo = offset - first * bs

        def finish(status: BlockStatus) -> None:
            done(status, buf[lo:lo + length] if status is BlockStatus.OK else None)

        self._blocks(BlockCommand.READ, first, end - first, Vmo(buf), OpFlag.NONE, finish)

    def write(self, offset: int, data: np.ndarray, fua: bool, done: WriteDone) -> None:
        """Write `data` (uint8) at `offset`; `done(status)` after it (and its FUA flush) completed."""
        if not self.aligned(offset, data.size):
            done(self._write_unaligned(offset, data, fua))
            return
        flags = OpFlag.FORCE_ACCESS if fua and self.fua_native else OpFlag.NONE

        def finish(status: BlockStatus) -> None:
            if status is BlockStatus.OK and fua and not self.fua_native:
                self.device.queue(BlockOp(BlockCommand.FLUSH), lambda s, _op: done(_flushed(s)))
            else:
                done(status)

        self._blocks(BlockCommand.WRITE, offset // self.block_size, data.size // self.block_size, Vmo(data),
                     flags, finish)

    def _blocks(self, command: BlockCommand, first: int, count: int, vmo: Vmo, flags: OpFlag,
                finish: WriteDone) -> None:
        step = self._max_blocks
        if count <= step:  # one op, the usual case: no counting
            self.device.queue(BlockOp(command, count, first, 0, vmo, flags),
                              lambda status, _op: finish(status if status is BlockStatus.OK else BlockStatus(status)))
            return
        starts = range(0, count, step)
        parts = _Parts(len(starts), finish)
        for done in starts:
            n = min(step, count - done)
            self.device.queue(BlockOp(command, n, first + done, done, vmo, flags), parts)

    def extents(self, offset: int, length: int) -> list[tuple[int, ExtentFlag]]:
        """Consecutive (bytes, flags) covering [offset, offset + length): the device's extents, clipped to the
        range (a block only partly inside it counts whole). A device that answers wrongly (a gap, an
        overlap) is reported and taken as allocated."""
        bs = self.block_size
        first, end = offset // bs, -(-(offset + length) // bs)
        found: list[tuple[int, ExtentFlag]] = []
        pos = offset
        try:
            for ext in self.device.extents(first, end - first):
                a, b = max(ext.offset * bs, offset), min((ext.offset + ext.length) * bs, offset + length)
                if a != pos or b <= a:
                    raise ValueError(f"extent {ext} does not continue at byte {pos}")
                flags = ExtentFlag(ext.flags)
                if found and found[-1][1] == flags:
                    found[-1] = (found[-1][0] + b - a, flags)
                else:
                    found.append((b - a, flags))
                pos = b
            if pos != offset + length:
                raise ValueError(f"extents end at byte {pos}, not {offset + length}")
        except Exception as exc:  # the device's bug (or it went away): say so, claim nothing
            log.warning("extents of bytes [%d, +%d): %s; reporting them allocated", offset, length, exc)
            return [(length, ExtentFlag.NONE)]
        return found

    # --- synchronous, the rare paths -----------------------------------------------------------------
    def _run(self, op: BlockOp) -> BlockStatus:
        return run_op(self.device, op, self.timeout)

    def _run_blocks(self, command: BlockCommand, first: int, count: int, vmo: Vmo | None,
                    flags: OpFlag = OpFlag.NONE) -> BlockStatus:
        step = self._max_blocks
        for done in range(0, count, step):
            status = self._run(BlockOp(command, min(step, count - done), first + done, done, vmo, flags))
            if status is not BlockStatus.OK:
                return status
        return BlockStatus.OK

    def _write_unaligned(self, offset: int, data: np.ndarray, fua: bool) -> BlockStatus:
        bs = self.block_size
        first, end = offset // bs, -(-(offset + data.size) // bs)
        buf = np.empty((end - first) * bs, dtype=np.uint8)
        lo = offset - first * bs
        with self._rmw:
            status = self._run_blocks(BlockCommand.READ, first, end - first, Vmo(buf))
            if status is BlockStatus.OK:
                buf[lo:lo + data.size] = data
                status = self._run_blocks(BlockCommand.WRITE, first, end - first, Vmo(buf))
        return self._after_write(status, fua)

    def _after_write(self, status: BlockStatus, fua: bool) -> BlockStatus:
        if status is BlockStatus.OK and fua:
            return self.flush()
        return status

    def flush(self) -> BlockStatus:
        """FLUSH; a device that has no FLUSH has nothing volatile to flush."""
        return _flushed(self._run(BlockOp(BlockCommand.FLUSH)))

    def write_zeroes(self, offset: int, length: int, fua: bool) -> BlockStatus:
        """Write zeroes (never a hole-punching TRIM, whose result is the device's business)."""
        zeros = np.zeros(min(length, ZERO_CHUNK), dtype=np.uint8)
        bs = self.block_size
        pos, end = offset, offset + length
        while pos < end:
            if pos % bs:  # up to the next block boundary
                n = min(end - pos, bs - pos % bs)
            else:
                n = min(end - pos, ZERO_CHUNK)
                if n >= bs:
                    n -= n % bs
            if pos % bs or n % bs:
                status = self._write_unaligned(pos, zeros[:n], False)
            else:
                status = self._run_blocks(BlockCommand.WRITE, pos // bs, n // bs, Vmo(zeros[:n]))
            if status is not BlockStatus.OK:
                return status
            pos += n
        return self._after_write(BlockStatus.OK, fua)

    def trim(self, offset: int, length: int, fua: bool) -> BlockStatus:
        """Discard the whole blocks inside the range. A hint: a device without TRIM ignores it."""
        bs = self.block_size
        first, end = -(-offset // bs), (offset + length) // bs
        if not self.trim_supported or end <= first:
            return BlockStatus.OK
        status = self._run_blocks(BlockCommand.TRIM, first, end - first, None)
        if status is BlockStatus.NOT_SUPPORTED:
            return BlockStatus.OK
        return self._after_write(status, fua)


def _flushed(status: BlockStatus) -> BlockStatus:
    return BlockStatus.OK if status is BlockStatus.NOT_SUPPORTED else BlockStatus(status)
