"""The block protocol every block device speaks, after Fuchsia's block_impl (RAM-disk example).

`query()` describes the device; `queue(op, completion)` starts one operation and calls
`completion(status, op)` exactly once — before `queue` returns or later, from any thread;
`queue_many(ops, completion)` is `queue` for each op in order, which a device may do in one pass (one lock
hold and one doorbell, as Linux's blk-mq `queue_rqs` hands a driver a whole plug list). Lengths and
offsets count blocks. Buffers are `Vmo`s (after Fuchsia's VMOs): a byte array and, when it lives in memory
the device can reach by DMA, its device-visible address, so drivers can use it in place (zero-copy).
The synchronous helpers `read_blocks`, `write_blocks` and `flush` wait with a timeout and raise
`BlockError` naming the status. `extents(offset, length)` says which blocks hold data (after SEEK_DATA/
SEEK_HOLE), so exports can report holes (NBD's base:allocation); a device that cannot tell keeps the default,
which reports everything allocated.
"""

from __future__ import annotations

import enum
import operator
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

MAX_TRANSFER_UNBOUNDED = 0xFFFF_FFFF
DEFAULT_TIMEOUT = 30.0


class BlockFlag(enum.IntFlag):
    NONE = 0
    READONLY = 0x1
    REMOVABLE = 0x2
    BOOTPART = 0x4
    TRIM_SUPPORT = 0x8  # the device implements TRIM
    FUA_SUPPORT = 0x10  # FORCE_ACCESS is native; without it a flush after the write emulates it


class BlockCommand(enum.IntEnum):
    READ = 1
    WRITE = 2
    FLUSH = 3
    TRIM = 4


class OpFlag(enum.IntFlag):
    NONE = 0
    FORCE_ACCESS = 0x4  # the write is durable when it completes (FUA, or emulated by a flush)


class BlockStatus(enum.IntEnum):
    OK = 0
    OUT_OF_RANGE = 1
    NOT_SUPPORTED = 2
    IO_NOT_PRESENT = 3
    IO = 4
    ACCESS_DENIED = 5
    INVALID_ARGS = 6


class ExtentFlag(enum.IntFlag):
    """What an extent is, as NBD's base:allocation states say it (the same bits)."""

    NONE = 0  # allocated (or the device cannot tell)
    HOLE = 0x1  # not allocated in the backing store (never written, or trimmed)
    ZERO = 0x2  # reads as zeroes


@dataclass(frozen=True)
class Extent:
    """Blocks [offset, offset + length) that share `flags`."""

    offset: int
    length: int
    flags: ExtentFlag = ExtentFlag.NONE


@dataclass(frozen=True)
class BlockInfo:
    """What a block device is. The topology fields are bytes, 0 where the device does not say
    (physical_block_size: the unit the medium writes atomically; I/O aligned to it at alignment_offset,
    in multiples of min_io_size, up to opt_io_size, goes fastest; virtio-blk's VIRTIO_BLK_F_TOPOLOGY)."""

    block_count: int
    block_size: int
    max_transfer_size: int = MAX_TRANSFER_UNBOUNDED  # bytes
    flags: BlockFlag = BlockFlag.NONE
    physical_block_size: int = 0
    alignment_offset: int = 0
    min_io_size: int = 0
    opt_io_size: int = 0

    @property
    def size(self) -> int:
        return self.block_count * self.block_size

    @property
    def trim_supported(self) -> bool:
        return bool(self.flags & BlockFlag.TRIM_SUPPORT)

    @property
    def fua_supported(self) -> bool:
        """FORCE_ACCESS is native; otherwise servers emulate it with a flush after the write."""
        return bool(self.flags & BlockFlag.FUA_SUPPORT)


