"""A PCIe host bridge with ECAM config space: the bus finds its functions and sets them up, as firmware does.

ECAM (PCIe 4.0 §7.2.2) puts function (bus, device, function)'s 4 KiB of config space at
`ecam_base + (bus << 20 | device << 15 | function << 12)`. `scan()` walks bus 0: a vendor ID of 0xffff means
no function there; function 0's header type bit 7 says whether functions 1..7 exist. For every type 0
function it sizes the memory BARs (decode off, write all-ones, read back the mask: size = ~mask + 1;
a 64-bit BAR takes the next one for its upper half), places them through `PciBus`'s windows (naturally
aligned, largest first, all or nothing), writes the addresses back and turns memory decode on. Bus mastering
stays off: the driver asks for it (`config().set_master()`), as Linux drivers call pci_set_master.

Not done: bridges (type 1 headers are listed but their secondary buses are not walked) and I/O BARs (the
host's I/O window is not used; a function whose driver needs one gets no range for it).

INTx: `intx` are the interrupt numbers of INTA..INTD at device 0; device d's pin p (1..4) is
`intx[(d + p - 1) % 4]`, the swizzle a host bridge applies on its root bus. MSI-X: with an `msi`
controller, `device.enable_msix(n)` programs the function's table (pci_msi) with numbers from its range.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from mmiotk import MmioBuffer
from mmiotk.allocator import RangeAllocator
from mmiotk.bus import AddressRange, Device, NoResourceError
from mmiotk.dma import DmaPool
from mmiotk.errors import MmioValueError, RevokedError
from mmiotk.irq import Interrupt, IrqFactory
from mmiotk.policy import CachePolicy
from mmiotk.region import MmioResource, PhysicalRegion
from mmiotk.space import AddressSpace

from .pci import Bar, PciBus, PciDevice, PciFunction
from .pci_config import (
    PCI_BASE_ADDRESS_0,
    PCI_BASE_ADDRESS_MEM_MASK,
    PCI_BASE_ADDRESS_MEM_PREFETCH,
    PCI_BASE_ADDRESS_MEM_TYPE_64,
    PCI_BASE_ADDRESS_MEM_TYPE_MASK,
    PCI_BASE_ADDRESS_SPACE_IO,
    PCI_CLASS_REVISION,
    PCI_COMMAND,
    PCI_COMMAND_MASTER,
    PCI_COMMAND_MEMORY,
    PCI_HEADER_TYPE,
    PCI_HEADER_TYPE_MASK,
    PCI_HEADER_TYPE_MULTI_FUNCTION,
    PCI_INTERRUPT_PIN,
    PciConfig,
)
from .pci_msi import MsiController, MsixCapability, find_msix, msix_disable, msix_enable

ECAM_FUNCTION_SIZE = 1 << 12
ECAM_BUS_SIZE = 1 << 20
MAX_DEVICES = 32
MAX_FUNCTIONS = 8


def ecam_offset(bus: int, device: int, function: int) -> int:
    return bus << 20 | device << 15 | function << 12


class EcamPciBus(PciBus):
    """Bus 0 of the host bridge whose ECAM is `ecam` = (base, size) in `space`; BARs go in `mem_window`
    (and prefetchable ones in `pref_window` when given). Call `scan()` to find and set up the functions."""

    def __init__(self, space: AddressSpace, *, ecam: tuple[int, int], mem_window: tuple[int, int],
                 pref_window: tuple[int, int] | None = None, intx: Sequence[int] = (),
                 msi: MsiController | None = None, irq_factory: IrqFactory | None = None,
                 dma: DmaPool | None = None, name: str = "pcie0") -> None:
        super().__init__(space, mem_window=mem_window, pref_window=pref_window, irq_factory=irq_factory, dma=dma,
                         name=name)
        base, size = ecam
        if size < ECAM_BUS_SIZE or size % ECAM_BUS_SIZE:
            raise MmioValueError(f"PCI bus {name!r}: ECAM size {size:#x} is not a whole number of buses (1 MiB each)")
        if intx and len(intx) != 4:
            raise MmioValueError(f"PCI bus {name!r}: intx names INTA..INTD, 4 numbers, got {list(intx)!r}")
        self.ecam_base = base
        self.ecam = MmioResource(space, base, size)
        self.intx = tuple(intx)
        self.msi = msi
        self._msi_numbers = RangeAllocator(msi.first, msi.count, f"{name} MSI") if msi is not None else None
        self._msix: dict[str, tuple[PciConfig, MsixCapability, MmioBuffer, list[int]]] = {}
        self._config_offsets: dict[str, int] = {}

    def _function_config(self, offset: int, name: str) -> PciConfig:
        """The bus's own mapping of one function's config space (enumeration; never handed out)."""
        region = self.ecam.create_region(self.ecam_base + offset, ECAM_FUNCTION_SIZE, f"{self.name} {name} config")
        return PciConfig(region.map(CachePolicy.UNCACHED_DEVICE), f"{name} config")

    def scan(self) -> list[PciDevice]:
        """Find every function on bus 0, assign its BARs, enable memory decode; add them, unbound."""
        with self._lock:
            found: list[tuple[PciFunction, int, int, PciConfig, set[int]]] = []
            for dev in range(MAX_DEVICES):
                for fn in range(MAX_FUNCTIONS):
                    bdf = f"0000:00:{dev:02x}.{fn}"
                    cfg = self._function_config(ecam_offset(0, dev, fn), bdf)
                    if cfg.vendor_id == 0xFFFF:
                        cfg.buffer.region.revoke()
                        if fn == 0:
                            break
                        continue
                    header = cfg.read8(PCI_HEADER_TYPE)
                    bars, wide = self._size_bars(cfg) if header & PCI_HEADER_TYPE_MASK == 0 else ((), set())
                    found.append((PciFunction(bdf, cfg.vendor_id, cfg.device_id, bars, irqs=0,
                                              class_code=cfg.read32(PCI_CLASS_REVISION) >> 8), dev, fn, cfg, wide))
                    if fn == 0 and not header & PCI_HEADER_TYPE_MULTI_FUNCTION:
                        break
            devices = self._place([spec for spec, *_ in found], hotplug=False)
            for device, (_, dev, fn, cfg, wide) in zip(devices, found, strict=True):
                device.slot, device.bdf = dev, device.name
                pin = cfg.read8(PCI_INTERRUPT_PIN)
                if pin and self.intx:
                    device.irq_numbers = (self.intx[(dev + pin - 1) % 4],)
                for index, reg in device.mmio_ranges.items():
                    cfg.write32(PCI_BASE_ADDRESS_0 + 4 * index, reg.paddr & 0xFFFF_FFFF)
                    if index in wide:
                        cfg.write32(PCI_BASE_ADDRESS_0 + 4 * index + 4, reg.paddr >> 32)
                cfg.set_command(PCI_COMMAND_MEMORY if device.mmio_ranges else 0)
                self._config_offsets[device.name] = ecam_offset(0, dev, fn)
                cfg.buffer.region.revoke()
                self.add_device(device, probe=False)
            return devices

    @staticmethod
    def _size_bars(cfg: PciConfig) -> tuple[tuple[Bar, ...], set[int]]:
        """The memory BARs of a type 0 function and which of them are 64 bits wide (PCI 3.0 §6.2.5.1)."""
        command = cfg.read16(PCI_COMMAND)
        cfg.write16(PCI_COMMAND, command & ~(PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER))
        bars: list[Bar] = []
        wide: set[int] = set()
        index = 0
        try:
            while index < 6:
                off = PCI_BASE_ADDRESS_0 + 4 * index
                original = cfg.read32(off)
                cfg.write32(off, 0xFFFF_FFFF)
                mask = cfg.read32(off)
                cfg.write32(off, original)
                is64 = not original & PCI_BASE_ADDRESS_SPACE_IO and \
                    original & PCI_BASE_ADDRESS_MEM_TYPE_MASK == PCI_BASE_ADDRESS_MEM_TYPE_64
                if is64 and index < 5:
                    original_hi = cfg.read32(off + 4)
                    cfg.write32(off + 4, 0xFFFF_FFFF)
                    mask_hi = cfg.read32(off + 4)
                    cfg.write32(off + 4, original_hi)
                else:
                    mask_hi = 0xFFFF_FFFF if mask else 0
                if mask and not original & PCI_BASE_ADDRESS_SPACE_IO:
                    full = (mask_hi << 32 | (mask & PCI_BASE_ADDRESS_MEM_MASK & 0xFFFF_FFFF))
                    size = (~full & 0xFFFF_FFFF_FFFF_FFFF) + 1
                    bars.append(Bar(size, prefetchable=bool(original & PCI_BASE_ADDRESS_MEM_PREFETCH), index=index))
                    if is64:
                        wide.add(index)
                index += 2 if is64 else 1
        finally:
            cfg.write16(PCI_COMMAND, command)
        return tuple(bars), wide

    def config_region_for(self, device: PciDevice) -> PhysicalRegion:
        offset = self._config_offsets[device.name]
        return self.ecam.create_region(self.ecam_base + offset, ECAM_FUNCTION_SIZE, f"{device.name}.config")

    # --- MSI-X ----------------------------------------------------------------------------------------
    def _bar_buffer(self, device: PciDevice, index: int, reg: AddressRange) -> MmioBuffer:
        """The bus's own mapping of a BAR (for the MSI-X table), apart from the driver's."""
        return self.region_for(device, index, reg).map(CachePolicy.UNCACHED_DEVICE)

    def msix_enable_for(self, device: PciDevice, vectors: int) -> list[int]:
        if self.msi is None or self._msi_numbers is None:
            return super().msix_enable_for(device, vectors)
        cfg = self._function_config(self._config_offsets[device.name], device.name)
        cap = find_msix(cfg)
        reg = device.mmio_ranges.get(cap.table_bar)
        if reg is None:
            raise NoResourceError(f"{device.name}: the MSI-X table is in BAR {cap.table_bar}, which has no range")
        table = self._bar_buffer(device, cap.table_bar, reg)
        numbers: list[int] = []
        try:
            for _ in range(vectors):
                numbers.append(self._msi_numbers.alloc(1, 1, owner=device.name).base)
            msix_enable(cfg, cap, table, [(self.msi.doorbell, number) for number in numbers])
        except BaseException:
            for number in numbers:
                self._msi_numbers.free(number)
            raise
        self._msix[device.name] = (cfg, cap, table, numbers)
        return numbers

    def msix_disable_for(self, device: PciDevice) -> None:
        entry = self._msix.pop(device.name, None)
        if entry is None or self._msi_numbers is None:
            return
        cfg, cap, table, numbers = entry
        with contextlib.suppress(RevokedError):
            msix_disable(cfg, cap, table, len(numbers))
        for number in numbers:
            self._msi_numbers.free(number)
        cfg.buffer.region.revoke()
        table.region.revoke()

    def irq_for(self, device: Device, number: int) -> Interrupt:
        if self.msi is not None and device.name in self._msix and self.msi.first <= number < self.msi.first + \
                self.msi.count:
            return self.msi.irq_factory(number)
        return super().irq_for(device, number)

    def _on_remove(self, device: Device) -> None:
        super()._on_remove(device)
        self._config_offsets.pop(device.name, None)

