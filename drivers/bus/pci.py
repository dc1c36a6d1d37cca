"""A PCI-like bus with dynamic address allocation: BARs, bridge windows, and a hotplug window.

Functions declare memory BARs (power-of-two sizes, prefetchable or not); the bus assigns each a naturally
aligned address (base a multiple of the size), the way firmware or Linux's resource assignment does:
- non-prefetchable BARs go into the memory window; prefetchable ones into the prefetchable window when
  there is one (else the memory window). Prefetchable BARs get regions with prefetchable=True, so a driver
  may map them WRITE_COMBINING; the others refuse it.
- `enumerate()` assigns a whole set at once, largest BAR first (less fragmentation), all or nothing.
- a hotplug window is set aside from the windows at construction (like a bridge's hpmemsize); hot-added
  functions get sub-ranges of it, which return to it on removal after every region is revoked.
- exhaustion is an AllocationError naming the function, the BAR, the window and what is free.

Functions with no memory of their own (a USB function behind its controller) have no BARs; asking them for a
region is a NoResourceError. Interrupt numbers (think MSI vectors) come from the bus's range.

A function's configuration space reaches its driver as `device.config()` (a `PciConfig`) beside the BAR
regions, when the bus has one to give (`config_region_for`): functions declared to this bus have none; an
ECAM host bridge (`pci_ecam.EcamPciBus`) finds its functions in config space and hands each its own 4 KiB.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, cast

from mmiotk.allocator import AllocationError, RangeAllocator, is_power_of_two
from mmiotk.bus import AddressRange, Bus, Device, MapEntry, NoResourceError
from mmiotk.dma import DmaPool
from mmiotk.errors import MmioValueError
from mmiotk.irq import Interrupt, IrqFactory, irq_factory_for
from mmiotk.policy import CachePolicy
from mmiotk.region import MmioResource, PhysicalRegion
from mmiotk.space import AddressSpace

from .pci_config import PciConfig

MIN_BAR = 16  # the smallest memory BAR PCI allows
WINDOW_GRANULE = 1 << 20  # bridge memory windows are 1 MiB aligned and sized
MAX_BARS = 6


@dataclass(frozen=True)
class Bar:
    """A memory BAR a function declares: `size` bytes, a power of two; `index` defaults to its position."""

    size: int
    prefetchable: bool = False
    index: int | None = None


@dataclass(frozen=True)
class PciFunction:
    """What a function says about itself before the bus places it."""

    name: str
    vendor_id: int
    device_id: int
    bars: tuple[Bar, ...] = ()
    irqs: int = 1
    class_code: int = 0
    parent: str | None = None

    def bar_indices(self) -> list[tuple[int, Bar]]:
        """(BAR number, Bar) pairs, checked: sizes, indices, counts."""
        out: list[tuple[int, Bar]] = []
        seen: set[int] = set()
        for position, bar in enumerate(self.bars):
            index = position if bar.index is None else bar.index
            where = f"PCI function {self.name!r} BAR {index}"
            if not isinstance(index, int) or not 0 <= index < MAX_BARS or index in seen:
                raise MmioValueError(f"{where}: BAR numbers are 0..5, each used once")
            if not is_power_of_two(bar.size) or bar.size < MIN_BAR:
                raise MmioValueError(f"{where}: size {bar.size!r} must be a power of two >= {MIN_BAR}")
            seen.add(index)
            out.append((index, bar))
        if not isinstance(self.irqs, int) or self.irqs < 0:
            raise MmioValueError(f"PCI function {self.name!r}: irqs must be an int >= 0, got {self.irqs!r}")
        return out


class PciHost(Protocol):
    """What a PCI function asks of the bus it sits on, beyond every bus's regions and interrupts."""

    def config_region_for(self, device: PciDevice) -> PhysicalRegion: ...
    def msix_enable_for(self, device: PciDevice, vectors: int) -> list[int]: ...
    def msix_disable_for(self, device: PciDevice) -> None: ...