class Vmo:
    """A buffer a block op reads into or writes from: `array` (uint8) and, if DMA-able, `dma_addr`."""

    def __init__(self, array: np.ndarray | bytearray | memoryview, dma_addr: int | None = None) -> None:
        arr = np.frombuffer(array, dtype=np.uint8) if not isinstance(array, np.ndarray) else array
        if arr.dtype != np.uint8 or arr.ndim != 1 or not arr.flags.c_contiguous:
            raise ValueError(f"a Vmo needs a contiguous 1-D uint8 array, got {arr.dtype} shape {arr.shape}")
        self.array = arr
        self.dma_addr = dma_addr

    @property
    def size(self) -> int:
        return int(self.array.size)

    def __repr__(self) -> str:
        where = f" dma={self.dma_addr:#x}" if self.dma_addr is not None else ""
        return f"<Vmo {self.size} bytes{where}>"


@dataclass
class BlockOp:
    """One operation. `length`, `offset_dev` and `offset_vmo` count blocks; FLUSH uses none of them."""

    command: BlockCommand
    length: int = 0
    offset_dev: int = 0
    offset_vmo: int = 0
    vmo: Vmo | None = None
    flags: OpFlag = OpFlag.NONE
    cookie: Any = field(default=None, repr=False)  # the caller's, untouched

    def __post_init__(self) -> None:
        # A plain int names the command it equals (BlockOp(1, ...) is a READ); devices compare with `is`.
        if type(self.command) is not BlockCommand and isinstance(self.command, int) \
                and not isinstance(self.command, bool) and self.command in BlockCommand._value2member_map_:
            self.command = BlockCommand(self.command)


Completion = Callable[[BlockStatus, BlockOp], None]


class BlockError(Exception):
    """A synchronous block helper saw a status other than OK."""

    def __init__(self, status: BlockStatus, what: str) -> None:
        super().__init__(f"{what}: {status.name}")
        self.status = status


