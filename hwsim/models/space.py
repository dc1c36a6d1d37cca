"""ModelSpace: a device model and guest RAM in one AddressSpace, laid out like QEMU's virt board.

The register window is transaction-backed (every access is a call into the model); guest RAM is a
`RamSpace` (anonymous, or a file such as /dev/shm/NAME), so RAM windows are memory-backed, DMA buffers are
numpy views, and the model's DMA lands in the same memory — the same shape as the QEMU target.
"""

from __future__ import annotations

import os

from mmiotk.errors import MmioValueError, OutOfRangeError
from mmiotk.irq import LevelInterrupt
from mmiotk.policy import CachePolicy
from mmiotk.ram import RamSpace
from mmiotk.space import AddressSpace, Window

from .guest_memory import GuestMemory
from .virtio_blk import VirtioBlkModel
from .virtio_mmio import VirtioMmioDevice
from .virtio_mmio_regs import WINDOW_SIZE

DEVICE_BASE = 0x0A000000
RAM_BASE = 0x40000000


class ModelWindow(Window):
    """A transaction-backed window onto a model's registers: one model call per access."""

    mechanism = "behavioural model"

    def __init__(self, paddr: int, size: int, device: VirtioMmioDevice, offset: int) -> None:
        super().__init__(paddr, size)
        self._device = device
        self._offset = offset

    def read(self, offset: int, width: int) -> int:
        return self._device.read(self._offset + offset, width)

    def write(self, offset: int, width: int, value: int) -> None:
        self._device.write(self._offset + offset, width, value)


class ModelIrq(LevelInterrupt):
    """The model's interrupt line: level-triggered, high while InterruptStatus != 0.

    Follows mmiotk's interrupt rules: a delivered interrupt is in service until `ack()`; a line still
    high after `ack()` is delivered again at once. `wait` returns the number of times the line rose since
    the previous delivery (at least 1). Waits sleep on the model's condition, so a model driven from
    another thread wakes them; revoking wakes them too (RevokedError).
    """

    def __init__(self, device: VirtioMmioDevice, name: str) -> None:
        self._device = device
        super().__init__(name)

    @property
    def level(self) -> int:
        return self._device.irq_level

    @property
    def rises(self) -> int:
        return self._device.irq_rises

    def _wait(self, timeout: float) -> int:
        device = self._device
        with device.irq_changed:
            if device.deferred and device.notify_pending:
                device.run_queue()            # the device works while the driver sleeps
            return self._deliver(device.irq_changed.wait_for(self._ready, timeout), timeout)

    def _ack(self) -> None:
        with self._device.irq_changed:
            super()._ack()
            self._device.irq_changed.notify_all()

    def _unmask(self) -> None:
        with self._device.irq_changed:
            super()._unmask()
            self._device.irq_changed.notify_all()

    def _on_revoke(self) -> None:
        with self._device.irq_changed:
            self._device.irq_changed.notify_all()


class ModelSpace(AddressSpace):
    """A virtio-mmio device model at `device_base` and `ram_size` bytes of guest RAM at `ram_base`.

    `device` defaults to a `VirtioBlkModel` of 16 MiB; `ram_path` puts guest RAM in a file (created,
    removed on close). Attributes match `hwsim.qemu.QemuSpace`: device_base, irq_number, ram_base,
    ram_size, dma_base, dma_size, ram (numpy), interrupt().
    """

    simulated = True
    coherent = True

    def __init__(self, device: VirtioMmioDevice | None = None, *, ram_size: int = 16 << 20,
                 ram_base: int = RAM_BASE, device_base: int = DEVICE_BASE, irq_number: int = 0,
                 ram_path: str | os.PathLike[str] | None = None, name: str = "model") -> None:
        if device_base % WINDOW_SIZE or device_base < 0:
            raise MmioValueError(f"device_base {device_base:#x} must be a non-negative multiple of {WINDOW_SIZE:#x}")
        if device_base < ram_base + ram_size and ram_base < device_base + WINDOW_SIZE:
            raise MmioValueError(f"device window at {device_base:#x} overlaps guest RAM "
                                 f"[{ram_base:#x}, {ram_base + ram_size:#x})")
        self._ram = RamSpace(ram_size, base=ram_base, path=ram_path, name=f"{name}-ram", arch="aarch64")
        lo = min(ram_base, device_base)
        hi = max(ram_base + ram_size, device_base + WINDOW_SIZE)
        super().__init__(lo, hi - lo, name=name, arch="aarch64")
        self.device = device if device is not None else VirtioBlkModel()
        self.device.attach(GuestMemory(self._ram.array.data, ram_base))
        self.device_base = device_base
        self.irq_number = irq_number
        self.ram_base = ram_base
        self.ram_size = ram_size
        self.dma_base = ram_base
        self.dma_size = ram_size
        self.ram = self._ram.array
        self._closed = False

    def open(self, paddr: int, size: int, policy: CachePolicy) -> Window:
        if self._closed:
            raise MmioValueError(f"model space {self.name!r}: open [{paddr:#x}, {paddr + size:#x}) after close()")
        self.check_range(paddr, size)
        if self._ram.contains(paddr, size):
            return self._ram.open(paddr, size, policy)
        if self.device_base <= paddr and paddr + size <= self.device_base + WINDOW_SIZE:
            return ModelWindow(paddr, size, self.device, paddr - self.device_base)
        raise OutOfRangeError(f"[{paddr:#x}, {paddr + size:#x}) is neither inside the device window "
                              f"[{self.device_base:#x}, {self.device_base + WINDOW_SIZE:#x}) nor inside guest RAM "
                              f"[{self.ram_base:#x}, {self.ram_base + self.ram_size:#x})")

    def interrupt(self, line: int | None = None, name: str | None = None) -> ModelIrq:
        """The device's interrupt line (`irq_number`); another number raises MmioValueError."""
        if line is not None and line != self.irq_number:
            raise MmioValueError(f"model space {self.name!r} has one interrupt line, {self.irq_number}; "
                                 f"got {line!r}")
        return ModelIrq(self.device, name or f"{self.name} irq {self.irq_number}")

    irq_factory = interrupt  # an IrqFactory: number -> Interrupt

    def close(self) -> None:
        """Power down in order (the device saves its write cache to the media) and remove the RAM file,
        if any. Safe to call twice. The media stays mapped for inspection; `device.media.close()` unmaps."""
        if not self._closed:
            self._closed = True
            self.device.shutdown()
        self._ram.close()
