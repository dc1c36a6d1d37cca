"""The virtio-pci modern transport (virtio 1.2 §4.1): virtio structures found through PCI capabilities.

A modern virtio-pci function (vendor 0x1af4, device 0x1040 + virtio device ID) describes where its virtio
structures live with vendor-specific capabilities (ID 0x09) in config space, each a `struct virtio_pci_cap`:
{u8 cap_vndr, cap_next, cap_len, cfg_type, bar, id, pad[2]; le32 offset, length} (16 bytes; the notify one
adds le32 notify_off_multiplier). The driver uses the first usable one of each type (§4.1.4):
COMMON_CFG (the control registers: features, status, queues), NOTIFY_CFG (doorbells: queue q's is at
cap.offset + queue_notify_off(q) * notify_off_multiplier, a 16-bit write of q), ISR_CFG (one byte, read to
clear; bit 0 used buffer, bit 1 config change; reading it also deasserts INTx) and DEVICE_CFG (the
device-specific config). Capabilities with a reserved cfg_type or BAR number are ignored, as the spec asks;
one that names an unimplemented BAR is skipped (as Linux does) and named if nothing usable is left. A
structure that does not fit its BAR, is misaligned or too short is an error naming the capability and its
offset in config space. Fields are accessed with their natural width, 64-bit ones as two 32-bit halves
(§4.1.3.1). Offsets: Linux include/uapi/linux/virtio_pci.h. Interrupts: one MSI-X vector for everything when
the bus offers MSI-X, else INTx (`from_device`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mmiotk import MmioBuffer
from mmiotk.bus import NoResourceError
from mmiotk.policy import CachePolicy
from mmiotk.registers import RO, Field, Register, RegisterBlock, RegisterHandle

from ..bus.pci import PciDevice
from ..bus.pci_config import PCI_CAP_ID_VNDR, PciConfig
from . import VirtioError
from .transport import B, VirtioTransport

VIRTIO_PCI_VENDOR_ID = 0x1AF4
VIRTIO_PCI_MODERN_DEVICE_ID_BASE = 0x1040   # modern device ID = 0x1040 + virtio device ID (§4.1.2.1)
VIRTIO_PCI_TRANSITIONAL_ID_FIRST = 0x1000   # 0x1000..0x103f: the virtio ID is the subsystem device ID
PCI_SUBSYSTEM_ID = 0x2E


class CfgType:
    """virtio_pci_cap.cfg_type (§4.1.4)."""

    COMMON = 1
    NOTIFY = 2
    ISR = 3
    DEVICE = 4
    PCI = 5
    SHARED_MEMORY = 8
    VENDOR = 9


CFG_NAMES = {CfgType.COMMON: "COMMON_CFG", CfgType.NOTIFY: "NOTIFY_CFG", CfgType.ISR: "ISR_CFG",
             CfgType.DEVICE: "DEVICE_CFG", CfgType.PCI: "PCI_CFG", CfgType.SHARED_MEMORY: "SHARED_MEMORY_CFG",
             CfgType.VENDOR: "VENDOR_CFG"}

# struct virtio_pci_cap, offsets in the capability
VIRTIO_PCI_CAP_LEN = 2
VIRTIO_PCI_CAP_CFG_TYPE = 3
VIRTIO_PCI_CAP_BAR = 4
VIRTIO_PCI_CAP_ID = 5
VIRTIO_PCI_CAP_OFFSET = 8
VIRTIO_PCI_CAP_LENGTH = 12
VIRTIO_PCI_NOTIFY_CAP_MULT = 16
VIRTIO_PCI_CAP_SIZEOF = 16
VIRTIO_PCI_NOTIFY_CAP_SIZEOF = 20
MAX_BAR = 5
VIRTIO_MSI_NO_VECTOR = 0xFFFF


class VirtioPciCommonCfg(RegisterBlock, name="virtio-pci common cfg"):
    """struct virtio_pci_common_cfg (§4.1.4.3), natural widths; the 64-bit ring addresses as 32-bit halves."""

    DEVICE_FEATURE_SELECT = Register(0x00)
    DEVICE_FEATURE = Register(0x04, access=RO)
    DRIVER_FEATURE_SELECT = Register(0x08)
    DRIVER_FEATURE = Register(0x0C)
    CONFIG_MSIX_VECTOR = Register(0x10, width=16)
    NUM_QUEUES = Register(0x12, width=16, access=RO)
    DEVICE_STATUS = Register(0x14, width=8)
    CONFIG_GENERATION = Register(0x15, width=8, access=RO)
    QUEUE_SELECT = Register(0x16, width=16)
    QUEUE_SIZE = Register(0x18, width=16)
    QUEUE_MSIX_VECTOR = Register(0x1A, width=16)
    QUEUE_ENABLE = Register(0x1C, width=16, fields=[Field("ENABLE", 0)])
    QUEUE_NOTIFY_OFF = Register(0x1E, width=16, access=RO)
    QUEUE_DESC_LO = Register(0x20)
    QUEUE_DESC_HI = Register(0x24)
    QUEUE_DRIVER_LO = Register(0x28)
    QUEUE_DRIVER_HI = Register(0x2C)
    QUEUE_DEVICE_LO = Register(0x30)
    QUEUE_DEVICE_HI = Register(0x34)


COMMON_CFG_SIZE = 0x38  # the virtio 1.0 structure; 1.2's queue_notify_data/queue_reset are not used
ALIGN = {CfgType.COMMON: 4, CfgType.NOTIFY: 2, CfgType.ISR: 1, CfgType.DEVICE: 4}   # §4.1.4.3-6
MIN_LENGTH = {CfgType.COMMON: COMMON_CFG_SIZE, CfgType.NOTIFY: 2, CfgType.ISR: 1, CfgType.DEVICE: 1}


@dataclass(frozen=True)
class VirtioPciCap:
    """One virtio structure: `length` bytes at `offset` in BAR `bar`; `at` is the capability's config offset."""

    cfg_type: int
    bar: int
    offset: int
    length: int
    at: int
    id: int = 0
    notify_off_multiplier: int = 0

    @property
    def label(self) -> str:
        return f"{CFG_NAMES.get(self.cfg_type, f'cfg_type {self.cfg_type}')} capability at {self.at:#x}"