def _index(value: object) -> int | None:
    """`value` as a Python int (numpy integers included, so arithmetic cannot wrap), None if it is no
    integer (floats, bools, strings)."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        return None


def validate(info: BlockInfo, op: BlockOp) -> BlockStatus | None:
    """The checks every device makes before touching anything; None when the op may proceed.

    Commands are compared by identity, as devices do: only BlockCommand members are executed. Lengths and
    offsets must be integers (numpy integers are checked in Python ints, so 2**55 does not wrap)."""
    cmd = op.command
    if cmd is BlockCommand.FLUSH:
        return None
    if cmd is not BlockCommand.READ and cmd is not BlockCommand.WRITE and cmd is not BlockCommand.TRIM:
        return BlockStatus.NOT_SUPPORTED
    length, offset_dev, offset_vmo = _index(op.length), _index(op.offset_dev), _index(op.offset_vmo)
    if length is None or offset_dev is None or offset_vmo is None or not isinstance(op.flags, int):
        return BlockStatus.INVALID_ARGS
    if length <= 0 or offset_dev < 0 or offset_vmo < 0:
        return BlockStatus.INVALID_ARGS if length <= 0 else BlockStatus.OUT_OF_RANGE
    if offset_dev >= info.block_count or length > info.block_count - offset_dev:
        return BlockStatus.OUT_OF_RANGE
    nbytes = length * info.block_size
    if info.max_transfer_size != MAX_TRANSFER_UNBOUNDED and nbytes > info.max_transfer_size:
        return BlockStatus.OUT_OF_RANGE
    if cmd is not BlockCommand.TRIM:
        if not isinstance(op.vmo, Vmo):
            return BlockStatus.INVALID_ARGS
        if (offset_vmo + length) * info.block_size > op.vmo.size:
            return BlockStatus.OUT_OF_RANGE
    if cmd is not BlockCommand.READ and info.flags & BlockFlag.READONLY:
        return BlockStatus.ACCESS_DENIED
    return None


class BlockDevice(ABC):
    """What a block driver implements."""

    @abstractmethod
    def query(self) -> BlockInfo: ...

    @abstractmethod
    def queue(self, op: BlockOp, completion: Completion) -> None: ...

    def queue_many(self, ops: Sequence[BlockOp], completion: Completion) -> None:
        """`queue(op, completion)` for each op, in order. Devices whose per-request cost is mostly the call
        around it (a lock, a doorbell) override this to submit the whole batch at once."""
        queue = self.queue
        for op in ops:
            queue(op, completion)

    def wait_for(self, done: threading.Event, timeout: float) -> bool:
        """Wait until `done` is set or `timeout` passes. Devices that complete only when polled (no
        interrupt thread, e.g. virtio-blk in polling mode) override this to poll while they wait."""
        return done.wait(timeout)

    def extents(self, offset: int, length: int) -> list[Extent]:
        """Consecutive extents covering blocks [offset, offset + length), holes marked. This default is for
        devices that cannot tell: everything is allocated. Raises ValueError for a range off the device."""
        check_extent_range(self.query(), offset, length)
        return [Extent(offset, length)]


def check_extent_range(info: BlockInfo, offset: int, length: int) -> None:
    """The range an `extents` query names must be integers inside the device (ValueError naming it)."""
    first, count = _index(offset), _index(length)
    if first is None or count is None or first < 0 or count <= 0 or count > info.block_count - first:
        raise ValueError(f"extents of blocks [{offset!r}, +{length!r}): outside the {info.block_count}-block "
                         "device or not a positive whole number of blocks")


def extents_of(holes: np.ndarray, offset: int, hole_flags: ExtentFlag = ExtentFlag.HOLE | ExtentFlag.ZERO
               ) -> list[Extent]:
    """The extents of a per-block boolean array (True: a hole), starting at block `offset`."""
    if holes.size == 0:
        return []
    edges = np.flatnonzero(holes[1:] != holes[:-1]) + 1
    starts = np.concatenate(([0], edges))
    ends = np.concatenate((edges, [holes.size]))
    return [Extent(offset + int(a), int(b - a), hole_flags if holes[a] else ExtentFlag.NONE)
            for a, b in zip(starts, ends, strict=True)]


def run_op(device: BlockDevice, op: BlockOp, timeout: float = DEFAULT_TIMEOUT) -> BlockStatus:
    """Queue one op and wait for its completion (raises TimeoutError after `timeout` seconds)."""
    done = threading.Event()
    result: list[BlockStatus] = []

    def completion(status: BlockStatus, _op: BlockOp) -> None:
        result.append(BlockStatus(status))
        done.set()

    device.queue(op, completion)
    if not device.wait_for(done, timeout):
        raise TimeoutError(f"{op.command.name} of {op.length} blocks at block {op.offset_dev} did not "
                           f"complete within {timeout} s")
    return result[0]


def _check(status: BlockStatus, what: str) -> None:
    if status is not BlockStatus.OK:
        raise BlockError(status, what)


def read_blocks(device: BlockDevice, offset: int, count: int, timeout: float = DEFAULT_TIMEOUT) -> bytes:
    """Read `count` blocks starting at block `offset`."""
    info = device.query()
    vmo = Vmo(np.zeros(count * info.block_size, dtype=np.uint8))
    status = run_op(device, BlockOp(BlockCommand.READ, count, offset, 0, vmo), timeout)
    _check(status, f"read of {count} blocks at block {offset}")
    return vmo.array.tobytes()


def write_blocks(device: BlockDevice, offset: int, data: bytes | bytearray | memoryview | np.ndarray,
                 timeout: float = DEFAULT_TIMEOUT, flags: OpFlag = OpFlag.NONE) -> None:
    """Write whole blocks starting at block `offset`."""
    info = device.query()
    arr = np.frombuffer(bytes(data), dtype=np.uint8).copy()
    if arr.size == 0 or arr.size % info.block_size:
        raise ValueError(f"write of {arr.size} bytes at block {offset}: not a whole number of "
                         f"{info.block_size}-byte blocks")
    op = BlockOp(BlockCommand.WRITE, arr.size // info.block_size, offset, 0, Vmo(arr), flags)
    _check(run_op(device, op, timeout), f"write of {op.length} blocks at block {offset}")


def flush(device: BlockDevice, timeout: float = DEFAULT_TIMEOUT) -> None:
    _check(run_op(device, BlockOp(BlockCommand.FLUSH), timeout), "flush")
