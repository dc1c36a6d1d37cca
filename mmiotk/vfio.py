"""VFIO: a PCI function handed to user space whole, behind the IOMMU (linux/vfio.h, type1v2).

`VfioDevice(address)` opens the function's IOMMU group in a fresh container (type1v2), and offers:
- its BARs as an address space (`device.space`, addresses are the BARs' bus addresses as in sysfs; each
  window is an mmap of the device file at the region's offset);
- DMA memory the device reaches at IOVAs user space chooses (`device.dma_pool(size, iova)`: anonymous
  memory mapped with VFIO_IOMMU_MAP_DMA, unmapped when the pool's space closes), where a DMA to an IOVA
  nobody mapped is blocked by the IOMMU;
- interrupts on eventfds behind the `Interrupt` interface (`device.interrupt(VFIO_PCI_INTX_IRQ_INDEX)` or
  MSI, MSI-X): INTx is masked by the kernel on each interrupt and unmasked by `ack()`; MSI is edge-triggered.
The function must be bound to vfio-pci first. Debian's kernels have no no-IOMMU mode: this needs an IOMMU.
Unbinding vfio-pci blocks until every file and mapping of the device is gone: revoke the BAR regions and
close the device first.
"""

from __future__ import annotations

import ctypes
import fcntl
import math
import mmap
import os
import select
import struct
from pathlib import Path

from .dma import DmaPool
from .errors import MmioError, OutOfRangeError, PolicyError
from .irq import Interrupt, IrqTimeoutError
from .pci import IORESOURCE_MEM
from .policy import CachePolicy
from .space import PAGE_SIZE, AddressSpace, MemoryWindow, Window

_VFIO = ord(";") << 8 | 100  # _IO(VFIO_TYPE, VFIO_BASE + n) is this plus n
VFIO_GET_API_VERSION = _VFIO + 0
VFIO_CHECK_EXTENSION = _VFIO + 1
VFIO_SET_IOMMU = _VFIO + 2
VFIO_GROUP_GET_STATUS = _VFIO + 3
VFIO_GROUP_SET_CONTAINER = _VFIO + 4
VFIO_GROUP_GET_DEVICE_FD = _VFIO + 6
VFIO_DEVICE_GET_REGION_INFO = _VFIO + 8
VFIO_DEVICE_GET_IRQ_INFO = _VFIO + 9
VFIO_DEVICE_SET_IRQS = _VFIO + 10
VFIO_IOMMU_MAP_DMA = _VFIO + 13
VFIO_IOMMU_UNMAP_DMA = _VFIO + 14
VFIO_API_VERSION = 0
VFIO_TYPE1v2_IOMMU = 3
VFIO_GROUP_FLAGS_VIABLE = 1
VFIO_REGION_INFO_FLAG_MMAP = 4
VFIO_DMA_MAP_FLAG_READ, VFIO_DMA_MAP_FLAG_WRITE = 1, 2
VFIO_IRQ_SET_DATA_NONE, VFIO_IRQ_SET_DATA_EVENTFD = 1 << 0, 1 << 2
VFIO_IRQ_SET_ACTION_MASK, VFIO_IRQ_SET_ACTION_UNMASK, VFIO_IRQ_SET_ACTION_TRIGGER = 1 << 3, 1 << 4, 1 << 5
VFIO_PCI_INTX_IRQ_INDEX, VFIO_PCI_MSI_IRQ_INDEX, VFIO_PCI_MSIX_IRQ_INDEX = 0, 1, 2
VFIO_PCI_CONFIG_REGION_INDEX = 7

_REGION_INFO = struct.Struct("=IIIIQQ")
_IRQ_INFO = struct.Struct("=IIII")
_IRQ_SET = struct.Struct("=IIIII")
_DMA_MAP = struct.Struct("=IIQQQ")
_DMA_UNMAP = struct.Struct("=IIQQ")


class VfioError(MmioError):
    """A VFIO step failed; the message names the step, the device and what to check."""


def _ioctl(fd: int, request: int, arg: int | bytes | bytearray, what: str) -> int | bytes:
    try:
        if isinstance(arg, int):
            return fcntl.ioctl(fd, request, arg)
        buf = bytearray(arg)
        fcntl.ioctl(fd, request, buf, True)
        return bytes(buf)
    except OSError as exc:
        raise VfioError(f"VFIO {what} failed: {exc.strerror} (errno {exc.errno})") from None


