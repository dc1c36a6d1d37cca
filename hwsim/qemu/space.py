"""QemuSpace: QEMU's `-M virt` machine as an AddressSpace, reached through qtest and shared guest RAM.

Register windows (anything below guest RAM, e.g. the virtio-mmio slots at 0x0a000000) are
transaction-backed: every access is one qtest `readl`/`writel`/... line. Guest RAM (0x40000000 up) is a
file under /dev/shm that QEMU maps with `share=on` and this process maps too, so RAM windows are
memory-backed and DMA buffers are numpy views: only register accesses cross the socket.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import time
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from mmiotk.errors import MmioValueError, OutOfRangeError
from mmiotk.irq import LevelInterrupt
from mmiotk.policy import CachePolicy
from mmiotk.space import AddressSpace, MemoryWindow, Window

from .errors import QemuError
from .process import MiB, QemuOptions, QemuProcess
from .qmp import QmpClient
from .qtest import QtestClient

# hw/arm/virt.c: VIRT_MMIO = {0x0a000000, 0x200} x NUM_VIRTIO_TRANSPORTS (32), irqmap[VIRT_MMIO] = 16
VIRT_MMIO_BASE = 0x0A000000
VIRT_MMIO_STRIDE = 0x200
VIRT_MMIO_SLOTS = 32
VIRT_MMIO_IRQ_BASE = 16
GIC_SPI_BASE = 32  # GIC interrupt ID of SPI 0; qtest numbers GIC inputs from SPI 0
# hw/arm/virt.c with highmem=off (as QEMU 7.2's own device tree for the machine says): the generic PCIe host
# bridge's ECAM (16 buses of 1 MiB), its 32-bit MMIO window (PCI address = CPU address) and INTx: device d's
# pin INTA..INTD (1..4) is SPI 3 + (d + pin - 1) % 4 (irqmap[VIRT_PCIE] = 3, the standard swizzle)
VIRT_PCIE_ECAM_BASE = 0x3F000000
VIRT_PCIE_ECAM_SIZE = 0x01000000
VIRT_PCIE_MMIO_BASE = 0x10000000
VIRT_PCIE_MMIO_SIZE = 0x2EFF0000
VIRT_PCIE_IRQ_BASE = 3
# the GICv2m MSI frame (hw/intc/arm_gicv2m.c): a write of an SPI's interrupt ID to MSI_SETSPI_NS pulses it;
# MSI_TYPER gives the first ID (bits 25:16) and how many (bits 9:0): 80 and 64 on virt
VIRT_GIC_V2M_BASE = 0x08020000
V2M_MSI_TYPER = 0x008
V2M_MSI_SETSPI_NS = 0x040
VIRT_RAM_BASE = 0x40000000
RESERVED_RAM = 1 * MiB            # the DTB sits at the start of guest RAM
VIRTIO_MAGIC = 0x74726976
VIRTIO_ID_BLOCK = 2
GIC_TYPES = ("arm_gic", "arm-gicv3", "kvm-arm-gic", "kvm-arm-gicv3")


class QemuWindow(Window):
    """A transaction-backed window: one qtest line per access. The mapping's accessors have checked offset,
    width and value (the Window contract), so accesses go to the client's `*_checked` requests."""

    mechanism = "qemu qtest"

    def __init__(self, paddr: int, size: int, client: QtestClient) -> None:
        super().__init__(paddr, size)
        self._client = client
        self._read, self._write = client.read_checked, client.write_checked

    def read(self, offset: int, width: int) -> int:
        return self._read(self.paddr + offset, width)

    def write(self, offset: int, width: int, value: int) -> None:
        self._write(self.paddr + offset, width, value)

    def read_block(self, offset: int, n: int) -> bytes:
        return self._client.read_bytes(self.paddr + offset, n)

    def write_block(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        self._client.write_bytes(self.paddr + offset, data)


class QemuIrq(LevelInterrupt):
    """One input of the GIC, intercepted by qtest. Level-triggered: `wait` returns while the line is high.

    As with every mmiotk interrupt, a delivered interrupt is in service until `ack()`: the next wait
    times out until then. The device keeps its line high until the driver writes its own acknowledge
    register (virtio-mmio InterruptACK), so a line still high after `ack()` is delivered again at once.
    `wait` returns the number of raises seen since the previous delivery (at least 1). A masked line is
    never delivered; revoking wakes a blocked wait, which raises RevokedError.
    """

    def __init__(self, client: QtestClient, line: int, name: str) -> None:
        self._client = client
        self.line = line
        super().__init__(name, f" (GIC input {line})")

    @property
    def level(self) -> int:
        """The line's level as of the last line read from QEMU."""
        return self._client.irq_levels.get(self.line, 0)

    @property
    def rises(self) -> int:
        return self._client.irq_raises.get(self.line, 0)

    def _wait(self, timeout: float) -> int:
        return self._deliver(self._client.wait_irq(self.line, time.monotonic() + timeout, self._ready), timeout)


class QemuEdgeIrq(QemuIrq):
    """A GIC input that a message pulses (MSI through the GICv2m frame: raise and lower at once). Every raise
    is an event: `wait` returns once a raise arrived that no earlier delivery counted."""

    def _ready(self) -> bool:
        return self._revoked or (self.rises > self._seen and not self._masked and not self._in_service)


def _teardown(process: QemuProcess, closers: list[Callable[[], None]]) -> None:
    """Close the connections, stop QEMU, remove files. Holds no reference to the space."""
    for close in closers:
        with contextlib.suppress(Exception):
            close()
    process.cleanup()


class QemuSpace(AddressSpace):
    """`qemu-system-aarch64 -M virt` with one virtio-blk device; see the package docstring for an example.

    Keyword arguments are `QemuOptions` fields (image, image_format, disk_size, readonly, ram_size,
    qemu_binary, modern, logical_block_size, physical_block_size, image_range, cache, config_wce, transport,
    timeouts, extra_args).
    With transport="mmio" the device's slot is `device_base` and its interrupt `irq_number`; with "pci" the
    host bridge is `ecam_base`/`ecam_size`, BARs go in `pci_mmio_window`, INTA..INTD of device 0 are `pci_intx`,
    and MSIs are writes to `msi_doorbell` of an interrupt ID in `msi_intids` (`msi_interrupt(intid)`).
    """

    simulated = True
    coherent = True

    def __init__(self, options: QemuOptions | None = None, **kwargs: Any) -> None:
        if options is not None and kwargs:
            raise MmioValueError("QemuSpace takes either a QemuOptions or keyword options, not both")
        self.options = options if options is not None else QemuOptions(**kwargs)
        self.ram_base = VIRT_RAM_BASE
        self.ram_size = self.options.ram_size
        super().__init__(0, self.ram_base + self.ram_size, name="qemu-virt", arch="aarch64")
        self._closed = False
        self._process = QemuProcess(self.options)
        self._closers: list[Callable[[], None]] = []
        self._finalizer = weakref.finalize(self, _teardown, self._process, self._closers)
        try:
            self._start()
        except BaseException:
            self._finalizer()
            raise

    def _start(self) -> None:
        process = self._process
        self.ram_path = process.ram_path
        fd = os.open(self.ram_path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.ftruncate(fd, self.ram_size)
            self._ram_mmap = mmap.mmap(fd, self.ram_size, mmap.MAP_SHARED)
        finally:
            os.close(fd)
        self._ram_memory = memoryview(self._ram_mmap)
        self.ram = np.frombuffer(self._ram_mmap, dtype=np.uint8)
        qtest_sock, qmp_sock = process.start()
        self.pid = process.proc.pid if process.proc else -1
        self.command = process.command
        def describe_death() -> str:
            return process.describe(settle=0.5)

        self.qtest = QtestClient(qtest_sock, timeout=self.options.command_timeout, spin=self.options.reply_spin,
                                 describe_death=describe_death)
        self._closers.append(self.qtest.close)
        self._closers.append(qmp_sock.close)
        self.qmp = QmpClient(qmp_sock, timeout=self.options.command_timeout, describe_death=describe_death)
        self._closers.append(self.qmp.close)
        if self.qtest.command("endianness") != "little":
            raise QemuError("QEMU's target is not little-endian; QemuSpace expects aarch64 virt")
        self.gic_path = self._find_gic()
        self.qtest.intercept_irqs(self.gic_path)
        self.dma_base = self.ram_base + RESERVED_RAM
        self.dma_size = self.ram_size - RESERVED_RAM
        if self.options.transport == "pci":
            self._pcie()
        else:
            self._virtio_mmio()
        # QEMU has every file open now: unlink them, so nothing is left behind even if we are killed.
        process.unlink_files()

    def _pcie(self) -> None:
        """Where the PCIe host bridge is; enumerating it is a bus driver's job (drivers.bus.pci_ecam)."""
        self.ecam_base, self.ecam_size = VIRT_PCIE_ECAM_BASE, VIRT_PCIE_ECAM_SIZE
        self.pci_mmio_window = (VIRT_PCIE_MMIO_BASE, VIRT_PCIE_MMIO_SIZE)
        self.pci_intx = tuple(GIC_SPI_BASE + VIRT_PCIE_IRQ_BASE + pin for pin in range(4))  # GIC IDs, INTA..D
        if self.qtest.read(self.ecam_base, 4) == 0xFFFF_FFFF:
            raise QemuError(f"no PCI host bridge answers at ECAM {self.ecam_base:#x}; {self._process.describe()}")
        typer = self.qtest.read(VIRT_GIC_V2M_BASE + V2M_MSI_TYPER, 4)
        self.msi_doorbell = VIRT_GIC_V2M_BASE + V2M_MSI_SETSPI_NS
        self.msi_intids = ((typer >> 16) & 0x3FF, typer & 0x3FF)  # (first GIC interrupt ID, count)

    def msi_interrupt(self, intid: int, name: str | None = None) -> QemuEdgeIrq:
        """GIC interrupt ID `intid` as the edge an MSI write to `msi_doorbell` (data = `intid`) makes."""
        first, count = self.msi_intids
        if not isinstance(intid, int) or not first <= intid < first + count:
            raise MmioValueError(f"MSI interrupt ID must be in the GICv2m range {first}..{first + count - 1}, "
                                 f"got {intid!r}")
        return QemuEdgeIrq(self.qtest, intid - GIC_SPI_BASE, name or f"qemu-virt MSI {intid}")

    def _virtio_mmio(self) -> None:
        process = self._process
        self.devices = self._scan_slots()
        blk = [slot for slot, device_id in self.devices.items() if device_id == VIRTIO_ID_BLOCK]
        if not blk:
            raise QemuError(f"no virtio-blk device in any virtio-mmio slot (found {self.devices}); "
                            f"{process.describe()}")
        self.device_slot = blk[0]
        self.device_base = VIRT_MMIO_BASE + self.device_slot * VIRT_MMIO_STRIDE
        self.irq_number = GIC_SPI_BASE + VIRT_MMIO_IRQ_BASE + self.device_slot  # a GIC interrupt ID, as in boards

    def _find_gic(self) -> str:
        for parent in ("/machine/unattached", "/machine"):
            children = self.qmp.execute("qom-list", {"path": parent})
            for child in children:
                kind = child.get("type", "")
                if kind.startswith("child<") and kind[6:-1] in GIC_TYPES:
                    return f"{parent}/{child['name']}"
        raise QemuError("no GIC found under /machine/unattached or /machine via QMP qom-list")

    def _scan_slots(self) -> dict[int, int]:
        """{slot: DeviceID} for every virtio-mmio slot with a device behind it."""
        found = {}
        for slot in range(VIRT_MMIO_SLOTS):
            base = VIRT_MMIO_BASE + slot * VIRT_MMIO_STRIDE
            if self.qtest.read(base, 4) == VIRTIO_MAGIC:
                device_id = self.qtest.read(base + 8, 4)
                if device_id:
                    found[slot] = device_id
        return found

    # --- AddressSpace --------------------------------------------------------------------------------
    def open(self, paddr: int, size: int, policy: CachePolicy) -> Window:
        if self._closed:
            raise QemuError(f"QEMU space: open [{paddr:#x}, {paddr + size:#x}) after close()")
        self.check_range(paddr, size)
        if paddr >= self.ram_base:
            start = paddr - self.ram_base
            return MemoryWindow(paddr, self._ram_memory[start:start + size], "qemu guest RAM (shared memory)")
        if paddr + size > self.ram_base:
            raise OutOfRangeError(f"[{paddr:#x}, {paddr + size:#x}) straddles the start of guest RAM at "
                                  f"{self.ram_base:#x}; map registers and RAM separately")
        return QemuWindow(paddr, size, self.qtest)

    def interrupt(self, intid: int | None = None, name: str | None = None) -> QemuIrq:
        """GIC interrupt ID `intid` (default: the virtio-blk device's, `irq_number`) as an Interrupt.

        Interrupt IDs are what board descriptions use (SPI n is ID 32 + n); qtest reports GIC inputs, which
        count SPIs from 0, so the line watched is `intid - 32`.
        """
        intid = self.irq_number if intid is None else intid
        if not isinstance(intid, int) or not GIC_SPI_BASE <= intid < GIC_SPI_BASE + 256:
            raise MmioValueError(f"GIC interrupt ID must be an SPI, {GIC_SPI_BASE}..{GIC_SPI_BASE + 255}, "
                                 f"got {intid!r}")
        return QemuIrq(self.qtest, intid - GIC_SPI_BASE, name or f"qemu-virt GIC interrupt {intid}")

    irq_factory = interrupt  # an IrqFactory: GIC interrupt ID -> Interrupt

    def ram_view(self, paddr: int, size: int) -> memoryview:
        """A byte memoryview of guest RAM [paddr, paddr + size) (for stdlib code without mappings)."""
        if not (self.ram_base <= paddr and size >= 0 and paddr + size <= self.ram_base + self.ram_size):
            raise OutOfRangeError(f"[{paddr:#x}, {paddr + size:#x}) is not inside guest RAM "
                                  f"[{self.ram_base:#x}, {self.ram_base + self.ram_size:#x})")
        return self._ram_memory[paddr - self.ram_base:paddr - self.ram_base + size]

    @property
    def alive(self) -> bool:
        proc = self._process.proc
        return not self._closed and proc is not None and proc.poll() is None

    def stderr_tail(self) -> str:
        return self._process.stderr_tail()

    def close(self) -> None:
        """Stop QEMU (SIGTERM, then SIGKILL) and remove its files. Safe to call twice.

        A graceful stop lets QEMU flush its write cache into the image. Numpy views of guest RAM stay
        readable (the mapping lives while they do) but no longer mean anything.
        """
        self._closed = True
        self._finalizer()

    def __enter__(self) -> QemuSpace:
        return self
