"""DevMemSpace: physical memory through /dev/mem (or any file standing in for it in tests).

Uncached policies open the file with O_SYNC, which is how Linux hands out an uncached mapping of
/dev/mem; CACHED opens without it. /dev/mem offers no write-combining mapping, so WRITE_COMBINING falls
back to uncached (stronger ordering, always correct) and says so in `buffer.mechanism`.
"""

from __future__ import annotations

import mmap
import os

from .policy import CachePolicy
from .space import AddressSpace, MemoryWindow, Window, page_span


class DevMemSpace(AddressSpace):
    """Physical addresses are file offsets of `path`."""

    def __init__(self, path: str | os.PathLike[str] = "/dev/mem", *, base: int = 0, size: int = 1 << 48,
                 arch: str | None = None) -> None:
        super().__init__(base, size, name=os.fspath(path), arch=arch)
        self.path = os.fspath(path)

    def open(self, paddr: int, size: int, policy: CachePolicy) -> Window:
        self.check_range(paddr, size)
        flags = os.O_RDWR
        uncached = policy is not CachePolicy.CACHED
        if uncached:
            flags |= os.O_SYNC
        fd = os.open(self.path, flags)
        try:
            start, length = page_span(paddr, size)
            mapping = mmap.mmap(fd, length, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=start)
        finally:
            os.close(fd)
        mechanism = f"{self.path} {'O_SYNC' if uncached else 'cached'}"
        if policy is CachePolicy.WRITE_COMBINING:
            mechanism += " (no write-combining through /dev/mem: uncached)"
        lo = paddr - start
        return MemoryWindow(paddr, memoryview(mapping)[lo:lo + size], mechanism, owner=mapping)
