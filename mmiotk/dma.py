"""DMA pools: buffers the CPU fills as numpy arrays and the device reaches by address.

A `DmaPool` draws from a range of mmap-backed memory that the device side shares: a `RamSpace` (the board's
RAM, or a carve-out of it), which for QEMU is the guest RAM file under /dev/shm and for RTL simulation the
memory the bus model serves. Each `DmaBuffer` is a numpy array with the address the device uses
(`buf.paddr`, `buf.dma_addr`), like Linux's `dma_alloc_*` returning a CPU pointer and a dma_addr_t.

Coherent memory: the array *is* the shared memory and `sync_for_device`/`sync_for_cpu` do nothing.
Non-coherent memory: the array is the CPU's cached copy (a shadow); `sync_for_device` writes it back to
memory (clean) and `sync_for_cpu` reloads it (invalidate), in 64-byte lines as caches do. A forgotten sync
is therefore visible in a test: the device reads stale memory, or the CPU reads a stale shadow.

After `free()` (or the pool closing on unbind) the range returns to the pool; the buffer's address and its
syncs raise `FreedBufferError`, and the array handed out becomes read-only for good: its base chain ends in
an object that stops presenting the memory, so neither `flags.writeable = True` nor an array made from its
`base` writes again. Views taken before the free cannot be recalled (numpy cannot revoke a view): do not
keep them.

A pool's public attributes reach only its own range: the region and address space behind it stay private
(a device's pool draws from the bus's DMA memory, and the region would map all of it).
"""

from __future__ import annotations

import enum
import threading
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .allocator import AllocationError, RangeAllocator, is_power_of_two
from .errors import BadStateError, MmioError, MmioValueError
from .policy import CachePolicy
from .region import MmioResource, PhysicalRegion
from .space import PAGE_SIZE

if TYPE_CHECKING:
    from .allocator import Allocation
    from .space import AddressSpace

CACHE_LINE = 64


class DmaDirection(enum.IntEnum):
    """Which way data moves; values match Linux's enum dma_data_direction."""

    BIDIRECTIONAL = 0
    TO_DEVICE = 1
    FROM_DEVICE = 2


class FreedBufferError(BadStateError):
    """A DMA buffer was used (address, sync, free) after it was freed."""


class DmaExhaustedError(AllocationError):
    """The pool has no free range of the requested size and alignment."""


@dataclass(eq=False)
class _Block:
    """One allocation: device-side memory, the CPU's view of it, and its state."""

    pool: DmaPool
    name: str
    paddr: int
    size: int
    span: int
    mem: np.ndarray
    cpu: np.ndarray
    cpu_ptr: int
    freed: bool = False
    handle: Any = field(default=None, repr=False)  # weakref to the DmaBuffer handed out
    base: np.ndarray | None = field(default=None, repr=False)  # the handle's base, made read-only on free


class _Memory:
    """The final base of a DmaBuffer handed out: presents the block's memory to numpy until it is freed.

    Not a writable buffer, so numpy lets a read-only array over it become writeable only through a
    writeable array in between, and `_release` makes those read-only."""

    __slots__ = ("__weakref__", "_array", "_block")

    def __init__(self, block: _Block, array: np.ndarray) -> None:
        self._block, self._array = block, array

    @property
    def __array_interface__(self) -> dict[str, Any]:
        block = self._block
        if block.freed:
            raise FreedBufferError(f"DMA buffer {block.name!r} at {block.paddr:#x} was freed")
        return self._array.__array_interface__


def _extent(array: np.ndarray) -> tuple[int, int]:
    """The byte addresses [lo, hi) an array touches."""
    lo = hi = int(array.__array_interface__["data"][0])
    for n, stride in zip(array.shape, array.strides, strict=True):
        if n == 0:
            return lo, lo
        if stride < 0:
            lo += (n - 1) * stride
        else:
            hi += (n - 1) * stride
    return lo, hi + array.itemsize


