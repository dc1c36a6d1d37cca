"""FileDisk: a BlockDevice over a regular file (a raw disk image) or a host block device node.

Reads and writes go straight between the file and the op's buffer with preadv/pwritev (no intermediate
copy). FLUSH is fdatasync; FORCE_ACCESS writes are followed by fdatasync, so the device reports FUA
support; TRIM punches a hole (fallocate) and reads back as zeroes. `extents()` finds a regular file's holes
with SEEK_DATA/SEEK_HOLE (a device node, or a file system without them, reports everything allocated).
Ops complete before `queue()` returns; `queue()` may be called from several threads at once.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import stat
from collections.abc import Callable

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
    ExtentFlag,
    OpFlag,
    check_extent_range,
    validate,
)

_FALLOC_FL_KEEP_SIZE = 0x01  # linux/falloc.h
_FALLOC_FL_PUNCH_HOLE = 0x02


def _fallocate() -> Callable[[int, int, int, int], int] | None:
    """libc's fallocate (Python's os module has no hole punching)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    func = ctypes.CDLL(name, use_errno=True).fallocate
    func.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    func.restype = ctypes.c_int
    return func


class FileDisk(BlockDevice):
    """The blocks of `path`. `size` creates (or extends) a regular file to that many bytes first."""

    def __init__(self, path: str | os.PathLike[str], block_size: int = 512, *, read_only: bool = False,
                 size: int | None = None, max_transfer_size: int = MAX_TRANSFER_UNBOUNDED) -> None:
        self.path = os.fspath(path)
        if block_size <= 0 or block_size & (block_size - 1):
            raise ValueError(f"FileDisk {self.path}: block_size must be a power of two, got {block_size!r}")
        if size is not None and (read_only or size <= 0 or size % block_size):
            raise ValueError(f"FileDisk {self.path}: size={size!r} must be a positive multiple of {block_size} "
                             "and needs a writable file")
        flags = os.O_RDONLY if read_only else os.O_RDWR
        if size is not None:
            flags |= os.O_CREAT
        try:
            self._fd = os.open(self.path, flags | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise OSError(exc.errno, f"FileDisk: cannot open {self.path}: {exc.strerror}") from None
        try:
            st = os.fstat(self._fd)
            if size is not None and stat.S_ISREG(st.st_mode) and st.st_size < size:
                os.ftruncate(self._fd, size)
            nbytes = self._size()
            if nbytes <= 0 or nbytes % block_size:
                raise ValueError(f"FileDisk {self.path}: {nbytes} bytes is not a positive whole number of "
                                 f"{block_size}-byte blocks (resize it, e.g. qemu-img resize -f raw)")
        except BaseException:
            os.close(self._fd)
            raise
        self._regular = stat.S_ISREG(st.st_mode)
        self._punch = _fallocate() if self._regular else None
        dev_flags = BlockFlag.FUA_SUPPORT | (BlockFlag.TRIM_SUPPORT if self._punch else BlockFlag.NONE)
        if read_only:
            dev_flags |= BlockFlag.READONLY
        self._info = BlockInfo(nbytes // block_size, block_size, max_transfer_size, dev_flags)

    def _size(self) -> int:
        return os.lseek(self._fd, 0, os.SEEK_END)

    def query(self) -> BlockInfo:
        return self._info

    def queue(self, op: BlockOp, completion: Completion) -> None:
        completion(self._execute(op), op)

    def extents(self, offset: int, length: int) -> list[Extent]:
        check_extent_range(self._info, offset, length)
        if not self._regular or self._fd < 0:
            return [Extent(offset, length)]
        bs = self._info.block_size
        try:
            holes = self._holes(offset * bs, (offset + length) * bs)
        except OSError:  # no SEEK_DATA here (EINVAL): the file system cannot tell
            return [Extent(offset, length)]
        found: list[Extent] = []
        pos = offset
        for a, b in holes:
            first, last = -(-a // bs), b // bs  # a block only partly in a hole holds data
            if last <= first:
                continue
            if first > pos:
                found.append(Extent(pos, first - pos))
            found.append(Extent(first, last - first, ExtentFlag.HOLE | ExtentFlag.ZERO))
            pos = last
        if pos < offset + length:
            found.append(Extent(pos, offset + length - pos))
        return found

    def _holes(self, pos: int, end: int) -> list[tuple[int, int]]:
        """The byte ranges of [pos, end) that are holes, in order (SEEK_DATA/SEEK_HOLE)."""
        holes = []
        while pos < end:
            try:
                data = min(os.lseek(self._fd, pos, os.SEEK_DATA), end)
            except OSError as exc:
                if exc.errno != errno.ENXIO:  # ENXIO: nothing but hole up to the end of the file
                    raise
                data = end
            if data > pos:
                holes.append((pos, data))
            if data >= end:
                break
            pos = min(os.lseek(self._fd, data, os.SEEK_HOLE), end)
        return holes

    def close(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    def __enter__(self) -> FileDisk:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _execute(self, op: BlockOp) -> BlockStatus:
        if self._fd < 0:
            return BlockStatus.IO_NOT_PRESENT
        status = validate(self._info, op)
        if status is not None:
            return status
        try:
            if op.command is BlockCommand.FLUSH:
                os.fdatasync(self._fd)
                return BlockStatus.OK
            bs = self._info.block_size
            pos, nbytes = op.offset_dev * bs, op.length * bs
            if op.command is BlockCommand.TRIM:
                return self._trim(pos, nbytes)
            assert op.vmo is not None  # validate() checked it
            view = op.vmo.array.data[op.offset_vmo * bs:op.offset_vmo * bs + nbytes]
            if op.command is BlockCommand.READ:
                self._transfer(os.preadv, view, pos)
            else:
                self._transfer(os.pwritev, view, pos)
                if op.flags & OpFlag.FORCE_ACCESS:
                    os.fdatasync(self._fd)
            return BlockStatus.OK
        except OSError:
            return BlockStatus.IO

    def _transfer(self, call: Callable[[int, list[memoryview], int], int], view: memoryview, pos: int) -> None:
        done = 0
        while done < len(view):
            n = call(self._fd, [view[done:]], pos + done)
            if n <= 0:
                raise OSError(f"short transfer at byte {pos + done} of {self.path}")
            done += n

    def _trim(self, pos: int, nbytes: int) -> BlockStatus:
        if self._punch is None:
            return BlockStatus.NOT_SUPPORTED
        if self._punch(self._fd, _FALLOC_FL_PUNCH_HOLE | _FALLOC_FL_KEEP_SIZE, pos, nbytes) != 0:
            return BlockStatus.NOT_SUPPORTED if ctypes.get_errno() == 95 else BlockStatus.IO  # EOPNOTSUPP
        return BlockStatus.OK

