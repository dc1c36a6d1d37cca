"""DMA pools: alignment, exhaustion, freeing, use-after-free, coherent and non-coherent syncs, sub-pools,
and buffers shared with another process's view of the memory (the QEMU guest-RAM case)."""

from __future__ import annotations

import itertools
import mmap
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import numpy as np
import pytest

from mmiotk import RamSpace
from mmiotk.allocator import AllocationError
from mmiotk.dma import DmaBuffer, DmaDirection, DmaExhaustedError, DmaPool, FreedBufferError
from mmiotk.errors import BadStateError, MmioValueError
from mmiotk.region import MmioResource

BASE = 0x4000_0000
SIZE = 0x10000


@pytest.fixture
def mem() -> Iterator[RamSpace]:
    space = RamSpace(SIZE, base=BASE, name="guest-ram")
    yield space
    space.close()


@pytest.fixture
def pool(mem: RamSpace) -> DmaPool:
    return DmaPool.from_space(mem, name="pool")


@pytest.fixture
def nc_pool(mem: RamSpace) -> DmaPool:
    return DmaPool.from_space(mem, coherent=False, name="nc")


def device_bytes(mem: RamSpace, buf: DmaBuffer, n: int) -> bytes:
    """What the device sees at the buffer's address."""
    start = buf.paddr - mem.base
    return bytes(mem.array[start:start + n])


def test_buffer_is_a_numpy_array_backed_by_shared_memory_at_its_paddr(pool: DmaPool, mem: RamSpace) -> None:
    buf = pool.alloc(64)
    assert isinstance(buf, np.ndarray) and buf.dtype == np.uint8 and buf.nbytes == 64
    assert BASE <= buf.paddr < BASE + SIZE
    buf[:4] = [1, 2, 3, 4]
    assert device_bytes(mem, buf, 4) == b"\x01\x02\x03\x04"


@pytest.mark.parametrize("align", [1, 16, 256, 4096])
def test_buffers_start_at_the_requested_alignment(pool: DmaPool, align: int) -> None:
    pool.alloc(24, align=1)  # knock the cursor off any alignment
    assert pool.alloc(100, align=align).paddr % align == 0


def test_alignment_must_be_a_power_of_two(pool: DmaPool) -> None:
    with pytest.raises(MmioValueError, match="power of two"):
        pool.alloc(64, align=48)


@pytest.mark.parametrize("size", [0, -8, 3.0])
def test_size_must_be_a_positive_int(pool: DmaPool, size: object) -> None:
    with pytest.raises(MmioValueError, match="size"):
        pool.alloc(size)  # type: ignore[arg-type]


def test_dtype_views_and_slices_keep_their_device_addresses(pool: DmaPool) -> None:
    buf = pool.alloc(64, dtype=np.uint32)
    assert buf.dtype == np.uint32 and len(buf) == 16
    assert buf[4:].paddr == buf.paddr + 16
    assert buf.view(np.uint64)[1:].paddr == buf.paddr + 8


def test_dma_addr_adds_the_pool_bus_offset(mem: RamSpace) -> None:
    pool = DmaPool.from_space(mem, dma_offset=0x1_0000_0000)
    buf = pool.alloc(64)
    assert buf.dma_addr == buf.paddr + 0x1_0000_0000


def test_a_copy_is_not_dma_memory(pool: DmaPool) -> None:
    buf = pool.alloc(64)
    with pytest.raises(MmioValueError, match="not inside DMA buffer"):
        _ = cast(DmaBuffer, buf + 1).paddr


def test_exhaustion_is_a_clear_error_and_changes_nothing(pool: DmaPool) -> None:
    pool.alloc(SIZE - 0x1000)
    free_before = pool.free_bytes
    with pytest.raises(DmaExhaustedError, match=r"cannot allocate 0x2000 bytes.*largest 0x1000"):
        pool.alloc(0x2000)
    assert isinstance(DmaExhaustedError("x"), AllocationError)
    assert pool.free_bytes == free_before
    assert pool.alloc(0x1000).nbytes == 0x1000


def test_free_returns_the_range_for_reuse(pool: DmaPool) -> None:
    first = pool.alloc(SIZE)
    paddr = first.paddr
    pool.free(first)
    assert pool.free_bytes == SIZE
    assert pool.alloc(SIZE).paddr == paddr


def test_new_buffers_are_zeroed_even_over_old_data(pool: DmaPool) -> None:
    old = pool.alloc(64)
    old[:] = 0xAA
    old.free()
    assert not pool.alloc(64).any()


@pytest.mark.parametrize("use", ["paddr", "dma_addr", "sync_for_device", "sync_for_cpu", "free"])
def test_using_a_freed_buffer_raises(pool: DmaPool, use: str) -> None:
    buf = pool.alloc(64)
    view = buf[8:16]
    pool.free(buf)
    for target in (buf, view):
        with pytest.raises(FreedBufferError, match="freed"):
            attr = getattr(target, use)
            if callable(attr):
                attr()


def test_freed_buffer_becomes_read_only(pool: DmaPool) -> None:
    buf = pool.alloc(64)
    buf.free()
    assert buf.freed
    with pytest.raises(ValueError, match="read-only"):
        buf[0] = 1


def test_double_free_raises(pool: DmaPool) -> None:
    buf = pool.alloc(64)
    pool.free(buf)
    with pytest.raises(FreedBufferError, match="double free"):
        pool.free(buf)


def test_freeing_into_the_wrong_pool_raises_and_keeps_the_buffer(pool: DmaPool) -> None:
    a, b = pool.child("a"), pool.child("b")
    buf = a.alloc(64)
    with pytest.raises(MmioValueError, match="belongs to pool 'a'"):
        b.free(buf)
    assert buf.paddr  # still live


