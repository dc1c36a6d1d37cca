"""PCI BARs through sysfs: /sys/bus/pci/devices/BDF/resourceN (uncached) and resourceN_wc (write-combining,
prefetchable BARs only). The `resource` file lists "start end flags" per BAR. Roots are configurable so
tests run against a tree of regular files.

Under IO_STRICT_DEVMEM the kernel refuses (EINVAL) to map a BAR a driver holds: `BarClaimedError` names the
driver and the unbind command. `PciConfig` reaches the function's configuration space through sysfs
`config`, which is how user space re-enables INTx after uio_pci_generic masked it."""

from __future__ import annotations

import errno
import mmap
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from .errors import MmioError, OutOfRangeError, PolicyError
from .iomem import pci_driver, unbind_hint
from .policy import CachePolicy
from .space import AddressSpace, MemoryWindow, Window, page_span

IORESOURCE_MEM = 0x200
IORESOURCE_PREFETCH = 0x2000
PCI_COMMAND = 0x04
PCI_COMMAND_MEMORY = 0x0002
PCI_COMMAND_MASTER = 0x0004
PCI_COMMAND_INTX_DISABLE = 0x0400
PCI_STATUS = 0x06
PCI_STATUS_INTERRUPT = 0x0008


class BarClaimedError(MmioError, PermissionError):
    """A BAR cannot be mapped because a kernel driver holds it."""


class PciConfig:
    """Configuration space of one PCI function through sysfs `config` (16-bit accesses, little-endian)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)

    def read16(self, offset: int) -> int:
        try:
            with open(self.path, "rb", buffering=0) as f:
                data = os.pread(f.fileno(), 2, offset)
        except OSError as exc:
            raise MmioError(f"{self.path}: reading 16 bits at {offset:#x} failed: {exc.strerror}") from None
        if len(data) != 2:
            raise MmioError(f"{self.path}: short read of {len(data)} bytes at {offset:#x} (reading beyond the "
                            "first 64 bytes of config space needs root)")
        return int(struct.unpack("<H", data)[0])

    def write16(self, offset: int, value: int) -> None:
        try:
            with open(self.path, "r+b", buffering=0) as f:
                written = os.pwrite(f.fileno(), struct.pack("<H", value), offset)
        except OSError as exc:
            raise MmioError(f"{self.path}: writing {value:#06x} at {offset:#x} failed: {exc.strerror} (writing "
                            "config space needs root)") from None
        if written != 2:
            raise MmioError(f"{self.path}: short write of {written} bytes at {offset:#x}")

    def modify_command(self, clear: int = 0, set_: int = 0) -> int:
        """Read-modify-write of the command register; returns the value written."""
        value = (self.read16(PCI_COMMAND) & ~clear) | set_
        self.write16(PCI_COMMAND, value)
        return value

    def set_intx_disabled(self, disabled: bool) -> None:
        """Set or clear INTx-disable (command bit 10): how uio_pci_generic masks the line on each interrupt."""
        if disabled:
            self.modify_command(set_=PCI_COMMAND_INTX_DISABLE)
        else:
            self.modify_command(clear=PCI_COMMAND_INTX_DISABLE)


@dataclass(frozen=True)
class PciBar:
    index: int
    start: int
    size: int
    flags: int

    @property
    def prefetchable(self) -> bool:
        return bool(self.flags & IORESOURCE_PREFETCH)


class PciSysfsSpace(AddressSpace):
    """The memory BARs of one PCI function."""

    def __init__(self, address: str, *, sysfs_root: str | os.PathLike[str] = "/sys",
                 arch: str | None = None) -> None:
        self.address = address
        self.sysfs_root = sysfs_root
        self.dir = Path(sysfs_root) / "bus" / "pci" / "devices" / address
        try:
            lines = (self.dir / "resource").read_text().splitlines()
        except OSError as exc:
            raise MmioError(f"PCI {address}: cannot read {self.dir / 'resource'}: {exc}") from None
        bars = []
        for index, line in enumerate(lines[:6]):
            try:
                start, end, flags = (int(word, 16) for word in line.split())
            except ValueError:
                raise MmioError(f"PCI {address}: {self.dir / 'resource'} line {index + 1} is not "
                                f"'start end flags': {line!r}") from None
            if end > start and flags & IORESOURCE_MEM:
                bars.append(PciBar(index, start, end - start + 1, flags))
        if not bars:
            raise MmioError(f"PCI {address}: no memory BARs")
        self.bars = bars
        lo = min(b.start for b in bars)
        hi = max(b.start + b.size for b in bars)
        super().__init__(lo, hi - lo, name=f"pci {address}", arch=arch)

    @property
    def config(self) -> PciConfig:
        return PciConfig(self.dir / "config")

    @property
    def driver(self) -> str | None:
        """The kernel driver bound to this function, if any."""
        return pci_driver(self.address, self.sysfs_root)

    def bar(self, index: int) -> PciBar:
        for b in self.bars:
            if b.index == index:
                return b
        raise MmioError(f"PCI {self.address}: BAR {index} is not a memory BAR")

    def open(self, paddr: int, size: int, policy: CachePolicy) -> Window:
        for bar in self.bars:
            if bar.start <= paddr and paddr + size <= bar.start + bar.size:
                break
        else:
            raise OutOfRangeError(f"PCI {self.address}: [{paddr:#x}, {paddr + size:#x}) is in no BAR")
        if policy is CachePolicy.CACHED:
            raise PolicyError(f"PCI {self.address} BAR {bar.index}: sysfs offers no cached mapping")
        name = f"resource{bar.index}"
        if policy is CachePolicy.WRITE_COMBINING:
            if not bar.prefetchable or not (self.dir / f"{name}_wc").exists():
                raise PolicyError(f"PCI {self.address} BAR {bar.index}: write-combining needs a prefetchable "
                                  f"BAR with {name}_wc")
            name += "_wc"
        start, length = page_span(paddr - bar.start, size)
        try:
            fd = os.open(self.dir / name, os.O_RDWR | os.O_SYNC)
        except OSError as exc:
            raise MmioError(f"PCI {self.address}: cannot open {self.dir / name}: {exc.strerror}"
                            + (" (mapping BARs needs root)" if exc.errno in (errno.EPERM, errno.EACCES) else "")
                            ) from None
        try:
            mapping = mmap.mmap(fd, length, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=start)
        except OSError as exc:
            driver = self.driver
            if exc.errno == errno.EINVAL and driver:
                raise BarClaimedError(f"PCI {self.address} BAR {bar.index}: the kernel refused to map {name} "
                                      f"(EINVAL) because driver {driver} holds the device (IO_STRICT_DEVMEM); "
                                      f"{unbind_hint(self.address, driver)}") from None
            raise MmioError(f"PCI {self.address} BAR {bar.index}: cannot map {name} [{start:#x}, "
                            f"{start + length:#x}): {exc.strerror}") from None
        finally:
            os.close(fd)
        lo = paddr - bar.start - start
        return MemoryWindow(paddr, memoryview(mapping)[lo:lo + size], f"pci {name}", owner=mapping)
