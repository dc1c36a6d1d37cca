"""Sharing DMA memory with client processes, so their buffers are DMA-able and drivers use them in place.

A `PoolExporter` allocates page-aligned buffers from a `DmaPool` whose memory is a shared file (a
`RamSpace` created with a path, e.g. QEMU's guest RAM under /dev/shm) and tells the client where the buffer
lives in that file; the client maps the same pages. The driver gets a `Vmo` with `dma_addr`, so no bounce
buffer and no copy anywhere.

Trust: the client receives a descriptor for the whole file, so it could map any of it (other clients'
buffers, the device's rings). Export DMA memory only to processes you trust with the device; untrusted
clients attach their own memfds, which are isolated (see `control`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mmiotk.dma import DmaBuffer, DmaPool
from mmiotk.space import PAGE_SIZE


@dataclass
class DmaAllocation:
    """One exported buffer: the server's array, its device address, and where it is in the shared file."""

    array: np.ndarray
    dma_addr: int
    fd: int  # the shared file; the exporter owns it (send a duplicate, never close it)
    offset: int  # file offset of array[0], page aligned
    release: Callable[[], None]


class PoolExporter:
    """Allocates client-visible DMA buffers from a coherent pool over a shared RamSpace file."""

    def __init__(self, pool: DmaPool, *, fd: int | None = None, path: str | None = None,
                 file_base: int | None = None) -> None:
        """The shared file is `fd` (duplicated), else `path`; by default the space's `ram_fd` or `ram_path`
        (QEMU and model spaces) or `path` (a RamSpace). `file_base` is the address of the file's first
        byte: by default the space's `ram_base`, else its `base`."""
        file_fd, file_path, base = pool.shared_file()
        fd = fd if fd is not None else file_fd
        path = path or file_path
        if fd is None and not path:
            raise ValueError(f"DMA pool {pool.name!r}: its memory is not a shared file (create the RamSpace "
                             "with path=...), so no other process can map it")
        if not pool.coherent:
            raise ValueError(f"DMA pool {pool.name!r} is non-coherent: a client writing the shared pages would "
                             "bypass the syncs the driver relies on; export a coherent pool")
        self.pool = pool
        self._base = file_base if file_base is not None else base
        # our own descriptor keeps the memory reachable even after the file is unlinked
        self._fd = os.dup(fd) if fd is not None else os.open(path, os.O_RDWR | os.O_CLOEXEC)  # type: ignore[arg-type]

    def allocate(self, size: int) -> DmaAllocation:
        span = -(-size // PAGE_SIZE) * PAGE_SIZE
        buf: DmaBuffer = self.pool.alloc(span, PAGE_SIZE, name="fifo-client")
        offset = buf.paddr - self._base

        def release() -> None:
            if not buf.freed and not self.pool.closed:
                self.pool.free(buf)

        return DmaAllocation(buf[:size], buf.dma_addr, self._fd, offset, release)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