def test_free_of_a_plain_array_raises(pool: DmaPool) -> None:
    with pytest.raises(MmioValueError, match="not a DMA buffer"):
        pool.free(np.zeros(4, np.uint8))  # type: ignore[arg-type]


def test_coherent_syncs_change_nothing_and_device_sees_writes_at_once(pool: DmaPool, mem: RamSpace) -> None:
    buf = pool.alloc(64)
    buf[0] = 7
    assert device_bytes(mem, buf, 1) == b"\x07"
    buf.sync_for_device()
    buf.sync_for_cpu()
    assert buf[0] == 7


def test_non_coherent_write_reaches_the_device_only_after_sync_for_device(nc_pool: DmaPool, mem: RamSpace) -> None:
    buf = nc_pool.alloc(64)
    buf[:4] = [9, 9, 9, 9]
    assert device_bytes(mem, buf, 4) == b"\0\0\0\0"  # forgot the sync: the device reads stale memory
    buf.sync_for_device(DmaDirection.TO_DEVICE)
    assert device_bytes(mem, buf, 4) == b"\x09\x09\x09\x09"


def test_non_coherent_device_write_is_seen_only_after_sync_for_cpu(nc_pool: DmaPool, mem: RamSpace) -> None:
    buf = nc_pool.alloc(128)
    start = buf.paddr - mem.base
    mem.array[start + 64:start + 68] = [5, 6, 7, 8]  # the device writes the second line
    assert not buf[64:68].any()  # forgot the sync: the CPU reads its stale copy
    buf[64:].sync_for_cpu(DmaDirection.FROM_DEVICE)
    assert list(buf[64:68]) == [5, 6, 7, 8]


def test_non_coherent_syncs_honour_the_direction(nc_pool: DmaPool, mem: RamSpace) -> None:
    buf = nc_pool.alloc(64)
    buf[0] = 1
    buf.sync_for_device(DmaDirection.FROM_DEVICE)  # invalidate only: nothing written back
    assert device_bytes(mem, buf, 1) == b"\0"
    mem.array[buf.paddr - mem.base] = 2
    buf.sync_for_cpu(DmaDirection.TO_DEVICE)  # the CPU only wrote: nothing to reload
    assert buf[0] == 1


def test_non_coherent_buffers_occupy_whole_cache_lines(nc_pool: DmaPool) -> None:
    a, b = nc_pool.alloc(10, align=1), nc_pool.alloc(10, align=1)
    assert a.paddr % 64 == 0 and b.paddr - a.paddr == 64


def test_partial_sync_of_a_slice_writes_back_only_its_lines(nc_pool: DmaPool, mem: RamSpace) -> None:
    buf = nc_pool.alloc(256)
    buf[:] = 3
    buf[128:192].sync_for_device()
    start = buf.paddr - mem.base
    assert not mem.array[start:start + 128].any()
    assert (mem.array[start + 128:start + 192] == 3).all()
    assert not mem.array[start + 192:start + 256].any()


def test_child_pool_close_frees_only_its_buffers(pool: DmaPool) -> None:
    child = pool.child("dev0")
    mine, other = child.alloc(64), pool.alloc(64)
    assert child.close() == 1
    assert mine.freed and not other.freed
    with pytest.raises(BadStateError, match="closed"):
        child.alloc(64)


def test_carve_sets_a_range_aside_and_close_returns_it(pool: DmaPool) -> None:
    carve = pool.carve(0x4000, name="rings")
    assert carve.base % 0x1000 == 0 and carve.size == 0x4000
    assert pool.free_bytes == SIZE - 0x4000
    buf = carve.alloc(0x4000)
    assert carve.base <= buf.paddr < carve.base + 0x4000
    with pytest.raises(DmaExhaustedError, match="rings"):
        carve.alloc(64)
    carve.close()
    assert buf.freed and pool.free_bytes == SIZE


def test_closing_a_pool_closes_its_children(pool: DmaPool) -> None:
    buf = pool.child("c").alloc(64)
    assert pool.close() == 1
    assert buf.freed and pool.closed


def test_pool_refuses_device_register_regions(mem: RamSpace) -> None:
    region = MmioResource(mem, BASE, SIZE).create_region(BASE, 0x100, "regs")
    with pytest.raises(MmioValueError, match="device registers"):
        DmaPool(region)


def test_buffers_in_a_shm_file_are_seen_by_another_mapping_of_it(tmp_path: Path) -> None:
    """The QEMU case: guest RAM is a file; the other side maps it and reads what the driver wrote."""
    path = tmp_path / "guest-ram"
    with RamSpace(SIZE, base=BASE, path=path, name="guest") as ram:
        pool = DmaPool.from_space(ram, BASE + 0x1000, 0x4000)
        buf = pool.alloc(16, align=16)
        buf[:] = np.arange(16, dtype=np.uint8)
        fd = os.open(path, os.O_RDONLY)
        try:
            other = mmap.mmap(fd, SIZE, mmap.MAP_SHARED, mmap.PROT_READ)
        finally:
            os.close(fd)
        off = buf.paddr - BASE
        assert other[off:off + 16] == bytes(range(16))
        other.close()


def test_concurrent_allocations_never_overlap(pool: DmaPool) -> None:
    got: list[DmaBuffer] = []
    lock = threading.Lock()

    def grab() -> None:
        for _ in range(16):
            buf = pool.alloc(64, align=64)
            with lock:
                got.append(buf)

    threads = [threading.Thread(target=grab) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    starts = sorted(b.paddr for b in got)
    assert len(starts) == 64 and all(b - a >= 64 for a, b in itertools.pairwise(starts))