class DmaBuffer(np.ndarray):
    """A numpy array in DMA memory. Slices and dtype views are DmaBuffers too, with their own addresses."""

    _dma: _Block | None = None

    if TYPE_CHECKING:  # slices and views stay DmaBuffers; say so to type checkers, cost nothing at run time
        def __getitem__(self, key: Any) -> Any: ...
        def view(self, *args: Any, **kwargs: Any) -> Any: ...

    def __array_finalize__(self, obj: Any) -> None:
        self._dma = getattr(obj, "_dma", None)

    def _block(self, what: str) -> tuple[_Block, int, int]:
        """The live block and this array's byte range [lo, hi) inside it."""
        block = self._dma
        if block is None:
            raise MmioValueError(f"{what}: this array is not in DMA memory")
        if block.freed:
            raise FreedBufferError(f"{what}: DMA buffer {block.name!r} at {block.paddr:#x} was freed")
        lo, hi = _extent(self)
        lo, hi = lo - block.cpu_ptr, hi - block.cpu_ptr
        if lo < 0 or hi > block.span:
            raise MmioValueError(f"{what}: this array is not inside DMA buffer {block.name!r} (a copy? "
                                 "arithmetic results are new arrays in ordinary memory)")
        return block, lo, hi

    @property
    def paddr(self) -> int:
        """Physical address of the first byte."""
        block, lo, _ = self._block("paddr")
        return block.paddr + lo

    @property
    def dma_addr(self) -> int:
        """The address the device uses (physical address plus the pool's bus offset)."""
        block, lo, _ = self._block("dma_addr")
        return block.paddr + lo + block.pool.dma_offset

    @property
    def freed(self) -> bool:
        return self._dma is not None and self._dma.freed

    @property
    def pool(self) -> DmaPool:
        return self._block("pool")[0].pool

    def sync_for_device(self, direction: DmaDirection = DmaDirection.BIDIRECTIONAL) -> None:
        """Make the CPU's writes visible to the device (clean); call before the device reads."""
        block, lo, hi = self._block("sync_for_device")
        direction = DmaDirection(direction)
        if block.cpu is block.mem or direction is DmaDirection.FROM_DEVICE:
            return
        lo, hi = _lines(lo, hi, block.span)
        block.mem[lo:hi] = block.cpu[lo:hi]

    def sync_for_cpu(self, direction: DmaDirection = DmaDirection.BIDIRECTIONAL) -> None:
        """Make the device's writes visible to the CPU (invalidate); call after the device wrote."""
        block, lo, hi = self._block("sync_for_cpu")
        direction = DmaDirection(direction)
        if block.cpu is block.mem or direction is DmaDirection.TO_DEVICE:
            return
        lo, hi = _lines(lo, hi, block.span)
        block.cpu[lo:hi] = block.mem[lo:hi]

    def free(self) -> None:
        self.pool.free(self)


def _lines(lo: int, hi: int, span: int) -> tuple[int, int]:
    return lo // CACHE_LINE * CACHE_LINE, min(span, -(-hi // CACHE_LINE) * CACHE_LINE)


