"""RangeAllocator: natural alignment, first fit, exhaustion, fixed reservations and overlap, freeing."""

from __future__ import annotations

import pytest

from mmiotk.allocator import AllocationError, OverlapError, RangeAllocator
from mmiotk.errors import MmioValueError


@pytest.fixture
def window() -> RangeAllocator:
    return RangeAllocator(0x1000_0000, 0x10_0000, "mem")


@pytest.mark.parametrize("size", [0x10, 0x1000, 0x4000, 0x8_0000])
def test_allocations_are_aligned_as_asked(window: RangeAllocator, size: int) -> None:
    window.alloc(0x10, 0x10, "pad")
    got = window.alloc(size, size, "bar")
    assert got.base % size == 0 and got.size == size


def test_first_fit_reuses_the_lowest_gap(window: RangeAllocator) -> None:
    a = window.alloc(0x1000, 0x1000, "a")
    window.alloc(0x1000, 0x1000, "b")
    window.free(a.base)
    assert window.alloc(0x800, 0x800, "c").base == a.base


def test_exhaustion_names_the_window_request_and_free_space(window: RangeAllocator) -> None:
    window.alloc(0x8_0000, 0x8_0000, "big")
    window.alloc(0x1000, 0x1000, "small")
    with pytest.raises(AllocationError, match=r"'mem'.*0x80000-byte range aligned to 0x80000 for dev0.*largest "):
        window.alloc(0x8_0000, 0x8_0000, "dev0")


def test_failed_allocation_changes_nothing(window: RangeAllocator) -> None:
    window.alloc(0xC_0000, 1, "x")
    before = window.allocations
    with pytest.raises(AllocationError):
        window.alloc(0x8_0000, 1, "y")
    assert window.allocations == before


def test_alignment_can_exhaust_a_window_with_enough_free_bytes(window: RangeAllocator) -> None:
    window.alloc(0x10, 0x10, "low")
    with pytest.raises(AllocationError):
        window.alloc(0x10_0000, 0x10_0000, "whole")
    assert window.free_bytes == 0x10_0000 - 0x10


@pytest.mark.parametrize("align", [0, 3, 0x30, -4])
def test_alignment_must_be_a_power_of_two(window: RangeAllocator, align: int) -> None:
    with pytest.raises(MmioValueError, match="power of two"):
        window.alloc(0x10, align, "x")


def test_reserve_overlap_names_the_owner_already_there(window: RangeAllocator) -> None:
    window.reserve(0x1000_1000, 0x1000, "uart0")
    with pytest.raises(OverlapError, match=r"blk0 \[0x10001800, 0x10002800\) overlaps uart0"):
        window.reserve(0x1000_1800, 0x1000, "blk0")


def test_reserve_outside_the_window_is_refused(window: RangeAllocator) -> None:
    with pytest.raises(OverlapError, match="outside window 'mem'"):
        window.reserve(0x0FFF_F000, 0x2000, "low")


def test_free_of_an_unallocated_base_raises(window: RangeAllocator) -> None:
    with pytest.raises(MmioValueError, match="nothing is allocated at 0x10000000"):
        window.free(0x1000_0000)


def test_owner_at_finds_the_covering_allocation(window: RangeAllocator) -> None:
    a = window.alloc(0x1000, 0x1000, "a")
    assert window.owner_at(a.base + 0xFFF) == a
    assert window.owner_at(a.base + 0x1000) is None


def test_free_ranges_list_the_gaps_in_order(window: RangeAllocator) -> None:
    window.reserve(0x1000_1000, 0x1000, "a")
    assert window.free_ranges() == [(0x1000_0000, 0x1000), (0x1000_2000, 0x10_0000 - 0x2000)]