def virtio_device_id(config: PciConfig) -> int | None:
    """The virtio device ID of a virtio-pci function, or None if it is not one (§4.1.2)."""
    if config.vendor_id != VIRTIO_PCI_VENDOR_ID:
        return None
    pci_id = config.device_id
    if VIRTIO_PCI_MODERN_DEVICE_ID_BASE <= pci_id <= 0x107F:
        return pci_id - VIRTIO_PCI_MODERN_DEVICE_ID_BASE
    if VIRTIO_PCI_TRANSITIONAL_ID_FIRST <= pci_id < VIRTIO_PCI_MODERN_DEVICE_ID_BASE:
        return config.read16(PCI_SUBSYSTEM_ID)
    return None


def find_virtio_caps(config: PciConfig, bar_sizes: Mapping[int, int]) -> dict[int, VirtioPciCap]:
    """The first usable capability of each virtio cfg_type, checked against the BARs (`bar_sizes`:
    BAR number -> size of the memory BARs the function has)."""
    chosen: dict[int, VirtioPciCap] = {}
    skipped: dict[int, str] = {}
    for cap in config.find_capabilities(PCI_CAP_ID_VNDR):
        at = cap.offset
        cap_len = config.read8(at + VIRTIO_PCI_CAP_LEN)
        cfg_type = config.read8(at + VIRTIO_PCI_CAP_CFG_TYPE)
        if cfg_type not in CFG_NAMES:
            continue  # reserved cfg_type: ignore (§4.1.4.1)
        name = f"{CFG_NAMES[cfg_type]} capability at {at:#x}"
        need = VIRTIO_PCI_NOTIFY_CAP_SIZEOF if cfg_type == CfgType.NOTIFY else VIRTIO_PCI_CAP_SIZEOF
        if cap_len < need:
            raise VirtioError(f"{config.name}: {name}: cap_len {cap_len} is shorter than the {need} bytes of "
                              f"struct virtio_pci_{'notify_' if cfg_type == CfgType.NOTIFY else ''}cap")
        if at + need > 0x100:
            raise VirtioError(f"{config.name}: {name}: {need} bytes run past the end of config space")
        bar = config.read8(at + VIRTIO_PCI_CAP_BAR)
        if cfg_type in chosen or cfg_type not in ALIGN:
            continue  # a later instance, or a structure this driver does not use
        if bar > MAX_BAR:
            continue  # reserved BAR value: ignore (§4.1.4.1)
        if bar not in bar_sizes:
            skipped.setdefault(cfg_type, f"the {name} names BAR {bar}, which this function does not implement "
                                         "as a memory BAR")
            continue
        offset = config.read32(at + VIRTIO_PCI_CAP_OFFSET)
        length = config.read32(at + VIRTIO_PCI_CAP_LENGTH)
        mult = config.read32(at + VIRTIO_PCI_NOTIFY_CAP_MULT) if cfg_type == CfgType.NOTIFY else 0
        found = VirtioPciCap(cfg_type, bar, offset, length, at, config.read8(at + VIRTIO_PCI_CAP_ID), mult)
        _check_cap(config.name, found, bar_sizes[bar])
        chosen[cfg_type] = found
    for cfg_type in (CfgType.COMMON, CfgType.NOTIFY, CfgType.ISR):
        if cfg_type not in chosen:
            why = skipped.get(cfg_type, "there is none in the capabilities list")
            raise VirtioError(f"{config.name}: no usable {CFG_NAMES[cfg_type]} capability: {why}")
    return chosen