class DmaPool:
    """Allocates DmaBuffers from a memory region (`PhysicalRegion` with memory=True) the device can reach.

    `child(name)` gives a pool drawing from the same range that frees only its own buffers when closed (a
    bus gives one to each device); `carve(size)` sets a sub-range aside as a pool of its own.
    """

    _region: PhysicalRegion

    def __init__(self, region: PhysicalRegion, *, name: str | None = None, dma_offset: int = 0) -> None:
        if not isinstance(region, PhysicalRegion):
            raise MmioValueError(f"DmaPool needs a PhysicalRegion, got {type(region).__name__}")
        if not region.memory:
            raise MmioValueError(f"DMA pool over {region.name!r}: the region is device registers; DMA buffers "
                                 "need normal memory (create_region(..., memory=True))")
        name = name or region.name
        policy = CachePolicy.CACHED if region.coherent else CachePolicy.UNCACHED
        mapping = region.map(policy)
        try:
            mem = mapping.array(np.uint8)
        except MmioError as exc:
            raise MmioError(f"DMA pool {name!r}: needs mmap-backed memory the device shares; {exc}") from None
        self._region = region
        self._setup(name, region.paddr, region.size, region.coherent, dma_offset, mem, region.paddr,
                    RangeAllocator(region.paddr, region.size, f"dma pool {name}"), None, None)
        self._mapping = mapping

    def _setup(self, name: str, base: int, size: int, coherent: bool, dma_offset: int, mem: np.ndarray,
               mem_base: int, allocator: RangeAllocator, parent: DmaPool | None,
               carve: Allocation | None) -> None:
        self.name = name
        self.base = base
        self.size = size
        self.coherent = coherent
        self.dma_offset = dma_offset
        self._mem = mem
        self._mem_base = mem_base
        self._allocator = allocator
        self._parent = parent
        self._carve = carve
        self._blocks: dict[int, _Block] = {}
        self._children: list[DmaPool] = []
        self._lock = threading.RLock()
        self._closed = False

    @classmethod
    def from_space(cls, space: AddressSpace, base: int | None = None, size: int | None = None, *,
                   coherent: bool | None = None, name: str | None = None, dma_offset: int = 0) -> DmaPool:
        """A pool over [base, base + size) of `space` (default: all of it), e.g. a RamSpace of guest RAM."""
        base = space.base if base is None else base
        size = space.base + space.size - base if size is None else size
        resource = MmioResource(space, base, size)
        region = resource.create_region(base, size, name or f"dma@{base:#x}", memory=True, coherent=coherent)
        return cls(region, name=name, dma_offset=dma_offset)

    def __repr__(self) -> str:
        kind = "coherent" if self.coherent else "non-coherent"
        return (f"<DmaPool {self.name!r} [{self.base:#x}, {self.base + self.size:#x}) {kind} "
                f"{len(self._blocks)} buffers{' closed' if self._closed else ''}>")

    def shared_file(self) -> tuple[int | None, str | None, int]:
        """(descriptor, path, address of the file's first byte) of the shared file behind this pool's memory
        (either may be None), for exporting buffers to another process. That process can map all of the
        file: export only to processes trusted with the device."""
        space: Any = self._region._resource.space
        return (getattr(space, "ram_fd", None),
                getattr(space, "ram_path", None) or getattr(space, "path", None),
                getattr(space, "ram_base", space.base))

    # --- state --------------------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def buffers(self) -> int:
        """Live buffers allocated from this pool (not its children)."""
        return len(self._blocks)

    @property
    def used_bytes(self) -> int:
        return sum(b.span for b in self._blocks.values())

    @property
    def free_bytes(self) -> int:
        """Free bytes in the range this pool draws from (shared with its parent for a child)."""
        return self._allocator.free_bytes

    def _check_open(self, what: str) -> None:
        if self._closed:
            raise BadStateError(f"DMA pool {self.name!r} is closed (its device was unbound): cannot {what}")

    # --- buffers ------------------------------------------------------------------------------------
    def alloc(self, size: int, align: int = CACHE_LINE, *, dtype: Any = np.uint8, name: str | None = None,
              zero: bool = True) -> DmaBuffer:
        """A zeroed buffer of `size` bytes at an `align`-aligned address (a power of two).

        In non-coherent pools buffers start and end on cache lines, so syncing one never touches another.
        """
        self._check_open("allocate")
        dt = np.dtype(dtype)
        if dt.itemsize == 0 or dt.hasobject:
            raise MmioValueError(f"DMA pool {self.name!r}: dtype {dt} cannot describe device memory "
                                 "(it has no size, or holds Python objects)")
        if not isinstance(size, int) or isinstance(size, bool) or size <= 0 or size % dt.itemsize:
            raise MmioValueError(f"DMA pool {self.name!r}: size must be a positive multiple of {dt.itemsize} "
                                 f"({dt}), got {size!r}")
        if not is_power_of_two(align):
            raise MmioValueError(f"DMA pool {self.name!r}: alignment must be a power of two, got {align!r}")
        span = size
        if not self.coherent:
            align = max(align, CACHE_LINE)
            span = -(-size // CACHE_LINE) * CACHE_LINE
        label = name or f"buf{len(self._blocks)}"
        with self._lock:
            try:
                where = self._allocator.alloc(span, align, owner=f"{self.name}/{label}")
            except AllocationError as exc:
                raise DmaExhaustedError(f"DMA pool {self.name!r} cannot allocate {size:#x} bytes aligned to "
                                        f"{align:#x} for {label!r}: {exc}") from None
            start = where.base - self._mem_base
            mem = self._mem[start:start + span]
            if zero:
                mem[:] = 0
            cpu = mem if self.coherent else mem.copy()
            block = _Block(self, label, where.base, size, span, mem, cpu,
                           int(cpu.__array_interface__["data"][0]))
            base = np.asarray(_Memory(block, cpu[:size].view(dt)))
            buf = base.view(DmaBuffer)
            buf._dma = block
            block.handle = weakref.ref(buf)
            block.base = base
            self._blocks[where.base] = block
            return buf

    def free(self, buf: DmaBuffer) -> None:
        """Return `buf`'s range (any view of the buffer will do). Freeing twice raises FreedBufferError."""
        block = getattr(buf, "_dma", None)
        if block is None:
            raise MmioValueError(f"DMA pool {self.name!r}: free() of an array that is not a DMA buffer")
        with self._lock:
            if block.freed:
                raise FreedBufferError(f"DMA pool {self.name!r}: double free of buffer {block.name!r} "
                                       f"at {block.paddr:#x}")
            if block.pool is not self:
                raise MmioValueError(f"DMA pool {self.name!r}: buffer {block.name!r} belongs to pool "
                                     f"{block.pool.name!r}")
            self._release(block)

    def _release(self, block: _Block) -> None:
        block.freed = True
        del self._blocks[block.paddr]
        self._allocator.free(block.paddr)
        handle = block.handle() if block.handle is not None else None
        if handle is not None:
            handle.flags.writeable = False
        if block.base is not None:
            block.base.flags.writeable = False

    # --- sub-pools ----------------------------------------------------------------------------------
    def child(self, name: str) -> DmaPool:
        """A pool sharing this range whose `close()` frees only its own buffers (one per device)."""
        self._check_open("make a child pool")
        pool = object.__new__(DmaPool)
        pool._region = self._region
        pool._setup(name, self.base, self.size, self.coherent, self.dma_offset, self._mem, self._mem_base,
                    self._allocator, self, None)
        with self._lock:
            self._children.append(pool)
        return pool

    def carve(self, size: int, align: int = PAGE_SIZE, name: str | None = None) -> DmaPool:
        """Set aside `size` bytes as a pool of their own; closing it returns them."""
        self._check_open("carve")
        label = name or f"{self.name}/carve{len(self._children)}"
        with self._lock:
            try:
                where = self._allocator.alloc(size, align, owner=label)
            except AllocationError as exc:
                raise DmaExhaustedError(f"DMA pool {self.name!r} cannot carve {size:#x} bytes for {label!r}: "
                                        f"{exc}") from None
            pool = object.__new__(DmaPool)
            pool._region = self._region
            pool._setup(label, where.base, size, self.coherent, self.dma_offset, self._mem, self._mem_base,
                        RangeAllocator(where.base, size, f"dma pool {label}"), self, where)
            self._children.append(pool)
        return pool

    def close(self) -> int:
        """Free every buffer (this pool's and its children's), return a carved range; returns buffers freed."""
        with self._lock:
            if self._closed:
                return 0
            freed = sum(child.close() for child in list(self._children))
            for block in list(self._blocks.values()):
                self._release(block)
                freed += 1
            self._closed = True
            if self._parent is not None:
                with self._parent._lock:
                    if self in self._parent._children:
                        self._parent._children.remove(self)
                    if self._carve is not None:
                        self._parent._allocator.free(self._carve.base)
            return freed
