"""Capabilities: resources mint regions, maps fix a policy, revocation reaches every mapping and view."""

from __future__ import annotations

import numpy as np
import pytest

from mmiotk import (
    AlignmentError,
    BadStateError,
    CachePolicy,
    MmioResource,
    OutOfRangeError,
    PhysicalRegion,
    PolicyError,
    RamSpace,
    RevokedError,
)

RAM_BASE = 0x4000_0000


def test_physical_region_has_no_public_constructor():
    with pytest.raises(TypeError, match="no public constructor"):
        PhysicalRegion()


def test_region_covers_exactly_the_requested_range(resource):
    region = resource.create_region(RAM_BASE + 0x1010, 0x30, "dev")
    assert (region.paddr, region.size) == (RAM_BASE + 0x1010, 0x30)
    assert region.page_span == (RAM_BASE + 0x1000, 0x1000)
    buf = region.map(CachePolicy.UNCACHED)
    assert len(buf) == 0x30
    with pytest.raises(OutOfRangeError):
        buf.read32(0x30)


@pytest.mark.parametrize("paddr,size", [(RAM_BASE - 8, 16), (RAM_BASE + (1 << 20) - 8, 16), (0, 8)])
def test_region_outside_the_resource_is_refused(resource, paddr, size):
    with pytest.raises(OutOfRangeError, match="outside resource"):
        resource.create_region(paddr, size)


def test_resource_outside_its_space_is_refused(ram):
    with pytest.raises(OutOfRangeError, match="outside space"):
        MmioResource(ram, RAM_BASE + (1 << 19), 1 << 20)


def test_region_start_must_keep_accesses_aligned(resource):
    with pytest.raises(AlignmentError, match="8-byte aligned"):
        resource.create_region(RAM_BASE + 4, 16)


def test_first_map_fixes_the_policy(resource):
    region = resource.create_region(RAM_BASE, 0x100, "dev")
    region.map(CachePolicy.UNCACHED)
    region.map(CachePolicy.UNCACHED)
    with pytest.raises(BadStateError, match="already mapped UNCACHED"):
        region.map(CachePolicy.UNCACHED_DEVICE)


def test_device_registers_are_never_cached_unless_coherent(resource):
    with pytest.raises(PolicyError, match="coherent"):
        resource.create_region(RAM_BASE, 0x100, "dev", coherent=False).map(CachePolicy.CACHED)


def test_write_combining_needs_a_prefetchable_region(resource):
    with pytest.raises(PolicyError, match="prefetchable"):
        resource.create_region(RAM_BASE, 0x100, "dev").map(CachePolicy.WRITE_COMBINING)
    resource.create_region(RAM_BASE + 0x1000, 0x100, "bar", prefetchable=True).map(CachePolicy.WRITE_COMBINING)


@pytest.mark.parametrize("policy", [CachePolicy.CACHED])
def test_aarch64_device_memory_takes_only_device_types(policy):
    with RamSpace(1 << 16, base=0x0A00_0000, arch="aarch64") as ram:
        resource = MmioResource(ram, 0x0A00_0000, 1 << 16)
        region = resource.create_region(0x0A00_0000, 0x200, "virtio", coherent=True)
        with pytest.raises(PolicyError, match="aarch64 device memory"):
            region.map(policy)
        region.map(CachePolicy.UNCACHED_DEVICE)


def test_x86_allows_cached_coherent_device_memory():
    with RamSpace(1 << 16, arch="x86_64") as ram:
        region = MmioResource(ram, 0, 1 << 16).create_region(0, 0x100, "coherent", coherent=True)
        assert region.map(CachePolicy.CACHED).policy is CachePolicy.CACHED


def test_normal_memory_takes_any_policy(resource):
    for i, policy in enumerate(CachePolicy):
        resource.create_region(RAM_BASE + i * 0x1000, 0x100, memory=True, coherent=False).map(policy)


def test_revoke_reaches_every_mapping_and_view(resource):
    region = resource.create_region(RAM_BASE, 0x100, "uart0")
    first, second = region.map(CachePolicy.UNCACHED), region.map(CachePolicy.UNCACHED)
    view = first.view(0x40, 0x20)
    region.revoke()
    for buf in (first, second, view):
        assert buf.revoked
        with pytest.raises(RevokedError, match="uart0"):
            buf.read32(0)
        with pytest.raises(RevokedError):
            buf.write64_relaxed(8, 1)
        with pytest.raises(RevokedError):
            buf.read_block(0, 4)
        with pytest.raises(RevokedError):
            buf.array(np.uint8, 0, 4)
    with pytest.raises(RevokedError, match="cannot be mapped"):
        region.map(CachePolicy.UNCACHED)


def test_revoke_all_revokes_every_region_of_a_resource(resource):
    a = resource.create_region(RAM_BASE, 0x100).map(CachePolicy.UNCACHED)
    b = resource.create_region(RAM_BASE + 0x100, 0x100).map(CachePolicy.UNCACHED)
    resource.revoke_all()
    assert a.revoked and b.revoked


def test_view_is_bounded_and_relative(regs, ram):
    view = regs.view(0x40, 0x10)
    view.write32(0xC, 0xABCD)
    assert regs.read32(0x4C) == 0xABCD
    assert view.paddr == regs.paddr + 0x40
    with pytest.raises(OutOfRangeError):
        view.write32(0x10, 1)
    with pytest.raises(OutOfRangeError):
        view.read_block(0x8, 0x10)
    nested = view.view(8, 8)
    nested.write64(0, 7)
    assert regs.read64(0x48) == 7
    with pytest.raises(OutOfRangeError):
        nested.read8(8)


def test_view_reaching_outside_its_parent_is_refused(regs):
    with pytest.raises(OutOfRangeError):
        regs.view(0xF8, 0x10)
    with pytest.raises(AlignmentError, match="multiple of 8"):
        regs.view(4, 8)
