"""Guest RAM as the front end shares it (SET_MEM_TABLE): the regions' files mapped into this process.

Ring addresses arrive as the front end's own virtual addresses (SET_VRING_ADDR) and are translated to guest
physical addresses through the regions; descriptors already hold guest physical addresses. A device model
or the RTL's memory shim wants one contiguous range of guest RAM: `window()` maps the one shared file once
across every region when the regions are slices of it at a constant distance (QEMU's memfd RAM), and says
which region breaks that otherwise.
"""

from __future__ import annotations

import mmap
import os

import numpy as np

from .messages import MemoryRegion, VhostUserError

PAGE = mmap.PAGESIZE


class GuestRam:
    """The regions of one SET_MEM_TABLE and their files (the descriptors are owned, closed by close())."""

    def __init__(self, regions: list[MemoryRegion], fds: list[int]) -> None:
        self.regions = regions
        self._fds = fds
        self._maps: list[mmap.mmap] = []
        self.base = 0
        self.array: np.ndarray | None = None

    def to_guest(self, user_addr: int, length: int, what: str) -> int:
        """The guest physical address of the front end's virtual address `user_addr` ([.., + length) must lie in
        one region)."""
        for r in self.regions:
            if r.user_addr <= user_addr and user_addr + length <= r.user_addr + r.size:
                return r.guest_addr + (user_addr - r.user_addr)
        raise VhostUserError(f"{what} at front-end address {user_addr:#x} (+{length:#x}) lies in no region of the "
                             f"memory table")

    def window(self) -> tuple[np.ndarray, int]:
        """(uint8 array, guest address of its index 0) covering every region, mapped shared, once."""
        if self.array is not None:
            return self.array, self.base
        first = self.regions[0]
        inode = os.fstat(self._fds[0])
        shift = first.guest_addr - first.mmap_offset
        for r, fd in zip(self.regions, self._fds, strict=True):
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) != (inode.st_dev, inode.st_ino) or r.guest_addr - r.mmap_offset != shift:
                raise VhostUserError(f"region at guest {r.guest_addr:#x} is not a slice of the first region's file at "
                                     "the same distance: guest RAM is not one contiguous shared file")
        start = min(r.mmap_offset for r in self.regions) // PAGE * PAGE
        end = max(r.mmap_offset + r.size for r in self.regions)
        if start + shift < 0:
            raise VhostUserError(f"memory table maps file offset {start:#x} below guest address 0")
        mapping = mmap.mmap(self._fds[0], end - start, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE,
                            offset=start)
        self._maps.append(mapping)
        self.array = np.frombuffer(mapping, dtype=np.uint8)
        self.base = start + shift
        return self.array, self.base

    def read_u16(self, addr: int) -> int:
        """A little-endian u16 of guest RAM at guest physical `addr` (a ring index), after window()."""
        assert self.array is not None
        off = addr - self.base
        return int(self.array[off]) | int(self.array[off + 1]) << 8

    def close(self) -> None:
        self.array = None
        for m in self._maps:
            try:
                m.close()
            except BufferError:   # a view still exports it: the mapping goes when the view does
                pass
        self._maps.clear()
        for fd in self._fds:
            os.close(fd)
        self._fds = []
