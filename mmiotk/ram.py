"""RamSpace: mmap-backed memory, anonymous or a file it creates (e.g. under /dev/shm) to share with a
simulator or QEMU. `ram.array` is a numpy uint8 array over all of it; index 0 is `ram.base`."""

from __future__ import annotations

import mmap
import os

import numpy as np

from .errors import MmioValueError
from .policy import CachePolicy
from .space import AddressSpace, MemoryWindow, Window


class RamSpace(AddressSpace):
    """Memory that simulates a machine's physical memory (and device memory in tests)."""

    simulated = True

    def __init__(self, size: int, base: int = 0, path: str | os.PathLike[str] | None = None, *,
                 name: str = "ram", arch: str | None = None, coherent: bool = True) -> None:
        if not isinstance(size, int) or size <= 0:
            raise MmioValueError(f"RamSpace size must be a positive int, got {size!r}")
        if base < 0 or base % mmap.PAGESIZE:
            raise MmioValueError(f"RamSpace base {base:#x} must be page aligned and >= 0")
        super().__init__(base, size, name=name, arch=arch)
        self.coherent = coherent
        self.path = os.fspath(path) if path is not None else None
        if self.path is None:
            self._mmap = mmap.mmap(-1, size)
        else:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.ftruncate(fd, size)
                self._mmap = mmap.mmap(fd, size, mmap.MAP_SHARED)
            except BaseException:
                os.close(fd)
                os.unlink(self.path)
                raise
            os.close(fd)
        self._memory = memoryview(self._mmap)
        self.array = np.frombuffer(self._mmap, dtype=np.uint8)

    def open(self, paddr: int, size: int, policy: CachePolicy) -> Window:
        self.check_range(paddr, size)
        start = paddr - self.base
        where = f"ram {self.path}" if self.path else "anonymous ram"
        return MemoryWindow(paddr, self._memory[start:start + size], where)

    def close(self) -> None:
        """Unmap, and remove the file this space created. Views still alive keep the memory."""
        if self.path is not None and os.path.exists(self.path):
            os.unlink(self.path)
        self.path = None