def _check_cap(where: str, cap: VirtioPciCap, bar_size: int) -> None:
    label = f"{where}: {cap.label}"
    if cap.offset % ALIGN[cap.cfg_type]:
        raise VirtioError(f"{label}: offset {cap.offset:#x} is not {ALIGN[cap.cfg_type]}-byte aligned")
    if cap.length < MIN_LENGTH[cap.cfg_type]:
        raise VirtioError(f"{label}: length {cap.length:#x} is less than the {MIN_LENGTH[cap.cfg_type]:#x} "
                          "bytes of the structure")
    if cap.offset + cap.length > bar_size:
        raise VirtioError(f"{label}: [{cap.offset:#x}, {cap.offset + cap.length:#x}) does not fit in BAR "
                          f"{cap.bar} ({bar_size:#x} bytes)")
    mult = cap.notify_off_multiplier
    if cap.cfg_type == CfgType.NOTIFY and mult & (mult - 1):
        raise VirtioError(f"{label}: notify_off_multiplier {mult} is neither 0 nor a power of 2")


class VirtioPci(VirtioTransport):
    """One modern virtio-pci function: its config space and its mapped memory BARs (BAR number -> buffer)."""

    status_register = "device_status"
    generation_register = "config_generation"

    def __init__(self, config: PciConfig, bars: Mapping[int, MmioBuffer], *, reset_timeout: float = 1.0) -> None:
        super().__init__()
        self.config = config
        self.name = config.name.removesuffix(" config")
        self.reset_timeout = reset_timeout
        device_id = virtio_device_id(config)
        if device_id is None:
            raise VirtioError(f"{self.name}: PCI {config.vendor_id:04x}:{config.device_id:04x} is not a virtio "
                              f"device (vendor {VIRTIO_PCI_VENDOR_ID:#06x}, device 0x1000-0x107f)")
        self.device_id = device_id
        self.vendor_id = config.vendor_id
        self.caps = caps = find_virtio_caps(config, {i: buf.size for i, buf in bars.items()})
        self.bars = bars
        common = caps[CfgType.COMMON]
        self.common = VirtioPciCommonCfg(bars[common.bar], offset=common.offset)
        self._notify_cap = notify = caps[CfgType.NOTIFY]
        self._notify_buffer = bars[notify.bar]
        self._notify: dict[int, tuple[int, int]] = {}   # queue -> (BAR offset of its doorbell, value)
        isr = caps[CfgType.ISR]
        self._isr_read, self._isr_offset = bars[isr.bar].read8, isr.offset
        self._notify_write = self._notify_buffer.write16
        self.msix_vector: int | None = None  # the MSI-X vector of config changes and every queue; None: INTx

    def __repr__(self) -> str:
        return f"<VirtioPci {self.name} device {self.device_id}>"

    @classmethod
    def from_device(cls, device: PciDevice, *, msix: bool = True, reset_timeout: float = 1.0) -> VirtioPci:
        """The transport of a PCI function a bus handed to a driver: its config space and every memory BAR
        mapped uncached, bus mastering on (the device DMAs its rings and MSI writes), and one MSI-X vector
        for config changes and all queues when the bus and the function offer MSI-X (then `device.irq(0)` is
        that vector), INTx otherwise, as Linux's virtio_pci falls back."""
        config = device.config()
        bars = {index: device.mmio(index).map(CachePolicy.UNCACHED_DEVICE) for index in device.mmio_ranges}
        transport = cls(config, bars, reset_timeout=reset_timeout)
        config.set_master()
        if msix:
            try:
                device.enable_msix(1)
            except NoResourceError:
                pass  # no MSI controller on the bus, or no MSI-X capability: INTx
            else:
                transport.msix_vector = 0
        return transport

    # --- primitives (VirtioTransport) ---------------------------------------------------------------
    def _read_status(self) -> int:
        return int(self.common.DEVICE_STATUS.read())

    def _write_status(self, value: int) -> None:
        self.common.DEVICE_STATUS.write(value)

    def _read_device_features(self, select: int) -> int:
        self.common.DEVICE_FEATURE_SELECT.write(select)
        return int(self.common.DEVICE_FEATURE.read())

    def _write_driver_features(self, select: int, value: int) -> None:
        self.common.DRIVER_FEATURE_SELECT.write(select)
        self.common.DRIVER_FEATURE.write(value)

    def config_generation(self) -> int:
        return int(self.common.CONFIG_GENERATION.read())

    # --- queues (§4.1.5.1.3) ------------------------------------------------------------------------
    @property
    def num_queues(self) -> int:
        return int(self.common.NUM_QUEUES.read())

    def queue_max(self, index: int) -> int:
        """queue_size of queue `index` as the device presents it after reset (0: no such queue)."""
        if not 0 <= index < self.num_queues:
            return 0
        self.common.QUEUE_SELECT.write(index)
        return int(self.common.QUEUE_SIZE.read())

    def notify_offset(self, index: int) -> int:
        """BAR offset of queue `index`'s doorbell: cap.offset + queue_notify_off * notify_off_multiplier,
        checked to leave room for the 16-bit write inside the notify structure (§4.1.4.4)."""
        cap = self._notify_cap
        self.common.QUEUE_SELECT.write(index)
        queue_off = int(self.common.QUEUE_NOTIFY_OFF.read())
        within = queue_off * cap.notify_off_multiplier
        if within + 2 > cap.length:
            raise VirtioError(f"{self.name}: queue {index}: queue_notify_off {queue_off} * notify_off_multiplier "
                              f"{cap.notify_off_multiplier} = {within:#x} leaves no 2-byte doorbell inside the "
                              f"{cap.label} (length {cap.length:#x})")
        return cap.offset + within

    def setup_queue(self, index: int, size: int, desc: int, driver: int, device: int) -> None:
        common = self.common
        limit = self.queue_max(index)
        if limit == 0:
            raise VirtioError(f"{self.name}: queue {index} does not exist (num_queues {self.num_queues})")
        if int(common.QUEUE_ENABLE.read()) & 1:
            raise VirtioError(f"{self.name}: queue {index} is already enabled; reset the device first")
        if not 0 < size <= limit:
            raise VirtioError(f"{self.name}: queue {index} size {size} outside 1..queue_size {limit}")
        doorbell = self.notify_offset(index)
        common.QUEUE_SELECT.write(index)
        common.QUEUE_SIZE.write(size)
        common.QUEUE_DESC_LO.write(desc & 0xFFFF_FFFF)
        common.QUEUE_DESC_HI.write(desc >> 32)
        common.QUEUE_DRIVER_LO.write(driver & 0xFFFF_FFFF)
        common.QUEUE_DRIVER_HI.write(driver >> 32)
        common.QUEUE_DEVICE_LO.write(device & 0xFFFF_FFFF)
        common.QUEUE_DEVICE_HI.write(device >> 32)
        if self.msix_vector is not None:
            self._set_vector(common.CONFIG_MSIX_VECTOR, "config_msix_vector")
            self._set_vector(common.QUEUE_MSIX_VECTOR, f"queue {index}'s queue_msix_vector")
        common.QUEUE_ENABLE.write(ENABLE=1)
        self._notify[index] = (doorbell, index)

    def _set_vector(self, register: RegisterHandle, what: str) -> None:
        """Map an event to the MSI-X vector; the device reads back NO_VECTOR when it refuses (§4.1.5.1.2)."""
        register.write(self.msix_vector)
        got = int(register.read())
        if got != self.msix_vector:
            raise VirtioError(f"{self.name}: {what} reads back {got:#x} after writing MSI-X vector "
                              f"{self.msix_vector}: the device refused it")

    def notify(self, index: int) -> None:
        """A 16-bit write of the queue index to its doorbell (no VIRTIO_F_NOTIFICATION_DATA)."""
        offset, value = self._notify[index]
        self._notify_write(offset, value)

    # --- interrupts ---------------------------------------------------------------------------------
    def interrupt_status(self) -> int:
        """Read the ISR byte: the read clears it and deasserts INTx (§4.1.4.5), so there is nothing to ack.
        (With MSI-X the device does not use it; the driver still may read it.)"""
        return self._isr_read(self._isr_offset)

    def ack_interrupt(self, bits: int) -> None:
        """Nothing: reading the ISR status acknowledged it."""

    # --- device configuration -----------------------------------------------------------------------
    def config_block(self, block: type[B]) -> B:
        cap = self.caps.get(CfgType.DEVICE)
        if cap is None:
            raise VirtioError(f"{self.name}: the device has no DEVICE_CFG capability, so no {block.__name__}")
        return block(self.bars[cap.bar], offset=cap.offset)
