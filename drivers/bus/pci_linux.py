"""The PCI bus of a running Linux kernel: functions found in /sys/bus/pci/devices, driven from user space.

`LinuxPciBus.scan()` lists every function the kernel enumerated (vendor, device, class, memory BARs from
`resource`, INTx from `irq` and the interrupt pin); the BARs are where firmware and the kernel put them. To
bind one of the project's drivers the bus first hands the function to a kernel stub driver that gives user
space the device, then lets the driver ask for capabilities as on every other bus:

- backend `vfio` (vfio-pci, needs an IOMMU): regions are mmaps of the VFIO device file, `config()` is its
  config region, interrupts are INTx or (after `enable_msix(n)`) MSI-X vectors on eventfds, and `dma_pool()`
  is memory the IOMMU maps for the device at IOVAs (VFIO_IOMMU_MAP_DMA), one container per function;
- backend `uio` (uio_pci_generic, no IOMMU): regions through sysfs `resourceN`, `config()` through sysfs
  `config`, INTx through /dev/uioN (re-armed through `config`), DMA from the bus's `dma` pool (RAM reserved
  at boot, hugepages: physical addresses).

A function a kernel driver already holds (virtio-pci, say) is taken from it only with
`unbind_kernel_driver=True`; otherwise bind refuses it naming the driver. Every sysfs write is bounded
(`mmiotk.sysfs`). Unbind, as on every bus, revokes the regions, interrupts and config space, then closes
the device's DMA pool and unmaps its IOVAs; the VFIO device stays open (and on vfio-pci) until
`return_to_kernel(name)` or `close()`, so binding again costs no function reset and an IOVA the old driver
had is provably free. `return_to_kernel(name)` closes the VFIO device and reprobes the kernel's own driver.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

from mmiotk.bus import AddressRange, BindError, Bus, Device, Driver, NoResourceError
from mmiotk.dma import DmaPool
from mmiotk.errors import MmioError, MmioValueError
from mmiotk.irq import Interrupt, UioInterrupt
from mmiotk.pci import IORESOURCE_MEM, IORESOURCE_PREFETCH, PciSysfsSpace
from mmiotk.pci import PciConfig as SysfsConfig
from mmiotk.policy import CachePolicy
from mmiotk.region import MmioResource, PhysicalRegion
from mmiotk.space import AddressSpace, Window
from mmiotk.sysfs import SYSFS_TIMEOUT, PciDrivers, SysfsError
from mmiotk.vfio import (
    VFIO_PCI_CONFIG_REGION_INDEX,
    VFIO_PCI_INTX_IRQ_INDEX,
    VFIO_PCI_MSIX_IRQ_INDEX,
    IovaSpace,
    VfioDevice,
    VfioError,
    VfioInterrupt,
)

from .pci import Bar, PciDevice, PciFunction

BACKENDS = {"vfio": "vfio-pci", "uio": "uio_pci_generic"}
IOVA_BASE = 0x1_0000_0000  # where a device's DMA pool starts in its own IOVA space (each has a container)
IOVA_SIZE = 32 << 20
MSIX_NUMBER_BASE = 0x1_0000  # interrupt numbers of MSI-X vectors: base + vector (INTx keeps the kernel's irq)
PCI_INTERRUPT_PIN = 0x3D


class _ConfigFileSpace(AddressSpace):
    """A function's configuration space as a file read and written with pread/pwrite (the VFIO config
    region or sysfs `config`): every access is one transaction of its width."""

    def __init__(self, fd: int, offset: int, size: int, name: str) -> None:
        super().__init__(0, size, name=name)
        self.fd, self.offset = fd, offset

    def open(self, paddr: int, size: int, policy: CachePolicy) -> Window:
        self.check_range(paddr, size)
        return _ConfigWindow(self, paddr, size)


class _ConfigWindow(Window):
    mechanism = "config space pread/pwrite"
    _FORMATS = {1: "<B", 2: "<H", 4: "<I", 8: "<Q"}

    def __init__(self, space: _ConfigFileSpace, paddr: int, size: int) -> None:
        super().__init__(paddr, size)
        self.space = space

    def read(self, offset: int, width: int) -> int:
        where = self.space.offset + self.paddr + offset
        try:
            data = os.pread(self.space.fd, width, where)
        except OSError as exc:
            raise MmioError(f"{self.space.name}: reading {width} bytes at {self.paddr + offset:#x} failed: "
                            f"{exc.strerror}") from None
        if len(data) != width:
            raise MmioError(f"{self.space.name}: short read of {len(data)} bytes at {self.paddr + offset:#x}")
        return int(struct.unpack(self._FORMATS[width], data)[0])

    def write(self, offset: int, width: int, value: int) -> None:
        where = self.space.offset + self.paddr + offset
        try:
            done = os.pwrite(self.space.fd, struct.pack(self._FORMATS[width], value), where)
        except OSError as exc:
            raise MmioError(f"{self.space.name}: writing {value:#x} ({width} bytes) at {self.paddr + offset:#x} "
                            f"failed: {exc.strerror}") from None
        if done != width:
            raise MmioError(f"{self.space.name}: short write of {done} bytes at {self.paddr + offset:#x}")


@dataclass
class _Handle:
    """What the bus holds for a function it gave to a kernel stub driver."""

    vfio: VfioDevice | None = None
    bars: AddressSpace | None = None
    bar_resources: dict[int, MmioResource] | None = None
    config_fd: int | None = None
    config: _ConfigFileSpace | None = None
    previous_driver: str | None = None


class LinuxPciDevice(PciDevice):
    """A function the kernel enumerated; `properties` holds its class code, kernel driver and IOMMU group."""

    _iova: IovaSpace | None = None

    def close_dma_pool(self) -> int:
        """Close the pool, then unmap its IOVAs: after unbind the device reaches none of that memory."""
        with self._lock:
            freed = super().close_dma_pool()
            iova, self._iova = self._iova, None
            if iova is not None:
                iova.close()
            return freed


class LinuxPciBus(Bus):
    """The functions under `sysfs_root`/bus/pci/devices; `backend` "vfio" (default) or "uio"."""

    def __init__(self, *, backend: str = "vfio", unbind_kernel_driver: bool = False, dma: DmaPool | None = None,
                 iova_base: int = IOVA_BASE, iova_size: int = IOVA_SIZE, sysfs_root: str | os.PathLike[str] = "/sys",
                 dev_root: str | os.PathLike[str] = "/dev", sysfs_timeout: float = SYSFS_TIMEOUT,
                 name: str = "pci-linux") -> None:
        if backend not in BACKENDS:
            raise MmioValueError(f"PCI bus {name!r}: backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        super().__init__(name, dma=dma)
        self.backend = backend
        self.stub_driver = BACKENDS[backend]
        self.unbind_kernel_driver = unbind_kernel_driver
        self.iova_base, self.iova_size = iova_base, iova_size
        self.sysfs_root, self.dev_root = sysfs_root, dev_root
        self.kernel = PciDrivers(sysfs_root, timeout=sysfs_timeout)
        self._handles: dict[str, _Handle] = {}
        self._msix: dict[str, list[VfioInterrupt]] = {}

    # --- discovery ------------------------------------------------------------------------------------
    def scan(self) -> list[LinuxPciDevice]:
        """Add every function in sysfs not yet on the bus (unbound); returns the new ones."""
        with self._lock:
            found = []
            root = self.kernel.bus / "devices"
            for entry in sorted(root.iterdir()):
                if entry.name in self.devices:
                    continue
                device = self._function(entry)
                self.add_device(device, probe=False)
                found.append(device)
            return found

    def _function(self, entry: Path) -> LinuxPciDevice:
        address = entry.name

        def number(attr: str) -> int:
            try:
                return int((entry / attr).read_text().strip(), 0)
            except (OSError, ValueError) as exc:
                raise MmioError(f"PCI {address}: cannot read {entry / attr}: {exc}") from None

        bars: list[Bar] = []
        ranges: dict[int, AddressRange] = {}
        for index, line in enumerate((entry / "resource").read_text().splitlines()[:6]):
            start, end, flags = (int(word, 16) for word in line.split())
            if end > start and flags & IORESOURCE_MEM:
                prefetchable = bool(flags & IORESOURCE_PREFETCH)
                bars.append(Bar(end - start + 1, prefetchable, index))
                ranges[index] = AddressRange(start, end - start + 1, prefetchable)
        with open(entry / "config", "rb") as f:  # the header is readable by anyone
            pin = f.read(0x40)[PCI_INTERRUPT_PIN]
        irqs = (number("irq"),) if pin else ()
        spec = PciFunction(address, number("vendor"), number("device"), tuple(bars), irqs=len(irqs),
                           class_code=number("class"))
        device = LinuxPciDevice(self, spec, ranges, irqs, int(address.split(":")[2].split(".")[0], 16), False)
        device.bdf = address
        group = entry / "iommu_group"
        device.properties.update(kernel_driver=self.kernel.driver_of(address),
                                 iommu_group=os.path.basename(os.readlink(group)) if group.exists() else None)
        return device

    def _linux(self, name: str) -> LinuxPciDevice:
        device = self.device(name)
        assert isinstance(device, LinuxPciDevice)
        return device

    # --- binding: the kernel side first ------------------------------------------------------------------
    def bind(self, name: str, driver: type[Driver] | None = None) -> Driver:
        """Give the function to the stub driver (taking it from a kernel driver only if allowed), open it, then
        bind the best matching project driver; on any refusal the function stays on the stub driver, closed."""
        with self._lock:
            device = self._linux(name)
            if device.driver is None and self.matching_drivers(device):
                self._claim(device)
            try:
                return super().bind(name, driver)
            except BaseException:
                if device.driver is None:
                    self._close_handle(name)
                raise

    def _claim(self, device: LinuxPciDevice) -> None:
        address = device.name
        if address in self._handles:
            return
        current = self.kernel.driver_of(address)
        if current not in (None, self.stub_driver) and not self.unbind_kernel_driver:
            raise BindError(f"PCI {address}: the kernel's {current} driver holds it; LinuxPciBus("
                            f"unbind_kernel_driver=True) hands it to {self.stub_driver}, or do it by hand: echo "
                            f"{address} > /sys/bus/pci/drivers/{current}/unbind")
        handle = _Handle(previous_driver=current if current != self.stub_driver else None)
        try:
            self.kernel.bind(address, self.stub_driver)
            self._open(device, handle)
        except (SysfsError, VfioError, MmioError) as exc:
            self._release_handle(handle)
            raise BindError(f"PCI {address}: cannot hand it to {self.stub_driver}: {exc}") from exc
        self._handles[address] = handle
        device.properties["kernel_driver"] = self.stub_driver
        self.log.append(f"claim {address}: {current or 'no driver'} -> {self.stub_driver}")

    def _open(self, device: LinuxPciDevice, handle: _Handle) -> None:
        address = device.name
        if self.backend == "vfio":
            vfio = handle.vfio = VfioDevice(address, sysfs_root=self.sysfs_root, dev_root=self.dev_root)
            handle.bars = vfio.space
            _, size, offset = vfio.region_info(VFIO_PCI_CONFIG_REGION_INDEX)
            handle.config = _ConfigFileSpace(vfio.fd, offset, size, f"vfio {address} config")
            # only BARs VFIO lets us mmap become regions (an MSI-X table page may not be)
            device.mmio_ranges = {i: r for i, r in device.mmio_ranges.items() if i in vfio.space.bars}
        else:
            space = PciSysfsSpace(address, sysfs_root=self.sysfs_root)
            handle.bars = space
            path = self.kernel.function(address) / "config"
            fd = handle.config_fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
            handle.config = _ConfigFileSpace(fd, 0, os.fstat(fd).st_size or 256, f"sysfs {address} config")
        handle.bar_resources = {i: MmioResource(handle.bars, r.paddr, r.size) for i, r in device.mmio_ranges.items()}

    @staticmethod
    def _release_handle(handle: _Handle) -> None:
        if handle.vfio is not None:
            handle.vfio.close()
        if handle.config_fd is not None:
            os.close(handle.config_fd)
            handle.config_fd = None

    def _close_handle(self, name: str) -> None:
        handle = self._handles.pop(name, None)
        if handle is not None:
            self._release_handle(handle)

    def _handle(self, device: Device, what: str) -> _Handle:
        handle = self._handles.get(device.name)
        if handle is None:
            raise NoResourceError(f"PCI {device.name}: no {what}: the bus has not handed the function to "
                                  f"{self.stub_driver} (bind it first)")
        return handle

    def vfio_device(self, name: str) -> VfioDevice:
        """The open VFIO device of a claimed function (for diagnostics and tests: its container's mappings)."""
        handle = self._handle(self.device(name), "VFIO device")
        if handle.vfio is None:
            raise NoResourceError(f"PCI {name}: bus {self.name!r} uses {self.stub_driver}, not VFIO")
        return handle.vfio

    def return_to_kernel(self, name: str) -> str | None:
        """Unbind our driver (if bound), close the function, take it off the stub driver and let the kernel
        probe its own driver again; returns the kernel driver bound afterwards."""
        with self._lock:
            device = self._linux(name)
            if device.driver is not None:
                self.unbind(name)
            self._close_handle(name)
            try:
                after = self.kernel.release(name)
            except SysfsError as exc:
                raise BindError(f"PCI {name}: giving it back to the kernel failed: {exc}") from exc
            device.properties["kernel_driver"] = after
            self.log.append(f"return {name} -> {after or 'no driver'}")
            return after

    def close(self) -> None:
        """Unbind every driver, then close every function (they stay on the stub driver)."""
        with self._lock:
            super().close()
            for name in list(self._handles):
                self._close_handle(name)

    # --- capabilities --------------------------------------------------------------------------------
    def region_for(self, device: Device, index: int, reg: AddressRange) -> PhysicalRegion:
        handle = self._handle(device, f"BAR {index}")
        resources = handle.bar_resources or {}
        if index not in resources:
            raise NoResourceError(f"PCI {device.name}: BAR {index} cannot be mapped through {self.stub_driver}")
        return resources[index].create_region(reg.paddr, reg.size, f"{device.name}.bar{index}",
                                              prefetchable=reg.prefetchable)

    def config_region_for(self, device: PciDevice) -> PhysicalRegion:
        handle = self._handle(device, "config space")
        assert handle.config is not None
        space = handle.config
        return MmioResource(space, 0, space.size).create_region(0, space.size, f"{device.name}.config")

    def msix_enable_for(self, device: PciDevice, vectors: int) -> list[int]:
        handle = self._handle(device, "MSI-X")
        if handle.vfio is None:
            raise NoResourceError(f"PCI {device.name}: {self.stub_driver} offers INTx only, no MSI-X")
        if handle.vfio.irq_count(VFIO_PCI_MSIX_IRQ_INDEX) < vectors:
            raise NoResourceError(f"PCI {device.name}: {vectors} MSI-X vectors asked for, the function has "
                                  f"{handle.vfio.irq_count(VFIO_PCI_MSIX_IRQ_INDEX)}")
        lines = handle.vfio.interrupts(VFIO_PCI_MSIX_IRQ_INDEX, vectors)
        self._msix[device.name] = lines
        return [MSIX_NUMBER_BASE + vector for vector in range(vectors)]

    def msix_disable_for(self, device: PciDevice) -> None:
        for line in self._msix.pop(device.name, []):
            line.revoke()  # the first one disables MSI-X in the kernel

    def irq_for(self, device: Device, number: int) -> Interrupt:
        handle = self._handle(device, f"interrupt {number}")
        if number >= MSIX_NUMBER_BASE:
            lines = self._msix.get(device.name, [])
            vector = number - MSIX_NUMBER_BASE
            if vector >= len(lines):
                raise NoResourceError(f"PCI {device.name}: MSI-X vector {vector} is not enabled")
            return lines[vector]
        if handle.vfio is not None:
            return handle.vfio.interrupt(VFIO_PCI_INTX_IRQ_INDEX)
        uio = self.kernel.function(device.name) / "uio"
        nodes = sorted(p.name for p in uio.iterdir()) if uio.is_dir() else []
        if len(nodes) != 1:
            raise NoResourceError(f"PCI {device.name}: expected one UIO device under {uio}, found {nodes}")
        config = SysfsConfig(self.kernel.function(device.name) / "config")
        return UioInterrupt(Path(self.dev_root) / nodes[0], name=f"{device.name}.intx", pci_config=config)

    def dma_pool_for(self, device: Device) -> DmaPool:
        handle = self._handle(device, "DMA pool")
        if handle.vfio is None:
            return super().dma_pool_for(device)
        assert isinstance(device, LinuxPciDevice)
        iova = IovaSpace(handle.vfio, self.iova_size, self.iova_base)
        try:
            pool = DmaPool.from_space(iova, coherent=True, name=f"{device.name}.iova")
        except BaseException:
            iova.close()
            raise
        device._iova = iova
        return pool
