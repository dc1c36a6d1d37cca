"""UIO devices: /dev/uioX and its maps in /sys/class/uio/uioX/maps/mapN/{addr,size,offset,name}.

Map N is mmapped at file offset N * pagesize; its registers start `offset` bytes into that mapping. The
kernel maps UIO memory uncached, so only UNCACHED and UNCACHED_DEVICE are offered. Roots are
configurable so tests run against a tree of regular files.

The space opens /dev/uioX once and maps and hands out interrupts through that one open file: some UIO
drivers (tcm-user) refuse a second open with EBUSY while the first is mapped.

A UIO device on PCI (uio_pci_generic, uio_mf624, ...) has its function's sysfs directory as `device`;
`pci_config` is its configuration space, which the interrupt needs when the driver has no irqcontrol.
"""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import MmioError, OutOfRangeError, PolicyError
from .pci import PciConfig
from .policy import CachePolicy
from .space import PAGE_SIZE, AddressSpace, MemoryWindow, Window


@dataclass(frozen=True)
class UioMap:
    index: int
    name: str
    addr: int
    size: int
    offset: int


def _read_int(path: Path) -> int:
    try:
        return int(path.read_text().strip(), 0)
    except (OSError, ValueError) as exc:
        raise MmioError(f"cannot read a number from {path}: {exc}") from None


class UioSpace(AddressSpace):
    """The physical ranges of one UIO device's maps."""

    def __init__(self, device: str = "uio0", *, sysfs_root: str | os.PathLike[str] = "/sys",
                 dev_root: str | os.PathLike[str] = "/dev", arch: str | None = None) -> None:
        self.device = device
        self.sysfs = Path(sysfs_root) / "class" / "uio" / device
        self.dev_path = Path(dev_root) / device
        maps_dir = self.sysfs / "maps"
        if not maps_dir.is_dir():
            raise MmioError(f"{device}: no maps directory at {maps_dir}")
        maps = []
        for entry in sorted(maps_dir.iterdir(), key=lambda p: int(p.name[3:]) if p.name[3:].isdigit() else -1):
            if not entry.name.startswith("map") or not entry.name[3:].isdigit():
                continue
            name_file = entry / "name"
            maps.append(UioMap(index=int(entry.name[3:]),
                               name=name_file.read_text().strip() if name_file.exists() else "",
                               addr=_read_int(entry / "addr"), size=_read_int(entry / "size"),
                               offset=_read_int(entry / "offset") if (entry / "offset").exists() else 0))
        if not maps:
            raise MmioError(f"{device}: {maps_dir} lists no maps")
        self.maps = maps
        self._fd: int | None = None
        lo = min(m.addr for m in maps)
        hi = max(m.addr + m.size for m in maps)
        super().__init__(lo, hi - lo, name=device, arch=arch)

    @property
    def irq_path(self) -> Path:
        """Reading blocks until an interrupt (a 32-bit count); writing 1 re-enables it."""
        return self.dev_path

    def fileno(self) -> int:
        """The space's one open file of /dev/uioX (opened at first use, closed by close())."""
        if self._fd is None:
            try:
                self._fd = os.open(self.dev_path, os.O_RDWR | os.O_SYNC | os.O_CLOEXEC)
            except OSError as exc:
                raise MmioError(f"{self.device}: cannot open {self.dev_path}: {exc.strerror}") from None
        return self._fd

    def close(self) -> None:
        """Close the space's file; mappings made through it stay valid until they are closed themselves."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        super().close()

    @property
    def driver(self) -> str | None:
        """The kernel driver behind this UIO device (uio_pci_generic, ...), if sysfs says."""
        try:
            return os.path.basename(os.readlink(self.sysfs / "device" / "driver"))
        except OSError:
            return None

    @property
    def pci_config(self) -> PciConfig | None:
        """The PCI configuration space of the device, when it is a PCI function."""
        config = self.sysfs / "device" / "config"
        return PciConfig(config) if config.exists() else None

    def open(self, paddr: int, size: int, policy: CachePolicy) -> Window:
        if policy not in (CachePolicy.UNCACHED, CachePolicy.UNCACHED_DEVICE):
            raise PolicyError(f"{self.device}: UIO maps are uncached; {CachePolicy(policy).name} is not offered")
        for m in self.maps:
            if m.addr <= paddr and paddr + size <= m.addr + m.size:
                break
        else:
            raise OutOfRangeError(f"{self.device}: [{paddr:#x}, {paddr + size:#x}) is in no single map")
        length = (m.offset + m.size + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
        try:
            mapping = mmap.mmap(self.fileno(), length, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE,
                                offset=m.index * PAGE_SIZE)
        except OSError as exc:
            raise MmioError(f"{self.device}: cannot map map{m.index} ({length:#x} bytes at offset "
                            f"{m.index * PAGE_SIZE:#x} of {self.dev_path}): {exc.strerror}") from None
        lo = m.offset + (paddr - m.addr)
        return MemoryWindow(paddr, memoryview(mapping)[lo:lo + size], f"{self.dev_path} map{m.index}",
                            owner=mapping)
