"""RAM-disk: a BlockDevice over host memory, after Fuchsia's ramdisk example.

It is the in-process ceiling for block benchmarks and the device the FIFO/NBD servers serve in tests. It
validates every op exactly as `protocol.validate` does, zeroes blocks on TRIM, and after `unbind()` completes
every op (queued or new) with IO_NOT_PRESENT.

Completion model: without a worker, `queue()` completes the op before it returns, on the caller's thread.
With `worker=True` one worker thread completes ops in queue order (so a FLUSH completes after every op queued
before it); `queue()` only enqueues. Either way `queue()` may be called from several threads at once.

`flags` are advertised as given: pass TRIM_SUPPORT (TRIM always works here) and FUA_SUPPORT (a completed write
is already as durable as RAM gets) when servers should rely on them.

`extents()` reports blocks never written, or trimmed since, as holes (HOLE | ZERO): the disk keeps one flag per
block. A hole whose bytes were changed behind the protocol's back (through `ramdisk.data`) counts as data.

`inject_io_error(offset, length)` marks blocks bad (ops touching them complete IO) so servers can test error
paths.
"""

from __future__ import annotations

import logging
import queue as queue_mod
import threading
from typing import Any

import numpy as np

from mmiotk.bus import Device

from .driver import BlockDriver
from .protocol import (
    MAX_TRANSFER_UNBOUNDED,
    BlockCommand,
    BlockDevice,
    BlockFlag,
    BlockInfo,
    BlockOp,
    BlockStatus,
    Completion,
    Extent,
    check_extent_range,
    extents_of,
    validate,
)

COMPATIBLE = "mmiotk,ramdisk"
log = logging.getLogger(__name__)
_POLL = 0.1  # seconds the worker waits for work before checking for unbind


