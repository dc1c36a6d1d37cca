"""MmioBuffer: a mapped region with exact-width, bounds-checked, barrier-safe accessors (Linux readX/writeX).

The accessors themselves (readX/writeX, their relaxed variants, modify32, block copies) come from
`accessors.AccessorBase`: the compiled core where it is built, the pure-Python one otherwise. This module
holds what a mapping is: its region, window, policy and lanes, views, arrays, cache maintenance, barriers,
and the revocation and tracing hooks that switch the compiled core off and on.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import numpy as np

from . import barrier
from .accessors import AccessorBase
from .errors import AlignmentError, MmioError, MmioValueError
from .lanes import NATIVE, Lane, RevokedLane, make_lanes
from .policy import CachePolicy
from .space import AddressSpace, Window

if TYPE_CHECKING:
    from .region import PhysicalRegion


class MmioBuffer(AccessorBase):
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
        self._lanes = (self._l8, self._l16, self._l32, self._l64)
        # The compiled core reads and writes memory itself only where the lanes are plain memoryviews, and
        # calls the window itself only where they are plain BusLanes.
        if self._mem is not None and byteorder == NATIVE:
            self._core_attach(self._mem)
        elif window.memory is None and byteorder == "little":
            self._core_attach_bus(window.read, window.write, start, size)
        region.add_mapping(self)

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

    # --- arrays and views ----------------------------------------------------------------------------
    def array(self, dtype: Any, offset: int = 0, count: int = -1) -> np.ndarray:
        """A numpy view of memory-like mappings (RAM, DMA buffers, shared memory).

        A numpy view cannot be revoked once handed out: it keeps working after `region.revoke()`.
        Hand arrays only to code you trust to stop when the device goes away.
        """
        dt = np.dtype(dtype)
        if dt.itemsize == 0:
            raise MmioValueError(f"{self.name}: array of {dt} at offset {offset!r}: the dtype has no size")
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

    def revoke_mapping(self) -> None:
        """Called by the region on revoke: every later access raises RevokedError. The memoryviews over the
        window are released, so that the region can unmap it: a mapping of a VFIO device file left alive by
        a stray view keeps vfio-pci's unbind waiting for ever."""
        self._revoked = True
        self._core_detach()
        views: list[Any] = [self._mem, *self._lanes]
        self._mem = None
        name = self.region.name
        self._l8, self._l16, self._l32, self._l64 = (RevokedLane(name, w) for w in (1, 2, 4, 8))
        self._lanes = (self._l8, self._l16, self._l32, self._l64)
        for view in views:
            view = getattr(view, "_inner", view)  # a SwappedLane's memoryview
            if isinstance(view, memoryview):
                with contextlib.suppress(BufferError):  # an array() taken from it still uses it
                    view.release()

    @property
    def lanes(self) -> tuple[Lane, Lane, Lane, Lane]:
        """The lanes in use now (8-, 16-, 32- and 64-bit), which tracing wraps."""
        return self._l8, self._l16, self._l32, self._l64

    def replace_lanes(self, lanes: tuple[Lane, Lane, Lane, Lane]) -> None:
        """Swap the lanes (tracing wraps them); ignored once revoked."""
        if not self._revoked:
            self._l8, self._l16, self._l32, self._l64 = lanes
            self._core_direct(all(a is b for a, b in zip(lanes, self._lanes, strict=True)))


class MmioView(MmioBuffer):
    """A bounded window into a parent buffer: same accessors, offsets relative to the view."""

    def __init__(self, *, parent: MmioBuffer, offset: int, size: int) -> None:
        self.parent = parent
        self.offset = offset
        super().__init__(region=parent.region, window=parent._window, space=parent._space,
                         start=parent._start + offset, size=size, policy=parent.policy,
                         byteorder=parent.byteorder)
