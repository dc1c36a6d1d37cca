"""UblkServer: any BlockDevice as /dev/ublkbN, under the Linux kernel's own block layer (ublk_drv, 6.0+).

The control commands (ADD_DEV, SET_PARAMS, START_DEV, STOP_DEV, DEL_DEV_ASYNC) go to /dev/ublk-control as
io_uring URING_CMDs in an SQE128 ring (ublk_control.py). Each queue has a thread owning its own ring on
/dev/ublkcN (ublk_queue.py); this module maps each request the kernel hands over to a device op.

Data moves with UBLK_F_USER_COPY: the server pread()s a write's data from /dev/ublkcN at the request's
user-copy offset straight into the tag's buffer, and pwrite()s a read's data from it, and that buffer is the
device's own DMA memory where the device has a pool (virtio-blk), so its driver uses it in place. The
kernel does the one copy between the request's pages and the buffer; the server itself copies nothing
(`stats.bytes_copied` stays 0; `bytes_copied` adds the device's own bounce copies, as the FIFO server does).

`stop()` fails the requests still pending with EIO; `stop(drain=True)` lets them complete. No
UBLK_F_USER_RECOVERY: when the server dies, the kernel cancels its commands and fails every request
with an I/O error; `delete_device(dev_id)` then removes what is left (see docs/ublk.md).
"""

from __future__ import annotations

import ctypes
import errno
import logging
import mmap
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from drivers.block.protocol import BlockCommand, BlockDevice, BlockFlag, BlockInfo, BlockOp, BlockStatus, OpFlag, Vmo

from . import ublk_cmd as U
from .session import device_bytes_copied
from .ublk_control import Control, UblkError, delete_device, device_info
from .ublk_queue import DRAIN_TIMEOUT, FAIL_TIMEOUT, UblkQueue

__all__ = ["UblkError", "UblkServer", "UblkStats", "delete_device", "device_info"]

log = logging.getLogger(__name__)

MAX_QUEUE_DEPTH = 64
DEFAULT_MAX_IO = 128 << 10  # bytes per request (and per tag buffer)
_NODE_TIMEOUT = 10.0  # seconds for /dev/ublkcN to appear after ADD_DEV


@dataclass
class UblkStats:
    requests: int = 0
    errors: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    bytes_copied: int = 0  # by the server itself: with USER_COPY it has nothing to copy, so this stays 0
    committed: int = 0  # results handed to the kernel: each request's exactly once
    aborted: int = 0  # requests a clean stop failed with EIO (included in `errors`)


def _errno_of(status: BlockStatus) -> int:
    return {BlockStatus.ACCESS_DENIED: errno.EPERM, BlockStatus.OUT_OF_RANGE: errno.EINVAL,
            BlockStatus.INVALID_ARGS: errno.EINVAL, BlockStatus.NOT_SUPPORTED: errno.EOPNOTSUPP,
            BlockStatus.IO_NOT_PRESENT: errno.ENODEV}.get(status, errno.EIO)