class PciDevice(Device):
    """A placed function: `mmio_ranges` maps BAR numbers to assigned ranges."""

    def __init__(self, bus: Bus, spec: PciFunction, assigned: dict[int, AddressRange], irqs: Sequence[int],
                 slot: int, hotplugged: bool) -> None:
        super().__init__(bus, spec.name, vendor_id=spec.vendor_id, device_id=spec.device_id, mmio_ranges=assigned,
                         irqs=irqs, parent=spec.parent, properties={"class_code": spec.class_code})
        self.spec = spec
        self.slot = slot
        self.bdf = f"0000:00:{slot:02x}.0"
        self.hotplugged = hotplugged
        self.placements: list[tuple[RangeAllocator, int]] = []  # what removal gives back
        self._config: PciConfig | None = None
        self._intx_numbers: tuple[int, ...] | None = None  # set while MSI-X is on

    def config(self) -> PciConfig:
        """This function's configuration space, beside its BARs; revoked with them on unbind."""
        with self._lock:
            self._check_present("config space")
            if self._config is None or self._config.buffer.revoked:
                region = cast(PciHost, self._bus).config_region_for(self)
                self._config = PciConfig(region.map(CachePolicy.UNCACHED_DEVICE), f"{self.bdf} config")
            return self._config

    def enable_msix(self, vectors: int) -> list[Interrupt]:
        """Turn MSI-X on with `vectors` vectors (the bus programs the table, see pci_msi); from then on
        `irq(i)` is vector i. Unbind turns it off again. NoResourceError when the bus has no MSI controller
        or the function no MSI-X capability."""
        with self._lock:
            self._check_present("MSI-X")
            if self._intx_numbers is not None:
                raise MmioValueError(f"PCI function {self.name!r}: MSI-X is already enabled")
            numbers = cast(PciHost, self._bus).msix_enable_for(self, vectors)
            for line in self._irqs.values():
                line.revoke()
            self._irqs.clear()
            self._intx_numbers, self.irq_numbers = self.irq_numbers, tuple(numbers)
            return [self.irq(i) for i in range(vectors)]

    def revoke_mmio_and_irqs(self) -> None:
        with self._lock:
            if self._intx_numbers is not None:
                cast(PciHost, self._bus).msix_disable_for(self)
                self.irq_numbers, self._intx_numbers = self._intx_numbers, None
            super().revoke_mmio_and_irqs()
            if self._config is not None:
                self._config.buffer.region.revoke()
                self._config = None


@dataclass
class _Window:
    allocator: RangeAllocator
    resource: MmioResource
    hotplug: RangeAllocator | None = None
    kind: str = "mem"


