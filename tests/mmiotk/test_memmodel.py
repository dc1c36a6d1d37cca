"""The policy-faithful memory model catches missing barriers and missing cache maintenance."""

from __future__ import annotations

import pytest

from mmiotk import AddressSpace, CachePolicy, MmioBuffer, MmioResource, RamSpace, Window
from mmiotk.ram import RamSpace as _Ram

DESC_BASE = 0x1000_0000
DOORBELL_BASE = 0x2000_0000


class DoorbellDevice(AddressSpace):
    """A device with a descriptor area in RAM and one doorbell register.

    On every doorbell write it snapshots the descriptor the way DMA would: straight from memory.
    """

    simulated = True

    def __init__(self) -> None:
        super().__init__(DESC_BASE, DOORBELL_BASE + 0x1000 - DESC_BASE, name="doorbell-dev")
        self.ram = _Ram(0x1000, base=DESC_BASE)
        self.seen: list[bytes] = []

    def open(self, paddr: int, size: int, policy: CachePolicy) -> Window:
        if paddr >= DOORBELL_BASE:
            return _DoorbellWindow(self, paddr, size)
        return self.ram.open(paddr, size, policy)


class _DoorbellWindow(Window):
    def __init__(self, device: DoorbellDevice, paddr: int, size: int) -> None:
        super().__init__(paddr, size)
        self.device = device

    def read(self, offset: int, width: int) -> int:
        return 0

    def write(self, offset: int, width: int, value: int) -> None:
        self.device.seen.append(bytes(self.device.ram.array[:16]))


def submit(desc: MmioBuffer, doorbell: MmioBuffer, *, with_wmb: bool) -> None:
    """What a driver does: fill a 16-byte descriptor, then ring the doorbell."""
    desc.write64(0, 0x4000_1000)
    desc.write32(8, 512)
    desc.write16(12, 0x1)
    desc.write16(14, 0x2)
    if with_wmb:
        desc.wmb()
    doorbell.write32(0, 1)


@pytest.fixture
def device() -> DoorbellDevice:
    return DoorbellDevice()


def mappings(device: DoorbellDevice) -> tuple[MmioBuffer, MmioBuffer]:
    resource = MmioResource(device, device.base, device.size)
    desc = resource.create_region(DESC_BASE, 0x100, "desc", memory=True).map(CachePolicy.WRITE_COMBINING)
    doorbell = resource.create_region(DOORBELL_BASE, 4, "doorbell").map(CachePolicy.UNCACHED_DEVICE)
    return desc, doorbell


EXPECTED = (0x4000_1000).to_bytes(8, "little") + (512).to_bytes(4, "little") + b"\x01\x00\x02\x00"


def test_driver_without_wmb_rings_the_doorbell_on_a_stale_descriptor(device):
    desc, doorbell = mappings(device)
    submit(desc, doorbell, with_wmb=False)
    assert device.seen == [bytes(16)]


def test_driver_with_wmb_rings_the_doorbell_on_the_filled_descriptor(device):
    desc, doorbell = mappings(device)
    submit(desc, doorbell, with_wmb=True)
    assert device.seen == [EXPECTED]


def test_write_combining_drains_on_a_read_through_the_mapping(device):
    desc, _ = mappings(device)
    desc.write32(0, 0xAB)
    assert device.ram.array[0] == 0
    assert desc.read32(0) == 0xAB
    assert device.ram.array[0] == 0xAB


def test_uncached_mapping_is_visible_at_once(ram, resource):
    buf = resource.create_region(ram.base, 0x100, memory=True).map(CachePolicy.UNCACHED)
    buf.write32(0, 5)
    assert ram.array[0] == 5


@pytest.fixture
def noncoherent() -> tuple[RamSpace, MmioBuffer]:
    ram = RamSpace(1 << 16, base=0, coherent=False)
    buf = MmioResource(ram, 0, 1 << 16).create_region(0, 0x1000, "dma", memory=True).map(CachePolicy.CACHED)
    return ram, buf


def test_cached_noncoherent_read_is_stale_until_invalidated(noncoherent):
    ram, buf = noncoherent
    assert buf.read32(0x40) == 0
    ram.array[0x40] = 0x77  # the device writes memory behind the CPU cache
    assert buf.read32(0x40) == 0
    buf.cache_invalidate(0x40, 4)
    assert buf.read32(0x40) == 0x77


def test_cached_noncoherent_write_reaches_memory_only_when_cleaned(noncoherent):
    ram, buf = noncoherent
    buf.write64(0x80, 0x1122334455667788)
    assert not ram.array[0x80:0x88].any()
    buf.cache_clean(0x80, 8)
    assert bytes(ram.array[0x80:0x88]) == (0x1122334455667788).to_bytes(8, "little")


def test_coherent_cached_memory_needs_no_maintenance(ram, resource):
    buf = resource.create_region(ram.base, 0x100, memory=True).map(CachePolicy.CACHED)
    ram.array[0] = 9
    assert buf.read8(0) == 9
