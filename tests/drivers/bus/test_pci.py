"""PCI bus: natural alignment, window choice by prefetchability, all-or-nothing enumeration, exhaustion,
hotplug add/remove with revocation seen by the driver, and functions with no memory of their own."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from drivers.bus.pci import Bar, PciBus, PciDevice, PciFunction
from mmiotk import CachePolicy, MmioBuffer, PolicyError, RamSpace, RevokedError
from mmiotk.allocator import AllocationError
from mmiotk.bus import Device, DeviceState, Driver, NoResourceError
from mmiotk.errors import MmioValueError

MEM = 0xE000_0000
PREF = 0xE100_0000
MiB = 1 << 20


@pytest.fixture
def space() -> Iterator[RamSpace]:
    ram = RamSpace(2 * 16 * MiB, base=MEM, name="pci-space")  # anonymous, touched only where written
    yield ram
    ram.close()


@pytest.fixture
def bus(space: RamSpace) -> Iterator[PciBus]:
    b = PciBus(space, mem_window=(MEM, 16 * MiB), pref_window=(PREF, 16 * MiB), hotplug_mem=4 * MiB,
               hotplug_pref=4 * MiB)
    yield b
    b.close()


class Nic(Driver):
    ids = ((0x8086, 0x100E),)

    def bind(self, device: Device) -> None:
        self.regs: MmioBuffer = device.mmio(0).map(CachePolicy.UNCACHED_DEVICE)


def nic(name: str = "nic0", *bars: Bar) -> PciFunction:
    return PciFunction(name, 0x8086, 0x100E, bars=bars or (Bar(0x2_0000),))


# --- static placement ------------------------------------------------------------------------------
def test_every_bar_is_naturally_aligned(bus: PciBus) -> None:
    sizes = [0x10, 0x100, 0x1000, 0x4000, 0x10_0000, 0x40]
    (dev,) = bus.enumerate([PciFunction("d", 1, 2, bars=tuple(Bar(s) for s in sizes))])
    for index, size in enumerate(sizes):
        assert dev.mmio_ranges[index].size == size and dev.mmio_ranges[index].paddr % size == 0


def test_bars_do_not_overlap(bus: PciBus) -> None:
    devices = bus.enumerate([PciFunction(f"d{i}", 1, i, bars=(Bar(0x1000), Bar(0x10_0000))) for i in range(4)])
    ranges = sorted((r.paddr, r.end) for d in devices for r in d.mmio_ranges.values())
    assert all(end <= nxt for (_, end), (nxt, _) in itertools.pairwise(ranges))


def test_non_prefetchable_bars_go_to_the_memory_window_and_refuse_write_combining(bus: PciBus) -> None:
    (dev,) = bus.enumerate([PciFunction("d", 1, 2, bars=(Bar(0x1000),))])
    region = dev.mmio(0)
    assert MEM <= region.paddr < MEM + 16 * MiB and not region.prefetchable
    with pytest.raises(PolicyError, match="prefetchable"):
        region.map(CachePolicy.WRITE_COMBINING)


def test_prefetchable_bars_go_to_the_prefetchable_window_and_may_write_combine(bus: PciBus) -> None:
    (dev,) = bus.enumerate([PciFunction("gpu", 1, 2, bars=(Bar(0x1000), Bar(0x10_0000, prefetchable=True)))])
    region = dev.mmio(1)
    assert PREF <= region.paddr < PREF + 16 * MiB and region.prefetchable
    fb = region.map(CachePolicy.WRITE_COMBINING)
    fb.write32(0, 1)
    fb.wmb()
    assert fb.read32(0) == 1


def test_without_a_prefetchable_window_prefetchable_bars_use_the_memory_window(space: RamSpace) -> None:
    plain = PciBus(space, mem_window=(MEM, 16 * MiB))
    (dev,) = plain.enumerate([PciFunction("gpu", 1, 2, bars=(Bar(0x1000, prefetchable=True),))])
    assert MEM <= dev.mmio_ranges[0].paddr < MEM + 16 * MiB and dev.mmio_ranges[0].prefetchable


def test_hotplug_window_is_set_aside_from_the_boot_window(bus: PciBus) -> None:
    assert bus.mem.hotplug is not None
    hot = bus.mem.hotplug
    assert hot.size == 4 * MiB and hot.base % (4 * MiB) == 0
    assert bus.mem.allocator.free_bytes == 12 * MiB


def test_exhaustion_names_function_bar_and_window_and_places_nothing(bus: PciBus) -> None:
    specs = [PciFunction("small", 1, 1, bars=(Bar(0x1000),)), PciFunction("huge", 1, 2, bars=(Bar(16 * MiB),))]
    with pytest.raises(AllocationError, match=r"'huge' BAR 0 \(0x1000000 bytes\).*'pci0 mem'.*exhausted"):
        bus.enumerate(specs)
    assert bus.devices == {}
    assert bus.mem.allocator.free_bytes == 12 * MiB
    assert bus.irq_numbers.used_bytes == 0


def test_functions_filling_a_window_exactly_all_fit(space: RamSpace) -> None:
    tight = PciBus(space, mem_window=(MEM, 2 * MiB), irq_count=8)
    specs = [PciFunction("a", 1, 1, bars=(Bar(MiB // 4),)), PciFunction("b", 1, 2, bars=(Bar(MiB),)),
             PciFunction("c", 1, 3, bars=(Bar(MiB // 2),)), PciFunction("d", 1, 4, bars=(Bar(MiB // 4),))]
    assert len(tight.enumerate(specs)) == 4
    assert tight.mem.allocator.free_bytes == 0


@pytest.mark.parametrize(("bar", "words"), [
    (Bar(0x3000), "power of two"), (Bar(8), "power of two >= 16"), (Bar(0x1000, index=6), "BAR numbers"),
])
def test_bad_bar_declarations_are_refused(bus: PciBus, bar: Bar, words: str) -> None:
    with pytest.raises(MmioValueError, match=words):
        bus.enumerate([PciFunction("bad", 1, 2, bars=(bar,))])


def test_duplicate_function_names_are_refused(bus: PciBus) -> None:
    bus.enumerate([nic()])
    with pytest.raises(MmioValueError, match="'nic0' is already in use"):
        bus.hotplug_add(nic())


def test_bar_numbers_index_the_regions(bus: PciBus) -> None:
    (dev,) = bus.enumerate([PciFunction("d", 1, 2, bars=(Bar(0x1000, index=2), Bar(0x100, index=5)))])
    assert dev.mmio(2).name == "d.bar2" and dev.mmio(5).size == 0x100
    with pytest.raises(NoResourceError, match="no MMIO region 0; it has 2, 5"):
        dev.mmio(0)


def test_function_without_memory_has_no_region(bus: PciBus) -> None:
    bus.enumerate([PciFunction("xhci0", 0x1B36, 0x000D, bars=(Bar(0x4000),))])
    (kbd,) = bus.enumerate([PciFunction("kbd0", 0x046D, 0xC31C, parent="xhci0", irqs=0)])
    with pytest.raises(NoResourceError, match=r"'kbd0' has no MMIO of its own \(it sits behind 'xhci0'\)"):
        kbd.mmio(0)


def test_interrupt_numbers_are_distinct_per_function(bus: PciBus) -> None:
    devices = bus.enumerate([PciFunction(f"d{i}", 1, i, irqs=2) for i in range(3)])
    numbers = [n for d in devices for n in d.irq_numbers]
    assert len(set(numbers)) == 6
    assert devices[0].irq(1).name == f"irq{devices[0].irq_numbers[1]}"


def test_drivers_bind_by_vendor_and_device_id(bus: PciBus) -> None:
    bus.register_driver(Nic)
    bus.enumerate([nic(), PciFunction("other", 0x1234, 0x1111)])
    assert list(bus.bind_all()) == ["nic0"]
    assert isinstance(bus.devices["nic0"], PciDevice) and bus.devices["nic0"].bdf == "0000:00:00.0"


# --- hotplug ---------------------------------------------------------------------------------------
def test_hot_added_function_is_placed_in_the_hotplug_window_and_bound(bus: PciBus) -> None:
    bus.register_driver(Nic)
    dev = bus.hotplug_add(nic())
    hot = bus.mem.hotplug
    assert hot is not None and hot.base <= dev.mmio_ranges[0].paddr < hot.end
    assert isinstance(dev.driver, Nic) and dev.hotplugged


def test_hot_removal_revokes_the_drivers_mapping_and_returns_the_range(bus: PciBus) -> None:
    bus.register_driver(Nic)
    hot = bus.mem.hotplug
    assert hot is not None
    dev = bus.hotplug_add(nic())
    driver = dev.driver
    assert isinstance(driver, Nic)
    driver.regs.write32(0, 0xAB)
    paddr = dev.mmio_ranges[0].paddr
    bus.hotplug_remove("nic0")
    with pytest.raises(RevokedError, match=r"nic0\.bar0"):
        driver.regs.read32(0)
    assert dev.state is DeviceState.REMOVED and hot.free_bytes == hot.size
    again = bus.hotplug_add(nic("nic1"))
    assert again.mmio_ranges[0].paddr == paddr  # the range came back and was reused
    with pytest.raises(RevokedError):
        driver.regs.write32(0, 1)  # the old mapping does not reach the new device


def test_hotplug_exhaustion_is_a_clear_error_and_changes_nothing(bus: PciBus) -> None:
    bus.hotplug_add(PciFunction("a", 1, 1, bars=(Bar(2 * MiB),)))
    bus.hotplug_add(PciFunction("b", 1, 2, bars=(Bar(2 * MiB),)))
    with pytest.raises(AllocationError, match=r"'c' BAR 0.*'pci0 hotplug mem'.*exhausted"):
        bus.hotplug_add(PciFunction("c", 1, 3, bars=(Bar(0x1000),)))
    assert "c" not in bus.devices
    bus.hotplug_remove("a")
    assert bus.hotplug_add(PciFunction("c", 1, 3, bars=(Bar(0x1000),))).mmio_ranges[0].size == 0x1000


def test_hot_added_prefetchable_bars_use_the_prefetchable_hotplug_window(bus: PciBus) -> None:
    dev = bus.hotplug_add(PciFunction("gpu", 1, 2, bars=(Bar(MiB, prefetchable=True),)))
    assert bus.pref is not None and bus.pref.hotplug is not None
    assert bus.pref.hotplug.base <= dev.mmio_ranges[0].paddr < bus.pref.hotplug.end


def test_hotplug_without_a_hotplug_window_is_refused(space: RamSpace) -> None:
    plain = PciBus(space, mem_window=(MEM, 16 * MiB))
    with pytest.raises(AllocationError, match="no hotplug window"):
        plain.hotplug_add(nic())


def test_removing_a_boot_function_returns_its_range_to_the_boot_window(bus: PciBus) -> None:
    bus.enumerate([nic()])
    free = bus.mem.allocator.free_bytes
    bus.remove_device("nic0")
    assert bus.mem.allocator.free_bytes == free + 0x2_0000


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"mem_window": (MEM, 64 * MiB)}, "outside space"),
    ({"mem_window": (MEM, 16 * MiB), "hotplug_mem": 3000}, "multiple of 1 MiB"),
    ({"mem_window": (MEM, 16 * MiB), "hotplug_pref": MiB}, "needs a pref_window"),
    ({"mem_window": (MEM, 16 * MiB), "pref_window": (MEM + MiB, MiB)}, "overlaps"),
])
def test_bad_bus_configurations_are_refused(space: RamSpace, kwargs: dict[str, object], words: str) -> None:
    with pytest.raises(MmioValueError, match=words):
        PciBus(space, **kwargs)  # type: ignore[arg-type]


def test_address_map_shows_windows_hotplug_windows_and_bars(bus: PciBus) -> None:
    bus.enumerate([nic()])
    kinds = {e.kind for e in bus.address_map()}
    assert kinds == {"window", "hotplug", "bar"}