class UblkServer:
    """Serves `device` as /dev/ublkb<dev_id> until `stop()`; `start()` returns once the disk exists."""

    def __init__(self, device: BlockDevice, *, queue_depth: int = MAX_QUEUE_DEPTH, dev_id: int = -1,
                 read_only: bool = False, max_io_bytes: int = DEFAULT_MAX_IO) -> None:
        if not 1 <= queue_depth <= MAX_QUEUE_DEPTH:
            raise ValueError(f"queue_depth {queue_depth}: must be 1..{MAX_QUEUE_DEPTH}")
        info = device.query()
        if info.block_size & (info.block_size - 1) or not 512 <= info.block_size <= mmap.PAGESIZE:
            raise ValueError(f"block size {info.block_size}: ublk takes a power of two from 512 to "
                             f"{mmap.PAGESIZE} bytes")
        self.device = device
        self.info: BlockInfo = info
        self.queue_depth = queue_depth
        self.read_only = read_only or bool(info.flags & BlockFlag.READONLY)
        limit = min(max_io_bytes, info.max_transfer_size)
        self.max_io_bytes = limit - limit % mmap.PAGESIZE
        if self.max_io_bytes < mmap.PAGESIZE:
            raise ValueError(f"max transfer {limit} bytes: ublk needs at least one page per request")
        self.dev_id = dev_id
        self.stats = UblkStats()
        self.stopping = threading.Event()
        self.aborting = False
        self.failing_since = 0.0  # monotonic time a clean stop began failing the pending requests
        self._pool = getattr(device, "pool", None)
        self._buffers: list[object] = []
        self._control: Control | None = None
        self._cdev = -1
        self._queue: UblkQueue | None = None
        self._added = False
        self._lock = threading.Lock()
        self._stats_lock = threading.Lock()  # completions arrive on the device's threads

    @property
    def path(self) -> str:
        """The block device node, /dev/ublkb<dev_id>."""
        return f"/dev/ublkb{self.dev_id}"

    @property
    def bytes_copied(self) -> int:
        """Bytes the server copied (none) plus the driver's own bounce copies when it reports them."""
        return self.stats.bytes_copied + device_bytes_copied(self.device)

    def tag_buffer(self) -> Vmo:
        """A request buffer: the device's DMA memory when it has a pool (its driver then uses it in place)."""
        if self._pool is not None:
            buf = self._pool.alloc(self.max_io_bytes, mmap.PAGESIZE, name="ublk-tag")
            self._buffers.append(buf)
            return Vmo(buf, buf.dma_addr)
        return Vmo(np.zeros(self.max_io_bytes, dtype=np.uint8))

    # --- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> UblkServer:
        if self._control is not None or self.stopping.is_set():
            raise RuntimeError("the ublk server is already running" if self._control is not None else
                               "a stopped ublk server cannot start again: make a new UblkServer")
        self._control = control = Control()
        try:
            dev = U.CtrlDevInfo(nr_hw_queues=1, queue_depth=self.queue_depth, max_io_buf_bytes=self.max_io_bytes,
                                dev_id=self.dev_id & 0xFFFF_FFFF, flags=U.F_USER_COPY | U.F_CMD_IOCTL_ENCODE)
            control.command(U.CMD_ADD_DEV, "ADD_DEV", self.dev_id, buf=dev)
            self.dev_id, self._added = dev.dev_id, True
            if not dev.flags & U.F_USER_COPY:
                raise UblkError(errno.EOPNOTSUPP, "this kernel's ublk has no UBLK_F_USER_COPY (Linux 6.5+)")
            control.command(U.CMD_SET_PARAMS, "SET_PARAMS", self.dev_id, buf=self._params())
            self._cdev = self._open_char_device()
            self._queue = queue = UblkQueue(self, 0, self._cdev)
            queue.thread.start()
            if not queue.ready.wait(_NODE_TIMEOUT) or queue.error is not None:
                raise UblkError(errno.EIO, f"ublk device {self.dev_id}: queue 0 did not start: {queue.error}")
            control.command(U.CMD_START_DEV, "START_DEV", self.dev_id, data=os.getpid())
        except BaseException:
            self._teardown()
            raise
        return self

    def _params(self) -> U.Params:
        info, bs_shift = self.info, self.info.block_size.bit_length() - 1
        p = U.Params(len=ctypes.sizeof(U.Params), types=U.PARAM_TYPE_BASIC)
        b = p.basic
        b.attrs = U.ATTR_VOLATILE_CACHE | (U.ATTR_READ_ONLY if self.read_only else 0) \
            | (U.ATTR_FUA if info.fua_supported else 0)
        b.logical_bs_shift = bs_shift
        b.physical_bs_shift = max(bs_shift, (info.physical_block_size or info.block_size).bit_length() - 1)
        b.io_min_shift = max(bs_shift, (info.min_io_size or info.block_size).bit_length() - 1)
        b.io_opt_shift = max(bs_shift, (info.opt_io_size or info.block_size).bit_length() - 1)
        b.max_sectors = self.max_io_bytes >> U.SECTOR_SHIFT
        b.dev_sectors = info.size >> U.SECTOR_SHIFT
        if info.trim_supported and not self.read_only:
            p.types |= U.PARAM_TYPE_DISCARD
            d = p.discard
            d.discard_granularity = info.block_size
            d.max_discard_sectors = d.max_write_zeroes_sectors = self.max_io_bytes >> U.SECTOR_SHIFT
            d.max_discard_segments = 1
        return p

    def _open_char_device(self) -> int:
        path, deadline = f"/dev/ublkc{self.dev_id}", time.monotonic() + _NODE_TIMEOUT
        while True:
            try:
                return os.open(path, os.O_RDWR | os.O_CLOEXEC)
            except FileNotFoundError:
                if time.monotonic() > deadline:
                    raise UblkError(errno.ENOENT, f"{path} did not appear within {_NODE_TIMEOUT:g} s") from None
                time.sleep(0.01)

    def stop(self, *, drain: bool = False) -> None:
        """The clean stop: every request not yet answered fails with EIO (the device sees no new op; what
        it holds fails when it completes, or after `FAIL_TIMEOUT` if it does not), STOP_DEV deletes the
        disk, DEL_DEV_ASYNC the device. Later I/O on descriptors still open fails too.

        `drain=True` instead lets the requests in flight (and those the kernel still dispatches while it
        deletes the disk) complete normally first; after `DRAIN_TIMEOUT` it fails what is left as above."""
        with self._lock:
            if self._control is None:
                return
            timer = None
            try:
                queue = self._queue
                if queue is not None:
                    if drain:
                        timer = threading.Timer(DRAIN_TIMEOUT, self._fail_pending, (queue, FAIL_TIMEOUT + 1))
                    else:
                        self._fail_pending(queue)
                        timer = threading.Timer(FAIL_TIMEOUT + 0.1, queue.wake)  # recheck what the device holds
                    timer.daemon = True
                    timer.start()
                if self._added:
                    try:
                        self._control.command(U.CMD_STOP_DEV, "STOP_DEV", self.dev_id)
                    except UblkError as exc:
                        log.warning("%s", exc)
            finally:
                if timer is not None:
                    timer.cancel()
                self._teardown()

    def _fail_pending(self, queue: UblkQueue, held_for: float = 0.0) -> None:
        """From now on answer every pending request EIO; `held_for`: count the device's ops as held that long
        already (so the queue fails those at once too)."""
        self.failing_since = time.monotonic() - held_for
        queue.wake()  # commit what the device already finished, as failures

    def count_abort(self) -> None:
        with self._stats_lock:
            self.stats.aborted += 1
            self.stats.errors += 1

    def _teardown(self) -> None:
        self.stopping.set()
        self.aborting = True
        queue, self._queue = self._queue, None
        if queue is not None:
            if queue.thread.is_alive():
                os.eventfd_write(queue.event, 1)
                queue.thread.join(DRAIN_TIMEOUT + 5)
            if queue.thread.is_alive():  # the device never completed what it holds: keep what it may still use
                log.error("ublk device %d: queue thread still running; leaving its ring and buffers", self.dev_id)
                self._buffers.clear()
            else:
                queue.close()  # closing the ring cancels the fetches still in the kernel
                if queue.abandoned:  # the device may still use the tag buffers: leave them to it
                    self._buffers.clear()
        if self._cdev >= 0:
            os.close(self._cdev)
            self._cdev = -1
        control, self._control = self._control, None
        if control is not None:
            try:
                if self._added:  # DEL_DEV would wait for every opener of the dead disk to close it
                    control.command(U.CMD_DEL_DEV_ASYNC, "DEL_DEV_ASYNC", self.dev_id)
                    self._added = False
            finally:
                control.close()
        for buf in self._buffers:
            if self._pool is not None and not getattr(buf, "freed", True) and not self._pool.closed:
                self._pool.free(buf)
        self._buffers.clear()
        if queue is not None and queue.error is not None:
            raise UblkError(errno.EIO, f"ublk device {self.dev_id}: queue 0 failed: {queue.error!r}")

    def serve_until(self, stop: threading.Event, poll: float = 0.25, *, drain: bool = False) -> None:
        """Serve until `stop` is set (or the queue ends because the kernel removed the device), then
        stop(drain=drain)."""
        try:
            while not stop.wait(poll):
                queue = self._queue
                if queue is None or not queue.thread.is_alive():
                    break
        finally:
            self.stop(drain=drain)

    def __enter__(self) -> UblkServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- requests (queue thread) -------------------------------------------------------------------------
    def handle(self, queue: UblkQueue, tag: int, op_flags: int, nr_sectors: int, start_sector: int) -> None:
        """Start the device op for request `tag`; its result reaches `queue.complete` exactly once."""
        op, bs = op_flags & 0xFF, self.info.block_size
        nbytes, offset = nr_sectors << U.SECTOR_SHIFT, start_sector << U.SECTOR_SHIFT
        with self._stats_lock:
            self.stats.requests += 1
        if self.failing_since:  # a clean stop: the device sees nothing more
            self.count_abort()
            queue.complete(tag, -errno.EIO)
            return
        vmo = queue.vmos[tag]
        where = U.user_copy_offset(queue.q_id, tag)
        finish: Callable[[BlockStatus, BlockOp], None]
        if op == U.IO_OP_FLUSH:
            block_op = BlockOp(BlockCommand.FLUSH)
            finish = self._finisher(queue, tag, 0)
        elif op in (U.IO_OP_READ, U.IO_OP_WRITE, U.IO_OP_DISCARD, U.IO_OP_WRITE_ZEROES):
            if nbytes == 0 or nbytes % bs or offset % bs or (op <= U.IO_OP_WRITE and nbytes > vmo.size):
                self._fail(queue, tag, errno.EINVAL)
                return
            length, first = nbytes // bs, offset // bs
            if op == U.IO_OP_READ:
                block_op = BlockOp(BlockCommand.READ, length, first, 0, vmo)
                finish = self._read_finisher(queue, tag, vmo, nbytes, where)
            elif op == U.IO_OP_WRITE:
                try:
                    got = os.preadv(queue.cdev, [vmo.array.data[:nbytes]], where)
                except OSError as exc:
                    self._fail(queue, tag, exc.errno or errno.EIO)
                    return
                if got != nbytes:
                    self._fail(queue, tag, errno.EIO)
                    return
                flags = OpFlag.FORCE_ACCESS if op_flags & U.IO_F_FUA else OpFlag.NONE
                block_op = BlockOp(BlockCommand.WRITE, length, first, 0, vmo, flags)
                finish = self._finisher(queue, tag, nbytes, written=nbytes)
            else:
                if not self.info.trim_supported:
                    self._fail(queue, tag, errno.EOPNOTSUPP)
                    return
                block_op = BlockOp(BlockCommand.TRIM, length, first)
                finish = self._finisher(queue, tag, 0)
        else:
            self._fail(queue, tag, errno.EOPNOTSUPP)
            return
        try:
            self.device.queue(block_op, finish)
        except Exception:
            log.exception("ublk device %d: the device raised on %s", self.dev_id, block_op.command.name)
            self._fail(queue, tag, errno.EIO)

    def _fail(self, queue: UblkQueue, tag: int, err: int) -> None:
        with self._stats_lock:
            self.stats.errors += 1
        queue.complete(tag, -err)

    def _finisher(self, queue: UblkQueue, tag: int, result: int, *,
                  written: int = 0) -> Callable[[BlockStatus, BlockOp], None]:
        def done(status: BlockStatus, _op: BlockOp) -> None:
            if status is BlockStatus.OK:
                with self._stats_lock:
                    self.stats.bytes_written += written
                queue.complete(tag, result)
            else:
                self._fail(queue, tag, _errno_of(BlockStatus(status)))
        return done

    def _read_finisher(self, queue: UblkQueue, tag: int, vmo: Vmo, nbytes: int,
                       where: int) -> Callable[[BlockStatus, BlockOp], None]:
        def done(status: BlockStatus, _op: BlockOp) -> None:
            if status is not BlockStatus.OK:
                self._fail(queue, tag, _errno_of(BlockStatus(status)))
                return
            if self.failing_since:  # a clean stop fails it anyway: the kernel gets no data
                queue.complete(tag, 0)
                return
            try:
                put = os.pwrite(queue.cdev, vmo.array.data[:nbytes], where)
            except OSError as exc:
                self._fail(queue, tag, exc.errno or errno.EIO)
                return
            with self._stats_lock:
                self.stats.bytes_read += put
            queue.complete(tag, put if put == nbytes else -errno.EIO)
        return done