class VfioDevice:
    """One PCI function bound to vfio-pci, in a container of its own."""

    def __init__(self, address: str, *, sysfs_root: str | os.PathLike[str] = "/sys",
                 dev_root: str | os.PathLike[str] = "/dev") -> None:
        self.address = address
        self.sysfs = Path(sysfs_root) / "bus" / "pci" / "devices" / address
        try:
            group = os.path.basename(os.readlink(self.sysfs / "iommu_group"))
        except OSError:
            raise VfioError(f"PCI {address}: no iommu_group in sysfs: the machine has no IOMMU enabled (boot with "
                            "intel_iommu=on; Debian's kernels have no VFIO no-IOMMU mode)") from None
        driver = os.path.basename(os.readlink(self.sysfs / "driver")) if (self.sysfs / "driver").exists() else None
        if driver != "vfio-pci":
            raise VfioError(f"PCI {address}: bound to {driver or 'no driver'}, not vfio-pci (bind it first: "
                            f"echo vfio-pci > {self.sysfs}/driver_override; echo {address} > "
                            "/sys/bus/pci/drivers_probe)")
        self._fds: list[int] = []
        try:
            self.container = self._open(Path(dev_root) / "vfio" / "vfio")
            if _ioctl(self.container, VFIO_GET_API_VERSION, 0, "GET_API_VERSION") != VFIO_API_VERSION:
                raise VfioError("VFIO: unknown API version")
            if not _ioctl(self.container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU, "CHECK_EXTENSION"):
                raise VfioError("VFIO: the kernel offers no type1v2 IOMMU (load vfio_iommu_type1)")
            self.group = self._open(Path(dev_root) / "vfio" / group)
            status = _ioctl(self.group, VFIO_GROUP_GET_STATUS, struct.pack("=II", 8, 0), "GROUP_GET_STATUS")
            assert isinstance(status, bytes)
            if not struct.unpack("=II", status)[1] & VFIO_GROUP_FLAGS_VIABLE:
                raise VfioError(f"VFIO group {group} of {address} is not viable: every device in it must be "
                                f"bound to vfio-pci (see {self.sysfs}/iommu_group/devices)")
            _ioctl(self.group, VFIO_GROUP_SET_CONTAINER, struct.pack("=i", self.container), "GROUP_SET_CONTAINER")
            _ioctl(self.container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU, "SET_IOMMU type1v2")
            self.fd = self._device_fd()
        except BaseException:
            self.close()
            raise
        self.space = VfioSpace(self)

    def _open(self, path: Path) -> int:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except OSError as exc:
            raise VfioError(f"PCI {self.address}: cannot open {path}: {exc.strerror}") from None
        self._fds.append(fd)
        return fd

    def _device_fd(self) -> int:
        # the argument is a char * and the result the new fd: fcntl.ioctl can pass one or return the other
        libc = ctypes.CDLL(None, use_errno=True)
        libc.ioctl.argtypes = (ctypes.c_int, ctypes.c_ulong, ctypes.c_char_p)
        fd = int(libc.ioctl(self.group, VFIO_GROUP_GET_DEVICE_FD, self.address.encode()))
        if fd < 0:
            err = ctypes.get_errno()
            raise VfioError(f"VFIO GROUP_GET_DEVICE_FD {self.address} failed: {os.strerror(err)} (errno {err})")
        self._fds.append(fd)
        return fd

    def region_info(self, index: int) -> tuple[int, int, int]:
        """(flags, size, offset in the device file) of region `index` (BARs 0-5, config 7)."""
        raw = _ioctl(self.fd, VFIO_DEVICE_GET_REGION_INFO, _REGION_INFO.pack(_REGION_INFO.size, 0, index, 0, 0, 0),
                     f"GET_REGION_INFO {index} of {self.address}")
        assert isinstance(raw, bytes)
        _, flags, _, _, size, offset = _REGION_INFO.unpack(raw)
        return flags, size, offset

    def irq_count(self, index: int) -> int:
        raw = _ioctl(self.fd, VFIO_DEVICE_GET_IRQ_INFO, _IRQ_INFO.pack(_IRQ_INFO.size, 0, index, 0),
                     f"GET_IRQ_INFO {index} of {self.address}")
        assert isinstance(raw, bytes)
        return _IRQ_INFO.unpack(raw)[3]

    def set_irqs(self, index: int, flags: int, start: int, fds: list[int] | None = None, count: int = 1) -> None:
        data = b"".join(struct.pack("=i", fd) for fd in fds) if fds is not None else b""
        count = len(fds) if fds is not None else count
        packed = _IRQ_SET.pack(_IRQ_SET.size + len(data), flags, index, start, count) + data
        _ioctl(self.fd, VFIO_DEVICE_SET_IRQS, packed, f"SET_IRQS index {index} flags {flags:#x} of {self.address}")

    def config_read16(self, offset: int) -> int:
        _, _, base = self.region_info(VFIO_PCI_CONFIG_REGION_INDEX)
        return int(struct.unpack("<H", os.pread(self.fd, 2, base + offset))[0])

    def config_write16(self, offset: int, value: int) -> None:
        _, _, base = self.region_info(VFIO_PCI_CONFIG_REGION_INDEX)
        os.pwrite(self.fd, struct.pack("<H", value), base + offset)

    def map_dma(self, vaddr: int, iova: int, size: int) -> None:
        _ioctl(self.container, VFIO_IOMMU_MAP_DMA,
               _DMA_MAP.pack(_DMA_MAP.size, VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE, vaddr, iova, size),
               f"IOMMU_MAP_DMA iova {iova:#x} size {size:#x}")

    def unmap_dma(self, iova: int, size: int) -> None:
        _ioctl(self.container, VFIO_IOMMU_UNMAP_DMA, _DMA_UNMAP.pack(_DMA_UNMAP.size, 0, iova, size),
               f"IOMMU_UNMAP_DMA iova {iova:#x} size {size:#x}")

    def dma_pool(self, size: int, iova: int, *, name: str | None = None) -> DmaPool:
        """A coherent pool of `size` bytes the device reaches at [iova, iova + size)."""
        return DmaPool.from_space(IovaSpace(self, size, iova), coherent=True, name=name or f"iova@{iova:#x}")

    def interrupt(self, index: int = VFIO_PCI_INTX_IRQ_INDEX, vector: int = 0) -> VfioInterrupt:
        return VfioInterrupt(self, index, vector)

    def interrupts(self, index: int, count: int) -> list[VfioInterrupt]:
        """Vectors 0..count-1 of MSI or MSI-X enabled in one SET_IRQS (the kernel sizes the vector table once),
        each on an eventfd of its own."""
        if not 0 < count <= self.irq_count(index):
            raise VfioError(f"VFIO {self.address}: interrupt index {index} has {self.irq_count(index)} vectors, "
                            f"{count} asked for")
        fds = [os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC) for _ in range(count)]
        try:
            self.set_irqs(index, VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, 0, fds)
        except BaseException:
            for fd in fds:
                os.close(fd)
            raise
        return [VfioInterrupt(self, index, vector, efd=fd) for vector, fd in enumerate(fds)]

    def close(self) -> None:
        """Close the device, group and container (the IOMMU drops every mapping); safe to call twice. Later
        ioctls fail with EBADF instead of reaching whatever file reuses the numbers."""
        for fd in reversed(self._fds):
            os.close(fd)
        self._fds.clear()
        self.fd = self.group = self.container = -1

    @property
    def closed(self) -> bool:
        return not self._fds

    def __enter__(self) -> VfioDevice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class VfioSpace(AddressSpace):
    """The memory BARs of a VFIO device at their bus addresses; windows are mmaps of the device file."""

    def __init__(self, device: VfioDevice) -> None:
        self.device = device
        self.bars: dict[int, tuple[int, int, int]] = {}  # index -> (bus address, size, file offset)
        lines = (device.sysfs / "resource").read_text().splitlines()
        for index, line in enumerate(lines[:6]):
            start, end, flags = (int(word, 16) for word in line.split())
            if end > start and flags & IORESOURCE_MEM:
                rflags, size, offset = device.region_info(index)
                if rflags & VFIO_REGION_INFO_FLAG_MMAP:
                    self.bars[index] = (start, size, offset)
        if not self.bars:
            raise VfioError(f"VFIO {device.address}: no memory BAR can be mmapped")
        lo = min(b[0] for b in self.bars.values())
        hi = max(b[0] + b[1] for b in self.bars.values())
        super().__init__(lo, hi - lo, name=f"vfio {device.address}")

    def open(self, paddr: int, size: int, policy: CachePolicy) -> Window:
        found = [(i, bar) for i, bar in self.bars.items() if bar[0] <= paddr and paddr + size <= bar[0] + bar[1]]
        if not found:
            raise OutOfRangeError(f"VFIO {self.device.address}: [{paddr:#x}, {paddr + size:#x}) is in no BAR")
        index, (start, _, offset) = found[0]
        if policy not in (CachePolicy.UNCACHED, CachePolicy.UNCACHED_DEVICE):
            raise PolicyError(f"VFIO {self.device.address} BAR {index}: vfio-pci maps BARs uncached only")
        lo = (paddr - start) // PAGE_SIZE * PAGE_SIZE
        span = -(-(paddr - start + size) // PAGE_SIZE) * PAGE_SIZE - lo
        mapping = mmap.mmap(self.device.fd, span, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE,
                            offset=offset + lo)
        first = paddr - start - lo
        return MemoryWindow(paddr, memoryview(mapping)[first:first + size], f"vfio BAR {index}", owner=mapping)


class IovaSpace(AddressSpace):
    """Anonymous memory mapped for the device at `iova` (its addresses are IOVAs); close() unmaps it."""

    def __init__(self, device: VfioDevice, size: int, iova: int) -> None:
        if size % PAGE_SIZE or iova % PAGE_SIZE:
            raise VfioError(f"VFIO DMA: size {size:#x} and IOVA {iova:#x} must be multiples of {PAGE_SIZE:#x}")
        super().__init__(iova, size, name=f"iova {iova:#x}")
        self.device = device
        self._mmap = mmap.mmap(-1, size, mmap.MAP_SHARED | mmap.MAP_ANONYMOUS)
        vaddr = ctypes.addressof(ctypes.c_char.from_buffer(self._mmap))
        device.map_dma(vaddr, iova, size)  # pins the pages
        self._mapped = True

    def open(self, paddr: int, size: int, policy: CachePolicy) -> Window:
        self.check_range(paddr, size)
        start = paddr - self.base
        return MemoryWindow(paddr, memoryview(self._mmap)[start:start + size], f"vfio dma at iova {self.base:#x}")

    @property
    def mapped(self) -> bool:
        """True while the IOMMU maps [base, base + size) for the device."""
        return self._mapped

    def close(self) -> None:
        """IOMMU_UNMAP_DMA of the range (a closed container has dropped it already); safe to call twice."""
        if self._mapped:
            self._mapped = False
            if not self.device.closed:
                self.device.unmap_dma(self.base, self.size)


class VfioInterrupt(Interrupt):
    """One VFIO interrupt (INTx, an MSI or MSI-X vector) on an eventfd.

    INTx: the kernel masks the line on each interrupt; `ack()` unmasks it (ACTION_UNMASK); `mask()` and
    `unmask()` are ACTION_MASK / ACTION_UNMASK. MSI and MSI-X are edges: `ack()` does nothing, and masking
    holds events in the eventfd's counter until `unmask()`.
    """

    def __init__(self, device: VfioDevice, index: int, vector: int = 0, *, efd: int | None = None) -> None:
        kind = {VFIO_PCI_INTX_IRQ_INDEX: "intx", VFIO_PCI_MSI_IRQ_INDEX: "msi", VFIO_PCI_MSIX_IRQ_INDEX: "msix"}
        super().__init__(f"{device.address}.{kind.get(index, index)}{vector}")
        if device.irq_count(index) <= vector:
            raise VfioError(f"VFIO {device.address}: interrupt index {index} has no vector {vector}")
        self.device = device
        self.index = index
        self.vector = vector
        self._masked = False
        self.events = 0  # interrupts read from the eventfd so far
        if efd is not None:  # already wired by VfioDevice.interrupts()
            self.efd = efd
            return
        self.efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        device.set_irqs(index, VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER, vector, [self.efd])

    def _wait(self, timeout: float) -> int:
        if self._masked and self.index != VFIO_PCI_INTX_IRQ_INDEX:
            raise IrqTimeoutError(f"interrupt {self.name!r}: masked; events wait for unmask()")
        poller = select.poll()
        poller.register(self.efd, select.POLLIN)
        if not poller.poll(math.ceil(timeout * 1000)):
            raise IrqTimeoutError(f"interrupt {self.name!r}: no interrupt on its eventfd within {timeout:g} s")
        self._check_live()
        try:
            count = int(os.eventfd_read(self.efd))
        except BlockingIOError:
            raise IrqTimeoutError(f"interrupt {self.name!r}: woke without an event") from None
        self.events += count
        return count

    def _ack(self) -> None:
        if self.index == VFIO_PCI_INTX_IRQ_INDEX:
            self.device.set_irqs(self.index, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK, 0, count=1)

    def _mask(self) -> None:
        self._masked = True
        if self.index == VFIO_PCI_INTX_IRQ_INDEX:
            self.device.set_irqs(self.index, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_MASK, 0, count=1)

    def _unmask(self) -> None:
        self._masked = False
        if self.index == VFIO_PCI_INTX_IRQ_INDEX:
            self.device.set_irqs(self.index, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK, 0, count=1)

    def _on_revoke(self) -> None:
        try:
            self.device.set_irqs(self.index, VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER, 0, count=0)
        except VfioError:
            pass  # the device may already be closed
        os.close(self.efd)