class PciBus(Bus):
    """Functions in `space`, BARs placed in `mem_window` (and `pref_window`), hotplug ranges set aside."""

    def __init__(self, space: AddressSpace, *, mem_window: tuple[int, int],
                 pref_window: tuple[int, int] | None = None, hotplug_mem: int = 0, hotplug_pref: int = 0,
                 irq_base: int = 64, irq_count: int = 64, irq_factory: IrqFactory | None = None,
                 dma: DmaPool | None = None, name: str = "pci0") -> None:
        super().__init__(name, irq_factory=irq_factory if irq_factory is not None else irq_factory_for(space),
                         dma=dma)
        self.space = space
        self.mem = self._window(space, mem_window, "mem", hotplug_mem)
        self.pref = self._window(space, pref_window, "pref", hotplug_pref) if pref_window is not None else None
        if hotplug_pref and self.pref is None:
            raise MmioValueError(f"PCI bus {name!r}: hotplug_pref needs a pref_window")
        if self.pref is not None and self._overlap(mem_window, self.pref.allocator):
            raise MmioValueError(f"PCI bus {name!r}: the prefetchable window overlaps the memory window")
        self.irq_numbers = RangeAllocator(irq_base, irq_count, f"{name} interrupts")
        self._next_slot = 0

    @staticmethod
    def _overlap(window: tuple[int, int], other: RangeAllocator) -> bool:
        return window[0] < other.end and other.base < window[0] + window[1]

    def _window(self, space: AddressSpace, window: tuple[int, int], kind: str, hotplug: int) -> _Window:
        base, size = window
        label = f"{self.name} {kind}"
        allocator = RangeAllocator(base, size, label)
        if not space.contains(base, size):
            raise MmioValueError(f"PCI bus {self.name!r}: {kind} window [{base:#x}, {base + size:#x}) is outside "
                                 f"space {space.name!r}")
        result = _Window(allocator, MmioResource(space, base, size), kind=kind)
        if hotplug:
            if not isinstance(hotplug, int) or hotplug < 0 or hotplug % WINDOW_GRANULE:
                raise MmioValueError(f"PCI bus {self.name!r}: hotplug {kind} size {hotplug!r} must be a multiple "
                                     "of 1 MiB (bridge window granularity)")
            align = 1 << (hotplug.bit_length() - 1)
            hot = allocator.alloc(hotplug, align, owner=f"hotplug {kind} window")
            result.hotplug = RangeAllocator(hot.base, hot.size, f"{self.name} hotplug {kind}")
        return result

    def _windows(self) -> list[_Window]:
        return [w for w in (self.mem, self.pref) if w is not None]

    # --- placement ----------------------------------------------------------------------------------
    def _target(self, bar: Bar, hotplug: bool) -> RangeAllocator:
        window = self.pref if bar.prefetchable and self.pref is not None else self.mem
        if hotplug:
            if window.hotplug is None and bar.prefetchable and self.mem.hotplug is not None:
                window = self.mem
            if window.hotplug is None:
                raise AllocationError(f"PCI bus {self.name!r} has no hotplug window for a "
                                      f"{'prefetchable ' if bar.prefetchable else ''}BAR (hotplug_mem/hotplug_pref)")
            return window.hotplug
        return window.allocator

    def _place(self, specs: Sequence[PciFunction], hotplug: bool) -> list[PciDevice]:
        """Assign every BAR and interrupt of `specs`, largest BAR first; on any failure undo all of it."""
        names = [s.name for s in specs]
        for spec in specs:
            if spec.name in self.devices or names.count(spec.name) > 1:
                raise MmioValueError(f"PCI bus {self.name!r}: function name {spec.name!r} is already in use")
        wanted = [(spec, index, bar) for spec in specs for index, bar in spec.bar_indices()]
        wanted.sort(key=lambda w: -w[2].size)
        placed: dict[str, list[tuple[RangeAllocator, int]]] = {s.name: [] for s in specs}
        assigned: dict[str, dict[int, AddressRange]] = {s.name: {} for s in specs}
        irqs: dict[str, list[int]] = {s.name: [] for s in specs}
        try:
            for spec, index, bar in wanted:
                window = self._target(bar, hotplug)
                try:
                    got = window.alloc(bar.size, bar.size, owner=f"{spec.name} BAR{index}")
                except AllocationError as exc:
                    raise AllocationError(f"PCI function {spec.name!r} BAR {index} ({bar.size:#x} bytes"
                                          f"{', prefetchable' if bar.prefetchable else ''}): {exc}") from None
                placed[spec.name].append((window, got.base))
                assigned[spec.name][index] = AddressRange(got.base, bar.size, bar.prefetchable)
            for spec in specs:
                for _ in range(spec.irqs):
                    got = self.irq_numbers.alloc(1, 1, owner=spec.name)
                    placed[spec.name].append((self.irq_numbers, got.base))
                    irqs[spec.name].append(got.base)
        except BaseException:
            for allocations in placed.values():
                for allocator, base in allocations:
                    allocator.free(base)
            raise
        devices = []
        for spec in specs:
            device = PciDevice(self, spec, assigned[spec.name], irqs[spec.name], self._next_slot, hotplug)
            device.placements = placed[spec.name]
            self._next_slot += 1
            devices.append(device)
        return devices

    def enumerate(self, specs: Sequence[PciFunction]) -> list[PciDevice]:
        """Boot-time discovery: place every function (all or nothing) and add them, unbound."""
        with self._lock:
            devices = self._place(specs, hotplug=False)
            for device in devices:
                self.add_device(device, probe=False)
            return devices

    def hotplug_add(self, spec: PciFunction, *, probe: bool = True) -> PciDevice:
        """A function appears: place it in the hotplug window and bind a matching driver."""
        with self._lock:
            (device,) = self._place([spec], hotplug=True)
            self.add_device(device, probe=probe)
            return device

    def hotplug_remove(self, name: str) -> None:
        """A function goes away: unbind its driver, revoke every region, return its ranges."""
        self.remove_device(name)

    def _on_remove(self, device: Device) -> None:
        if isinstance(device, PciDevice):
            for allocator, base in device.placements:
                allocator.free(base)
            device.placements = []

    def config_region_for(self, device: PciDevice) -> PhysicalRegion:
        """The region of `device`'s configuration space; this bus has none (its functions are declared)."""
        raise NoResourceError(f"PCI bus {self.name!r}: function {device.name!r} was declared, not found in "
                              "config space; it has no config space to give")

    def msix_enable_for(self, device: PciDevice, vectors: int) -> list[int]:
        """Program and enable `vectors` MSI-X vectors of `device`; their interrupt numbers."""
        raise NoResourceError(f"PCI bus {self.name!r} has no MSI controller: {device.name!r} cannot use MSI-X")

    def msix_disable_for(self, device: PciDevice) -> None:
        """Undo `msix_enable_for` (unbind)."""

    def region_for(self, device: Device, index: int, reg: AddressRange) -> PhysicalRegion:
        # _place put every BAR in the prefetchable window or in the memory window (hotplug ranges included)
        pref = self.pref
        window = pref if pref is not None and pref.resource.contains(reg.paddr, reg.size) else self.mem
        return window.resource.create_region(reg.paddr, reg.size, f"{device.name}.bar{index}",
                                             prefetchable=reg.prefetchable)

    def address_map(self) -> list[MapEntry]:
        entries = []
        for window in self._windows():
            a = window.allocator
            entries.append(MapEntry(a.base, a.size, "window", a.name, f"{a.free_bytes:#x} free"))
            if window.hotplug is not None:
                h = window.hotplug
                entries.append(MapEntry(h.base, h.size, "hotplug", h.name, f"{h.free_bytes:#x} free"))
        for device in self.devices.values():
            owner = device.driver.name if device.driver is not None else device.state.value
            for index, reg in device.mmio_ranges.items():
                pref = ", prefetchable" if reg.prefetchable else ""
                hot = ", hot-added" if isinstance(device, PciDevice) and device.hotplugged else ""
                entries.append(MapEntry(reg.paddr, reg.size, "bar", f"{device.name}.bar{index}",
                                        f"{owner}{pref}{hot}"))
        return entries