class RamDisk(BlockDevice):
    """`size` bytes in `block_size`-byte blocks, held in a numpy array (`ramdisk.data`)."""

    def __init__(self, size: int, block_size: int = 512, flags: BlockFlag = BlockFlag.NONE, *,
                 max_transfer_size: int = MAX_TRANSFER_UNBOUNDED, worker: bool = False,
                 name: str = "ramdisk") -> None:
        if not isinstance(block_size, int) or block_size <= 0 or block_size & (block_size - 1):
            raise ValueError(f"RamDisk {name!r}: block_size must be a positive power of two, "
                             f"got {block_size!r}")
        if not isinstance(size, int) or size <= 0 or size % block_size:
            raise ValueError(f"RamDisk {name!r}: size must be a positive multiple of block_size "
                             f"{block_size}, got {size!r}")
        if not isinstance(max_transfer_size, int) or max_transfer_size < block_size:
            raise ValueError(f"RamDisk {name!r}: max_transfer_size {max_transfer_size!r} is smaller than one "
                             f"{block_size}-byte block")
        try:
            flags = BlockFlag(flags)
        except ValueError:
            raise ValueError(f"RamDisk {name!r}: unknown flags {flags!r}") from None
        self.name = name
        self.data = np.zeros(size, dtype=np.uint8)
        self._info = BlockInfo(size // block_size, block_size, max_transfer_size, flags)
        self._bad = np.zeros(size // block_size, dtype=bool)
        self._any_bad = False  # some block is marked bad (else ops skip looking)
        self._written = np.zeros(size // block_size, dtype=bool)  # False: a hole (never written, or trimmed)
        self._dead = False
        self._lock = threading.Lock()  # serialises data copies against unbind and fault injection
        self._queue: queue_mod.SimpleQueue[tuple[BlockOp, Completion]] | None = None
        self._worker: threading.Thread | None = None
        if worker:
            self._queue = queue_mod.SimpleQueue()
            self._worker = threading.Thread(target=self._run, name=f"{name}-worker", daemon=True)
            self._worker.start()

    # --- the block protocol ---------------------------------------------------------------------------
    def query(self) -> BlockInfo:
        return self._info

    def queue(self, op: BlockOp, completion: Completion) -> None:
        if self._queue is None or self._dead:
            completion(self._execute_safely(op), op)
            return
        self._queue.put((op, completion))
        if self._dead:  # unbind raced with the put: make sure nothing is left behind
            self._drain()

    def extents(self, offset: int, length: int) -> list[Extent]:
        check_extent_range(self._info, offset, length)
        bs = self._info.block_size
        with self._lock:
            holes = ~self._written[offset:offset + length]
            where = np.flatnonzero(holes)
            if where.size:  # a hole must still read as zeroes (ramdisk.data is writable by anyone)
                blocks = self.data[offset * bs:(offset + length) * bs].reshape(-1, bs)
                holes[where[blocks[where].any(axis=1)]] = False
        return extents_of(holes, offset)

    # --- lifecycle ------------------------------------------------------------------------------------
    @property
    def dead(self) -> bool:
        return self._dead

    def unbind(self, timeout: float = 5.0) -> None:
        """The device goes away: queued and later ops complete IO_NOT_PRESENT. Safe to call twice."""
        with self._lock:
            self._dead = True
        worker = self._worker
        if worker is not None and worker is not threading.current_thread():
            worker.join(timeout)
            if worker.is_alive():
                raise TimeoutError(f"RamDisk {self.name!r}: worker did not stop within {timeout} s")
        self._drain()

    close = unbind

    def inject_io_error(self, offset: int, length: int, bad: bool = True) -> None:
        """Mark blocks [offset, offset + length) bad (ops touching them complete IO), or good again."""
        count = self._info.block_count
        if not (isinstance(offset, int) and isinstance(length, int)) or offset < 0 or length <= 0 \
                or offset + length > count:
            raise ValueError(f"RamDisk {self.name!r}: blocks [{offset!r}, +{length!r}) are outside the "
                             f"{count}-block disk")
        with self._lock:
            self._bad[offset:offset + length] = bad
            self._any_bad = bool(self._bad.any())

    # --- internals ------------------------------------------------------------------------------------
    def _execute_safely(self, op: BlockOp) -> BlockStatus:
        """`_execute`, with a failure the checks did not foresee reported and turned into IO."""
        try:
            return self._execute(op)
        except Exception:
            log.exception("RamDisk %r: a %s op failed unexpectedly", self.name, _command_name(op))
            return BlockStatus.IO

    def _complete(self, completion: Completion, status: BlockStatus, op: BlockOp) -> None:
        """Call a completion from the worker; one that raises is reported, and the worker carries on."""
        try:
            completion(status, op)
        except Exception:
            log.exception("RamDisk %r: the completion of a %s op raised", self.name, _command_name(op))

    def _execute(self, op: BlockOp) -> BlockStatus:
        if self._dead:
            return BlockStatus.IO_NOT_PRESENT
        info = self._info
        status = validate(info, op)
        if status is not None:
            return status
        if op.command is BlockCommand.FLUSH:
            return BlockStatus.OK  # RAM is as durable as it gets; ordering comes from the worker's FIFO
        bs = info.block_size
        dev = slice(op.offset_dev * bs, (op.offset_dev + op.length) * bs)
        with self._lock:
            if self._dead:
                return BlockStatus.IO_NOT_PRESENT
            if self._any_bad and self._bad[op.offset_dev:op.offset_dev + op.length].any():
                return BlockStatus.IO
            if op.command is BlockCommand.TRIM:
                self.data[dev] = 0
                self._written[op.offset_dev:op.offset_dev + op.length] = False
                return BlockStatus.OK
            assert op.vmo is not None  # validate() checked it
            mem = op.vmo.array[op.offset_vmo * bs:(op.offset_vmo + op.length) * bs]
            if op.command is BlockCommand.READ:
                mem[:] = self.data[dev]
            else:
                self.data[dev] = mem
                self._written[op.offset_dev:op.offset_dev + op.length] = True
        return BlockStatus.OK

    def _run(self) -> None:
        assert self._queue is not None
        while not self._dead:
            try:
                op, completion = self._queue.get(timeout=_POLL)
            except queue_mod.Empty:
                continue
            self._complete(completion, self._execute_safely(op), op)
        self._drain()

    def _drain(self) -> None:
        if self._queue is None:
            return
        while True:
            try:
                op, completion = self._queue.get_nowait()
            except queue_mod.Empty:
                return
            self._complete(completion, BlockStatus.IO_NOT_PRESENT, op)


def _command_name(op: BlockOp) -> str:
    return getattr(op.command, "name", "malformed")


_FLAG_PROPERTIES = {"readonly": BlockFlag.READONLY, "removable": BlockFlag.REMOVABLE,
                    "bootpart": BlockFlag.BOOTPART, "trim": BlockFlag.TRIM_SUPPORT, "fua": BlockFlag.FUA_SUPPORT}


def bool_property(props: dict[str, Any], key: str, owner: str, default: bool = False) -> bool:
    """A board property that must be a boolean: `readonly: "false"` is an error, not a true string."""
    value = props.get(key, default)
    if not isinstance(value, bool):
        raise ValueError(f"{owner}: property {key!r} must be true or false (a YAML/JSON boolean), "
                         f"got {value!r}")
    return value


def int_property(props: dict[str, Any], key: str, owner: str, default: int | None = None) -> int:
    """A board property that must be an integer (not a bool, float or string)."""
    value = props.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{owner}: property {key!r} must be an integer, got {value!r}")
    return value


def ramdisk_from_properties(props: dict[str, Any], name: str = "ramdisk") -> RamDisk:
    """Build a RamDisk from a board node's properties.

    Keys: `size` (bytes, required), `block-size` (default 512), `readonly`/`removable`/`bootpart` (bool),
    `trim`/`fua` (bool: advertise TRIM_SUPPORT / FUA_SUPPORT), `max-transfer-size` (bytes), `worker`
    (bool). Unknown keys are an error, naming the key.
    """
    known = {"size", "block-size", "max-transfer-size", "worker", "compatible", *_FLAG_PROPERTIES}
    unknown = sorted(set(props) - known)
    if unknown:
        raise ValueError(f"ramdisk {name!r}: unknown properties {unknown} (known: {sorted(known)})")
    if "size" not in props:
        raise ValueError(f"ramdisk {name!r}: the 'size' property (bytes) is required")
    owner = f"ramdisk {name!r}"
    flags = BlockFlag.NONE
    for key, flag in _FLAG_PROPERTIES.items():
        if bool_property(props, key, owner):
            flags |= flag
    return RamDisk(int_property(props, "size", owner), int_property(props, "block-size", owner, 512), flags,
                   max_transfer_size=int_property(props, "max-transfer-size", owner, MAX_TRANSFER_UNBOUNDED),
                   worker=bool_property(props, "worker", owner), name=name)


class RamDiskDriver(BlockDriver[RamDisk]):
    """The bus driver for board nodes `compatible: mmiotk,ramdisk`; the bound driver is the BlockDevice.

    The node's `properties` configure the disk (see `ramdisk_from_properties`); it needs no MMIO. On unbind
    every op completes IO_NOT_PRESENT, as does every op on a driver that was never bound.
    """

    compatible = (COMPATIBLE,)

    def bind(self, device: Device) -> None:
        self.block = ramdisk_from_properties(device.properties, name=device.name)
