"""BlockMedia: the persistent store behind a block device, for the RTL controller and the model alike.

The *media* is what survives a power loss: a disk image file mapped shared (so other processes and the
test see exactly what is on it) or anonymous memory, one contiguous mapping over the whole medium.
`array` is that mapping as a uint8 numpy array: the RTL environment hands its address to the simulator's
memory shim, so the controller's media accesses land in these very bytes.

The *write cache* is the behavioural model's: written sectors that have not reached the media yet. A write
either goes through to the media (writethrough) or into the cache (writeback); `flush()` writes the cache
back and msyncs the file; `power_loss()` throws the cache away. Reads through `read_into` see the newest
data (cache first); `sector()` and `fill()` look at and set the media itself, beneath the cache. The RTL
controller keeps its write buffer in HDL and never uses this cache. Sector numbers are in 512-byte units.
"""

from __future__ import annotations

import contextlib
import mmap
import os

import numpy as np

from mmiotk.errors import MmioValueError

SECTOR = 512


class BlockMedia:
    """An image file (`path`) or `size` bytes of anonymous memory; `readonly` maps the file read-only."""

    def __init__(self, path: str | os.PathLike[str] | None = None, *, size: int | None = None,
                 readonly: bool = False) -> None:
        self.path = os.fspath(path) if path is not None else None
        self.readonly = readonly
        if self.path is not None:
            if size is not None:
                raise MmioValueError("BlockMedia takes a path or a size, not both")
            try:
                fd = os.open(self.path, os.O_RDONLY if readonly else os.O_RDWR)
            except OSError as exc:
                raise MmioValueError(f"disk image {self.path!r}: {exc.strerror}") from None
            try:
                size = os.fstat(fd).st_size
                if size == 0 or size % SECTOR:
                    raise MmioValueError(f"disk image {self.path!r} is {size} bytes; a positive multiple "
                                         f"of {SECTOR} is needed")
                self._mmap = mmap.mmap(fd, size, mmap.MAP_SHARED,
                                       mmap.PROT_READ | (0 if readonly else mmap.PROT_WRITE))
            finally:
                os.close(fd)
        else:
            if not isinstance(size, int) or size <= 0 or size % SECTOR:
                raise MmioValueError(f"media size must be a positive multiple of {SECTOR} bytes, got {size!r}")
            self._mmap = mmap.mmap(-1, size)
        self._data = memoryview(self._mmap)
        self.array: np.ndarray = np.frombuffer(self._mmap, dtype=np.uint8)
        self.size = size
        self.sectors = size // SECTOR
        self._cache: dict[int, bytes] = {}
        self.syncs = 0                         # msyncs (or, in memory, the points where one would be)
        self.closed = False

    # --- the media itself, beneath the cache ------------------------------------------------------------
    def sector(self, lba: int, count: int = 1) -> bytes:
        """Sectors [lba, lba + count) as they are on the media (what a power loss would leave)."""
        return bytes(self._data[lba * SECTOR:(lba + count) * SECTOR])

    def fill(self, lba: int, data: bytes) -> None:
        """Put `data` onto the media from sector `lba` on, as if another host wrote the image."""
        self.array[lba * SECTOR:lba * SECTOR + len(data)] = np.frombuffer(data, dtype=np.uint8)

    # --- the model's view: newest data first, an optional write cache -----------------------------------
    @property
    def dirty_sectors(self) -> int:
        """Sectors written into the cache and not yet on the media."""
        return len(self._cache)

    def read_into(self, sector: int, out: memoryview) -> None:
        """Fill `out` (a multiple of 512 bytes) from `sector` on, newest data first."""
        start = sector * SECTOR
        out[:] = self._data[start:start + len(out)]
        if self._cache:
            for i in range(len(out) // SECTOR):
                cached = self._cache.get(sector + i)
                if cached is not None:
                    out[i * SECTOR:(i + 1) * SECTOR] = cached

    def write(self, sector: int, data: memoryview, *, writeback: bool) -> None:
        """Store `data` (a multiple of 512 bytes) from `sector` on, into the cache or onto the media."""
        if self.readonly:
            raise MmioValueError("write to read-only media")
        count = len(data) // SECTOR
        if writeback:
            for i in range(count):
                self._cache[sector + i] = bytes(data[i * SECTOR:(i + 1) * SECTOR])
            return
        start = sector * SECTOR
        self._data[start:start + len(data)] = data
        if self._cache:
            for i in range(count):
                self._cache.pop(sector + i, None)
        self._sync(start, len(data))

    def flush(self) -> int:
        """Write the cache back to the media and make the file durable; the number of sectors written."""
        written = len(self._cache)
        for sector in sorted(self._cache):
            self._data[sector * SECTOR:(sector + 1) * SECTOR] = self._cache[sector]
        self._cache.clear()
        self._sync(0, self.size)
        return written

    def power_loss(self) -> int:
        """Lose the write cache, as a power cut would; the number of sectors lost."""
        lost = len(self._cache)
        self._cache.clear()
        return lost

    def _sync(self, start: int, length: int) -> None:
        self.syncs += 1
        if self.path is not None and not self.readonly and length:
            lo = start - start % mmap.PAGESIZE
            self._mmap.flush(lo, min(self.size, start + length) - lo)

    def close(self) -> None:
        """Unmap (the cache is lost, as on power-off: flush first to keep it). Idempotent. Detach the
        mapping from a simulator first: it holds a raw pointer."""
        if self.closed:
            return
        self.closed = True
        self._cache.clear()
        self._data.release()
        self.array = np.empty(0, dtype=np.uint8)
        with contextlib.suppress(BufferError):  # a view of `array` is still alive; the mapping goes with it
            self._mmap.close()
