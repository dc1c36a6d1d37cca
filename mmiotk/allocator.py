"""RangeAllocator: first-fit allocation of naturally aligned address ranges inside one window.

Bus drivers use it for PCI BAR windows and hotplug windows, and DMA pools for buffers. It only does the
arithmetic: who owns which range. Every failure says which window, what was asked and what is free, and
changes nothing. It is part of the core (DMA pools need it), so the driver model imports it from here.
"""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass

from .errors import MmioError, MmioValueError


class AllocationError(MmioError):
    """An address range or DMA buffer could not be allocated: the window or pool is exhausted."""


class OverlapError(MmioError, ValueError):
    """A fixed range collides with one already claimed."""


@dataclass(frozen=True)
class Allocation:
    base: int
    size: int
    owner: str

    @property
    def end(self) -> int:
        return self.base + self.size


def is_power_of_two(value: int) -> bool:
    return isinstance(value, int) and value > 0 and value & (value - 1) == 0


class RangeAllocator:
    """Hands out sub-ranges of [base, base + size); thread-safe."""

    def __init__(self, base: int, size: int, name: str) -> None:
        if not isinstance(base, int) or not isinstance(size, int) or base < 0 or size <= 0:
            raise MmioValueError(f"window {name!r}: base must be >= 0 and size > 0, got {base!r}, {size!r}")
        self.base = base
        self.size = size
        self.name = name
        self._lock = threading.Lock()
        self._starts: list[int] = []
        self._allocs: list[Allocation] = []

    def __repr__(self) -> str:
        return f"<RangeAllocator {self.name!r} [{self.base:#x}, {self.end:#x}) {len(self._allocs)} used>"

    @property
    def end(self) -> int:
        return self.base + self.size

    @property
    def allocations(self) -> list[Allocation]:
        with self._lock:
            return list(self._allocs)

    @property
    def used_bytes(self) -> int:
        with self._lock:
            return sum(a.size for a in self._allocs)

    @property
    def free_bytes(self) -> int:
        return self.size - self.used_bytes

    def free_ranges(self) -> list[tuple[int, int]]:
        """The gaps, as (base, size) pairs in address order."""
        with self._lock:
            return self._gaps()

    def _gaps(self) -> list[tuple[int, int]]:
        gaps, cursor = [], self.base
        for a in self._allocs:
            if a.base > cursor:
                gaps.append((cursor, a.base - cursor))
            cursor = a.end
        if cursor < self.end:
            gaps.append((cursor, self.end - cursor))
        return gaps

    def _describe_free(self) -> str:
        gaps = self._gaps()
        largest = max((size for _, size in gaps), default=0)
        return f"{sum(size for _, size in gaps):#x} bytes free in {len(gaps)} piece(s), largest {largest:#x}"

    def _insert(self, alloc: Allocation) -> Allocation:
        i = bisect.bisect(self._starts, alloc.base)
        self._starts.insert(i, alloc.base)
        self._allocs.insert(i, alloc)
        return alloc

    def alloc(self, size: int, align: int = 1, owner: str = "") -> Allocation:
        """The lowest free range of `size` bytes starting at a multiple of `align` (a power of two)."""
        if not isinstance(size, int) or size <= 0:
            raise MmioValueError(f"window {self.name!r}: allocation for {owner or 'anonymous'} needs a positive "
                                 f"size, got {size!r}")
        if not is_power_of_two(align):
            raise MmioValueError(f"window {self.name!r}: alignment {align!r} for {owner or 'anonymous'} is not a "
                                 "power of two")
        with self._lock:
            for gap_base, gap_size in self._gaps():
                start = (gap_base + align - 1) & ~(align - 1)
                if start + size <= gap_base + gap_size:
                    return self._insert(Allocation(start, size, owner))
            raise AllocationError(
                f"window {self.name!r} [{self.base:#x}, {self.end:#x}) exhausted: no {size:#x}-byte range aligned "
                f"to {align:#x} for {owner or 'anonymous'} ({self._describe_free()})")

    def reserve(self, base: int, size: int, owner: str = "") -> Allocation:
        """Claim exactly [base, base + size); OverlapError names the owner already there."""
        if not isinstance(base, int) or not isinstance(size, int) or size <= 0:
            raise MmioValueError(f"window {self.name!r}: reserve for {owner or 'anonymous'} needs an int base "
                                 f"and positive size, got {base!r}, {size!r}")
        if base < self.base or base + size > self.end:
            raise OverlapError(f"{owner or 'range'} [{base:#x}, {base + size:#x}) is outside window "
                               f"{self.name!r} [{self.base:#x}, {self.end:#x})")
        with self._lock:
            for a in self._allocs:
                if a.base < base + size and base < a.end:
                    raise OverlapError(f"{owner or 'range'} [{base:#x}, {base + size:#x}) overlaps {a.owner} "
                                       f"[{a.base:#x}, {a.end:#x}) in window {self.name!r}")
            return self._insert(Allocation(base, size, owner))

    def free(self, base: int) -> Allocation:
        """Return the range starting at `base`; freeing what is not allocated is an error."""
        with self._lock:
            i = bisect.bisect_left(self._starts, base)
            if i == len(self._starts) or self._starts[i] != base:
                raise MmioValueError(f"window {self.name!r}: nothing is allocated at {base:#x}")
            del self._starts[i]
            return self._allocs.pop(i)

    def owner_at(self, addr: int) -> Allocation | None:
        with self._lock:
            i = bisect.bisect(self._starts, addr) - 1
            if i >= 0 and self._allocs[i].base <= addr < self._allocs[i].end:
                return self._allocs[i]
            return None
