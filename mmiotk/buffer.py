"""MmioBuffer: a mapped region with exact-width, bounds-checked, barrier-safe accessors (Linux readX/writeX).

Every accessor call is one access of exactly its width, naturally aligned, inside the mapping, on a live
region, with a value that fits; otherwise it raises (OutOfRangeError, AlignmentError, MmioValueError,
RevokedError) and nothing is accessed. The hot path is a mask test and one store or load through a lane
(see `lanes`); the reason for a failure is worked out only after the fact.

Ordering follows Linux: `readX`/`writeX` are ordered against other MMIO and DMA memory, `*_relaxed` only
against each other. On TSO hosts (x86) the two are the same code, as in Linux, where neither needs a fence.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from . import barrier
from .errors import AlignmentError, MmioError, MmioValueError, OutOfRangeError, RevokedError, describe
from .lanes import NATIVE, Lane, RevokedLane, make_lanes
from .policy import CachePolicy
from .space import AddressSpace, Window

if TYPE_CHECKING:
    from .region import PhysicalRegion

# An offset fails the mask test when it is negative (Python ints carry infinite sign bits), absurdly
# large, or not a multiple of the width: one AND and one truth test on the hot path.
_NEG = ~((1 << 48) - 1)
_BAD8, _BAD16, _BAD32, _BAD64 = _NEG, _NEG | 1, _NEG | 3, _NEG | 7
_NOT32 = ~0xFFFF_FFFF
_WRITE_ERRORS = (IndexError, ValueError, TypeError, OverflowError)


class MmioBuffer:
    """A mapping of a PhysicalRegion with one cache policy. Offsets are relative to the region start."""

    def __init__(self, *, region: PhysicalRegion, window: Window, space: AddressSpace, start: int,
                 size: int, policy: CachePolicy, byteorder: str) -> None:
        self.region = region
        self.policy = policy
        self.byteorder = byteorder
        self.size = size
        self._window = window
        self._space = space
        self._start = start
        self._revoked = False
        self._l8, self._l16, self._l32, self._l64 = make_lanes(window, start, size, byteorder)
        # Block copies on memory-backed windows slice this directly; None when transaction-backed or revoked.
        self._mem = window.memory[start:start + size] if window.memory is not None else None
        region._track(self)

    # --- identity -----------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.region.name

    @property
    def paddr(self) -> int:
        """Physical address of offset 0."""
        return self._window.paddr + self._start

    @property
    def mechanism(self) -> str:
        """How this mapping reaches the hardware (e.g. '/dev/mem O_SYNC', 'pci resource0_wc')."""
        return self._window.mechanism

    @property
    def revoked(self) -> bool:
        return self._revoked

    def __len__(self) -> int:
        return self.size

    def __repr__(self) -> str:
        state = " revoked" if self._revoked else ""
        return (f"<{type(self).__name__} {self.name!r} paddr={self.paddr:#x} size={self.size:#x} "
                f"{self.policy.name}{state}>")

    # --- failure diagnosis (cold path) --------------------------------------------------------------
    def _fault(self, offset: int, width: int, value: Any = None, exc: BaseException | None = None,
               op: str = "access") -> BaseException:
        if self._revoked:
            return RevokedError(f"{self.name}: region was revoked: {op} at {describe(offset, width, self.size)}")
        where = f"{self.name}: {op} at {describe(offset, width, self.size)}"
        if not isinstance(offset, int):
            return TypeError(f"{where}: offset must be an int")
        if offset < 0 or offset + width > self.size:
            return OutOfRangeError(f"{where}: out of range")
        if offset % width:
            return AlignmentError(f"{where}: not aligned to {width} bytes")
        if value is not None and (not isinstance(value, int) or not 0 <= value < 1 << (8 * width)):
            return MmioValueError(f"{where}: value {value!r} does not fit in {width * 8} bits")
        return exc if exc is not None else MmioError(where)

    # --- relaxed accessors: ordered only against each other ----------------------------------------
    def read8_relaxed(self, offset: int) -> int:
        if offset & _BAD8:
            raise self._fault(offset, 1, op="read8")
        try:
            return self._l8[offset]
        except IndexError as exc:
            raise self._fault(offset, 1, None, exc, "read8") from None

    def read16_relaxed(self, offset: int) -> int:
        if offset & _BAD16:
            raise self._fault(offset, 2, op="read16")
        try:
            return self._l16[offset >> 1]
        except IndexError as exc:
            raise self._fault(offset, 2, None, exc, "read16") from None

    def read32_relaxed(self, offset: int) -> int:
        if offset & _BAD32:
            raise self._fault(offset, 4, op="read32")
        try:
            return self._l32[offset >> 2]
        except IndexError as exc:
            raise self._fault(offset, 4, None, exc, "read32") from None

    def read64_relaxed(self, offset: int) -> int:
        if offset & _BAD64:
            raise self._fault(offset, 8, op="read64")
        try:
            return self._l64[offset >> 3]
        except IndexError as exc:
            raise self._fault(offset, 8, None, exc, "read64") from None

    def write8_relaxed(self, offset: int, value: int) -> None:
        if offset & _BAD8:
            raise self._fault(offset, 1, value, op="write8")
        try:
            self._l8[offset] = value
        except _WRITE_ERRORS as exc:
            raise self._fault(offset, 1, value, exc, "write8") from None

    def write16_relaxed(self, offset: int, value: int) -> None:
        if offset & _BAD16:
            raise self._fault(offset, 2, value, op="write16")
        try:
            self._l16[offset >> 1] = value
        except _WRITE_ERRORS as exc:
            raise self._fault(offset, 2, value, exc, "write16") from None

    def write32_relaxed(self, offset: int, value: int) -> None:
        if offset & _BAD32:
            raise self._fault(offset, 4, value, op="write32")
        try:
            self._l32[offset >> 2] = value
        except _WRITE_ERRORS as exc:
            raise self._fault(offset, 4, value, exc, "write32") from None

    def write64_relaxed(self, offset: int, value: int) -> None:
        if offset & _BAD64:
            raise self._fault(offset, 8, value, op="write64")
        try:
            self._l64[offset >> 3] = value
        except _WRITE_ERRORS as exc:
            raise self._fault(offset, 8, value, exc, "write64") from None

    # --- ordered accessors (Linux readX/writeX) -----------------------------------------------------
    if barrier.ORDERED_ACCESS_NEEDS_FENCE:
        def read8(self, offset: int) -> int:
            value = self.read8_relaxed(offset)
            barrier.full_fence()
            return value

        def read16(self, offset: int) -> int:
            value = self.read16_relaxed(offset)
            barrier.full_fence()
            return value

        def read32(self, offset: int) -> int:
            value = self.read32_relaxed(offset)
            barrier.full_fence()
            return value

        def read64(self, offset: int) -> int:
            value = self.read64_relaxed(offset)
            barrier.full_fence()
            return value

        def write8(self, offset: int, value: int) -> None:
            barrier.full_fence()
            self.write8_relaxed(offset, value)

        def write16(self, offset: int, value: int) -> None:
            barrier.full_fence()
            self.write16_relaxed(offset, value)

        def write32(self, offset: int, value: int) -> None:
            barrier.full_fence()
            self.write32_relaxed(offset, value)

        def write64(self, offset: int, value: int) -> None:
            barrier.full_fence()
            self.write64_relaxed(offset, value)
    else:
        # TSO: uncached accesses are already ordered; Linux's x86 readl/writel carry no fence either.
        read8, read16, read32, read64 = read8_relaxed, read16_relaxed, read32_relaxed, read64_relaxed
        write8, write16, write32, write64 = write8_relaxed, write16_relaxed, write32_relaxed, write64_relaxed

    # --- barriers -----------------------------------------------------------------------------------
    def mb(self) -> None:
        """Full barrier; also drains write-combining buffers, as on real CPUs."""
        barrier.mb()
        self._space.drain_write_buffers()

    def rmb(self) -> None:
        barrier.rmb()

    def wmb(self) -> None:
        """Write barrier: earlier stores (including write-combined ones) are visible before later ones."""
        barrier.wmb()
        self._space.drain_write_buffers()

    # --- read-modify-write (Linux clrsetbits) -------------------------------------------------------
    def modify32(self, offset: int, clear_mask: int, set_mask: int) -> int:
        """Write `(old & ~clear_mask) | set_mask`; returns the value written. Masks are checked first."""
        try:
            bad = (clear_mask | set_mask) & _NOT32  # negative or too wide; TypeError for non-ints
        except TypeError:
            bad = True
        if bad:
            for label, mask in (("clear_mask", clear_mask), ("set_mask", set_mask)):
                if not isinstance(mask, int) or not 0 <= mask <= 0xFFFFFFFF:
                    raise MmioValueError(f"{self.name}: modify32 at offset {offset:#x}: {label} {mask!r} "
                                         "does not fit in 32 bits")
        new = (self.read32(offset) & ~clear_mask) | set_mask
        self.write32(offset, new)
        return new

    def set_bits32(self, offset: int, mask: int) -> int:
        return self.modify32(offset, 0, mask)

    def clear_bits32(self, offset: int, mask: int) -> int:
        return self.modify32(offset, mask, 0)

    # --- blocks and arrays --------------------------------------------------------------------------
    def _check_span(self, offset: int, n: int, op: str) -> None:
        if self._revoked:
            raise RevokedError(f"{self.name}: region was revoked: {op} at offset {offset:#x}")
        if not isinstance(offset, int) or not isinstance(n, int):
            raise TypeError(f"{self.name}: {op}: offset and length must be ints")
        if offset < 0 or n < 0 or offset + n > self.size:
            raise OutOfRangeError(f"{self.name}: {op} of {n} bytes at offset {offset:#x} is outside "
                                  f"size {self.size:#x}")

    def read_block(self, offset: int, n: int) -> bytes:
        """Copy `n` bytes out (a block copy, not a sequence of register accesses)."""
        mem = self._mem
        if mem is not None and 0 <= offset and 0 <= n and offset + n <= self.size:
            return mem[offset:offset + n].tobytes()
        self._check_span(offset, n, "read_block")
        return self._window.read_block(self._start + offset, n)

    def write_block(self, offset: int, data: bytes | bytearray | memoryview | np.ndarray) -> None:
        """Copy `data` in; checked whole before any byte is written."""
        mem = self._mem
        if mem is not None and type(data) in (bytes, bytearray) and 0 <= offset \
                and offset + len(data) <= self.size:
            mem[offset:offset + len(data)] = data  # type: ignore[assignment]  # bytes/bytearray here
            return
        view = memoryview(data)  # type: ignore[arg-type]  # ndarray exports the buffer protocol
        if not view.contiguous:
            raise MmioValueError(f"{self.name}: write_block at offset {offset:#x}: data is not contiguous")
        view = view.cast("B")
        self._check_span(offset, view.nbytes, "write_block")
        self._window.write_block(self._start + offset, view)

    def array(self, dtype: Any, offset: int = 0, count: int = -1) -> np.ndarray:
        """A numpy view of memory-like mappings (RAM, DMA buffers, shared memory).

        A numpy view cannot be revoked once handed out: it keeps working after `region.revoke()`.
        Hand arrays only to code you trust to stop when the device goes away.
        """
        dt = np.dtype(dtype)
        if dt.byteorder == "=" and dt.itemsize > 1 and self.byteorder != NATIVE:
            dt = dt.newbyteorder(">" if self.byteorder == "big" else "<")
        if count < 0:
            count = (self.size - offset) // dt.itemsize if isinstance(offset, int) else 0
        self._check_span(offset, dt.itemsize * count, "array")
        if offset % dt.alignment:
            raise AlignmentError(f"{self.name}: array of {dt} at offset {offset:#x}: not aligned to "
                                 f"{dt.alignment} bytes")
        memory = self._window.memory
        if memory is None:
            raise MmioError(f"{self.name}: array() needs a memory-backed mapping; this one is "
                            f"{self.mechanism or 'transaction-backed'}")
        return np.frombuffer(memory, dtype=dt, count=count, offset=self._start + offset)

    def view(self, offset: int, size: int) -> MmioView:
        """A bounded sub-view with the same interface; offsets relative, never reaching outside."""
        self._check_span(offset, size, "view")
        if size == 0:
            raise MmioValueError(f"{self.name}: view of size 0 at offset {offset:#x}")
        if offset % 8:
            raise AlignmentError(f"{self.name}: view offset {offset:#x} must be a multiple of 8 so that "
                                 "aligned offsets in the view stay aligned physical addresses")
        return MmioView(parent=self, offset=offset, size=size)

    # --- cache maintenance (no-ops on coherent mappings) --------------------------------------------
    def cache_clean(self, offset: int = 0, size: int | None = None) -> None:
        """Write dirty cached data back to memory (before the device reads it)."""
        self._cache_op("clean", offset, size)

    def cache_invalidate(self, offset: int = 0, size: int | None = None) -> None:
        """Drop cached data so the next read sees memory (after the device wrote it)."""
        self._cache_op("invalidate", offset, size)

    def _cache_op(self, what: str, offset: int, size: int | None) -> None:
        size = self.size - offset if size is None else size
        self._check_span(offset, size, f"cache_{what}")
        op = getattr(self._window, f"cache_{what}", None)
        if op is not None:
            op(self._start + offset, size)

    # --- revocation and tracing hooks ---------------------------------------------------------------
    def trace(self, regmap: Any = None) -> Any:
        """A context manager yielding a `mmiotk.trace.Trace` of every access made inside it."""
        from .trace import trace_buffer

        return trace_buffer(self, regmap)

    def _revoke(self) -> None:
        self._revoked = True
        self._mem = None
        name = self.region.name
        self._l8, self._l16, self._l32, self._l64 = (RevokedLane(name, w) for w in (1, 2, 4, 8))

    def _get_lanes(self) -> tuple[Lane, Lane, Lane, Lane]:
        return self._l8, self._l16, self._l32, self._l64

    def _set_lanes(self, lanes: tuple[Lane, Lane, Lane, Lane]) -> None:
        """Swap the lanes (tracing wraps them); ignored once revoked."""
        if not self._revoked:
            self._l8, self._l16, self._l32, self._l64 = lanes


class MmioView(MmioBuffer):
    """A bounded window into a parent buffer: same accessors, offsets relative to the view."""

    def __init__(self, *, parent: MmioBuffer, offset: int, size: int) -> None:
        self.parent = parent
        self.offset = offset
        super().__init__(region=parent.region, window=parent._window, space=parent._space,
                         start=parent._start + offset, size=size, policy=parent.policy,
                         byteorder=parent.byteorder)
