"""The virtio-mmio transport (virtio 1.2 §4.2): modern devices (Version 2) and the legacy interface
(Version 1, §4.2.4).

The primitives of `VirtioTransport` on the virtio-mmio register layout; the generic steps (reset, negotiation,
DRIVER_OK, config reads under ConfigGeneration) are the base class's. Control registers are accessed 32 bits
wide only; device configuration fields with their own width, 64-bit ones as two 32-bit halves (§4.2.2.2).

A legacy device has 32 feature bits and no VERSION_1, no FEATURES_OK step (the features are what the
driver wrote when it sets DRIVER_OK), no ConfigGeneration, and one queue address: QueuePFN, the page of the
descriptor table, with the avail ring right after it and the used ring at the next QueueAlign boundary
(the driver writes GuestPageSize and QueueAlign first). `negotiate`, `device_features` and `read_config`
take the legacy path for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from mmiotk import MmioBuffer
from mmiotk.registers import RO, WO, Field, Register, RegisterBlock

from . import VirtioError
from .transport import B, Feature, Status, VirtioTransport, bit

T = TypeVar("T")

__all__ = ["CONFIG_OFFSET", "Feature", "Status", "VirtioMmio", "VirtioMmioRegs", "bit"]

# Deliberate duplication: the virtio constants here are written out again, on purpose, in the device
# model (hwsim/models/) and in the RTL test driver (tests/hwsim/vblk/vblk_driver.py), so that device and
# drivers stay independent readings of the spec and a misreading in one is caught by the other.
MAGIC = 0x7472_6976  # "virt"
VERSION_MODERN = 2
VERSION_LEGACY = 1
LEGACY_PAGE_SIZE = 4096   # GuestPageSize: the unit of QueuePFN
LEGACY_QUEUE_ALIGN = 64   # QueueAlign: where the used ring starts (the Virtqueue layout's own alignment)


class VirtioMmioRegs(RegisterBlock, name="virtio-mmio"):
    """The control registers (§4.2.2, "MMIO Device Register Layout"); the device's own config follows at
    CONFIG_OFFSET."""

    MAGIC_VALUE = Register(0x000, access=RO)
    VERSION = Register(0x004, access=RO)
    DEVICE_ID = Register(0x008, access=RO)
    VENDOR_ID = Register(0x00C, access=RO)
    DEVICE_FEATURES = Register(0x010, access=RO)
    DEVICE_FEATURES_SEL = Register(0x014, access=WO)
    DRIVER_FEATURES = Register(0x020, access=WO)
    DRIVER_FEATURES_SEL = Register(0x024, access=WO)
    GUEST_PAGE_SIZE = Register(0x028, access=WO)       # legacy only
    QUEUE_SEL = Register(0x030, access=WO)
    QUEUE_NUM_MAX = Register(0x034, access=RO)
    QUEUE_NUM = Register(0x038, access=WO)
    QUEUE_ALIGN = Register(0x03C, access=WO)           # legacy only
    QUEUE_PFN = Register(0x040)                        # legacy only
    QUEUE_READY = Register(0x044, fields=[Field("READY", 0)])
    QUEUE_NOTIFY = Register(0x050, access=WO)
    INTERRUPT_STATUS = Register(0x060, access=RO, fields=[Field("USED_BUFFER", 0), Field("CONFIG_CHANGE", 1)])
    INTERRUPT_ACK = Register(0x064, access=WO, fields=[Field("USED_BUFFER", 0), Field("CONFIG_CHANGE", 1)])
    STATUS = Register(0x070, fields=[
        Field("ACKNOWLEDGE", 0), Field("DRIVER", 1), Field("DRIVER_OK", 2), Field("FEATURES_OK", 3),
        Field("DEVICE_NEEDS_RESET", 6), Field("FAILED", 7)])
    QUEUE_DESC_LOW = Register(0x080, access=WO)
    QUEUE_DESC_HIGH = Register(0x084, access=WO)
    QUEUE_DRIVER_LOW = Register(0x090, access=WO)
    QUEUE_DRIVER_HIGH = Register(0x094, access=WO)
    QUEUE_DEVICE_LOW = Register(0x0A0, access=WO)
    QUEUE_DEVICE_HIGH = Register(0x0A4, access=WO)
    CONFIG_GENERATION = Register(0x0FC, access=RO)


CONFIG_OFFSET = 0x100


class VirtioMmio(VirtioTransport):
    """One virtio-mmio device behind a mapped register window (at least 0x100 bytes plus its config)."""

    status_register = "Status"
    generation_register = "ConfigGeneration"

    def __init__(self, window: MmioBuffer, *, reset_timeout: float = 1.0) -> None:
        super().__init__()
        if window.size < CONFIG_OFFSET:
            raise VirtioError(f"{window.name}: a virtio-mmio window needs at least {CONFIG_OFFSET:#x} bytes, "
                              f"got {window.size:#x}")
        self.window = window
        self.name = window.name
        self.regs = regs = VirtioMmioRegs(window)
        self.reset_timeout = reset_timeout
        magic = int(regs.MAGIC_VALUE.read())
        if magic != MAGIC:
            raise VirtioError(f"{self.name}: MagicValue is {magic:#010x}, not {MAGIC:#010x} ('virt'): "
                              "not a virtio-mmio device")
        self.version = int(regs.VERSION.read())
        if self.version not in (VERSION_MODERN, VERSION_LEGACY):
            raise VirtioError(f"{self.name}: virtio-mmio Version {self.version}; Version {VERSION_MODERN} "
                              f"(modern) and {VERSION_LEGACY} (legacy) are supported")
        self.legacy = self.version == VERSION_LEGACY
        self.device_id = int(regs.DEVICE_ID.read())
        self.vendor_id = int(regs.VENDOR_ID.read())
        # the doorbell is the one register on the hot path: a bound write32, no field handling
        self._notify_write = window.write32
        self._notify_offset = VirtioMmioRegs.specs()["QUEUE_NOTIFY"].offset

    def __repr__(self) -> str:
        return f"<VirtioMmio {self.name} device {self.device_id} vendor {self.vendor_id:#x}>"

    # --- primitives (VirtioTransport) ---------------------------------------------------------------
    def _read_status(self) -> int:
        return int(self.regs.STATUS.read())

    def _write_status(self, value: int) -> None:
        self.regs.STATUS.write(value)

    def _read_device_features(self, select: int) -> int:
        self.regs.DEVICE_FEATURES_SEL.write(select)
        return int(self.regs.DEVICE_FEATURES.read())

    def _write_driver_features(self, select: int, value: int) -> None:
        self.regs.DRIVER_FEATURES_SEL.write(select)
        self.regs.DRIVER_FEATURES.write(value)

    def config_generation(self) -> int:
        return int(self.regs.CONFIG_GENERATION.read())

    # --- the legacy interface (Version 1) -----------------------------------------------------------
    def device_features(self) -> int:
        return self._read_device_features(0) if self.legacy else super().device_features()

    def negotiate(self, wanted: int, required: int = 0) -> int:
        """Modern: the base class's negotiation. Legacy: accept `device & wanted` (32 bits, no VERSION_1, no
        FEATURES_OK: the features are in effect as written) and set GuestPageSize."""
        if not self.legacy:
            return super().negotiate(wanted, required)
        offered = self.device_features()
        missing = required & ~offered
        if missing:
            self.fail()
            raise VirtioError(f"{self.name}: legacy device lacks required feature bits {missing:#x} "
                              f"(offers {offered:#x})")
        accepted = offered & (wanted | required)
        self._write_driver_features(0, accepted)
        self.regs.GUEST_PAGE_SIZE.write(LEGACY_PAGE_SIZE)
        self.features = accepted
        return accepted

    def read_config(self, reader: Callable[[], T], attempts: int = 100) -> T:
        """Legacy devices have no ConfigGeneration: run `reader` until two runs agree."""
        if not self.legacy:
            return super().read_config(reader, attempts)
        value = reader()
        for _ in range(attempts):
            again = reader()
            if again == value:
                return value
            value = again
        raise VirtioError(f"{self.name}: the configuration kept changing over {attempts} reads")

    def _setup_legacy_queue(self, index: int, size: int, desc: int, driver: int, device: int) -> None:
        regs = self.regs
        used = (driver + 6 + 2 * size + LEGACY_QUEUE_ALIGN - 1) & ~(LEGACY_QUEUE_ALIGN - 1)
        if desc % LEGACY_PAGE_SIZE or driver != desc + 16 * size or device != used:
            raise VirtioError(f"{self.name}: queue {index} rings at {desc:#x}/{driver:#x}/{device:#x} are not "
                              f"in the legacy layout (page-aligned table, avail after it, used {LEGACY_QUEUE_ALIGN}-"
                              "byte aligned after that)")
        if int(regs.QUEUE_PFN.read()):
            raise VirtioError(f"{self.name}: queue {index} is already set up; reset the device first")
        limit = int(regs.QUEUE_NUM_MAX.read())
        if not 0 < size <= limit:
            raise VirtioError(f"{self.name}: queue {index} size {size} outside 1..QueueNumMax {limit}")
        pfn = desc // LEGACY_PAGE_SIZE
        if pfn >> 32:
            raise VirtioError(f"{self.name}: queue {index} at {desc:#x} is beyond a 32-bit QueuePFN")
        regs.QUEUE_NUM.write(size)
        regs.QUEUE_ALIGN.write(LEGACY_QUEUE_ALIGN)
        regs.QUEUE_PFN.write(pfn)

    # --- queues -------------------------------------------------------------------------------------
    def queue_max(self, index: int) -> int:
        """QueueNumMax of queue `index` (0: the queue does not exist)."""
        self.regs.QUEUE_SEL.write(index)
        return int(self.regs.QUEUE_NUM_MAX.read())

    def setup_queue(self, index: int, size: int, desc: int, driver: int, device: int) -> None:
        """Program queue `index` with `size` entries at the given ring addresses and mark it ready.

        Legacy: the rings must be where the legacy layout puts them (avail right after the descriptors,
        used at the next LEGACY_QUEUE_ALIGN boundary, the table page aligned); QueuePFN enables the queue."""
        regs = self.regs
        regs.QUEUE_SEL.write(index)
        if self.legacy:
            self._setup_legacy_queue(index, size, desc, driver, device)
            return
        if int(regs.QUEUE_READY.read()) & 1:
            raise VirtioError(f"{self.name}: queue {index} is already ready; reset the device first")
        limit = int(regs.QUEUE_NUM_MAX.read())
        if not 0 < size <= limit:
            raise VirtioError(f"{self.name}: queue {index} size {size} outside 1..QueueNumMax {limit}")
        regs.QUEUE_NUM.write(size)
        regs.QUEUE_DESC_LOW.write(desc & 0xFFFF_FFFF)
        regs.QUEUE_DESC_HIGH.write(desc >> 32)
        regs.QUEUE_DRIVER_LOW.write(driver & 0xFFFF_FFFF)
        regs.QUEUE_DRIVER_HIGH.write(driver >> 32)
        regs.QUEUE_DEVICE_LOW.write(device & 0xFFFF_FFFF)
        regs.QUEUE_DEVICE_HIGH.write(device >> 32)
        regs.QUEUE_READY.write(READY=1)

    def notify(self, index: int) -> None:
        """Ring the doorbell of queue `index` (QueueNotify)."""
        self._notify_write(self._notify_offset, index)

    # --- interrupts ---------------------------------------------------------------------------------
    def interrupt_status(self) -> int:
        return int(self.regs.INTERRUPT_STATUS.read())

    def ack_interrupt(self, bits: int) -> None:
        if bits:
            self.regs.INTERRUPT_ACK.write(bits)

    # --- device configuration -----------------------------------------------------------------------
    def config_block(self, block: type[B]) -> B:
        """The device-specific configuration, declared as a RegisterBlock at offset 0 of the config space.

        Declare 64-bit fields as two 32-bit registers (§4.2.2.2) and read them inside `read_config`."""
        return block(self.window, offset=CONFIG_OFFSET)
