"""The virtio-mmio transport of a device model (virtio 1.2, 4.2.2; with `legacy=True` the legacy interface
of 4.2.4, Version 1): register file, status and feature negotiation, interrupt status, configuration space
access rules. Its one split virtqueue is set up and processed by `virtio_mmio_queue.QueueHandling` (a base
of `VirtioMmioDevice`); the register layout and bits are in `virtio_mmio_regs`.

A device (`VirtioBlkModel`) subclasses `VirtioMmioDevice` and supplies its ID, features, configuration
layout and the handling of one request chain. The behaviour in every case is listed in
`hwsim.models.virtio_blk`'s docstring, the reference for the RTL.
"""

from __future__ import annotations

import struct
import threading
from typing import ClassVar

from mmiotk.errors import AccessError, MmioValueError

from .guest_memory import GuestMemory
from .virtio_mmio_queue import QueueHandling
from .virtio_mmio_regs import (
    CONFIG_OFFSET,
    DEVICE_NEEDS_RESET,
    DRIVER_OK,
    F_VERSION_1,
    FEATURES_OK,
    INT_CONFIG,
    LEGACY_REGISTERS,
    MAGIC,
    REGISTERS,
    VENDOR_ID,
)
from .virtqueue import QueueFatal, Segment, SplitQueue

_QUEUE_ADDR = {0x080: ("desc", 0), 0x084: ("desc", 32), 0x090: ("avail", 0), 0x094: ("avail", 32),
               0x0A0: ("used", 0), 0x0A4: ("used", 32)}


class ConfigField:
    """One field of the device-specific configuration space."""

    def __init__(self, name: str, offset: int, width: int, writable: bool = False) -> None:
        self.name, self.offset, self.width, self.writable = name, offset, width, writable


class VirtioMmioDevice(QueueHandling):
    """The transport. Thread-safe: register accesses and processing hold `lock`; `irq_changed` (a
    Condition on it) is notified whenever InterruptStatus changes, for interrupt lines to wait on.
    """

    device_id: ClassVar[int] = 0
    config_layout: ClassVar[tuple[ConfigField, ...]] = ()

    def __init__(self, *, queue_size_max: int = 256, strict: bool = True, deferred: bool = False,
                 legacy: bool = False, name: str = "virtio-mmio") -> None:
        if not isinstance(queue_size_max, int) or not 1 <= queue_size_max <= 32768 or \
                queue_size_max & (queue_size_max - 1):
            raise MmioValueError(f"queue_size_max must be a power of two in 1..32768, got {queue_size_max!r}")
        self.name = name
        self.queue_size_max = queue_size_max
        self.strict = strict
        self.deferred = deferred
        self.legacy = legacy
        self._registers = LEGACY_REGISTERS if legacy else REGISTERS
        self.lock = threading.RLock()
        self.irq_changed = threading.Condition(self.lock)
        self.memory: GuestMemory | None = None
        self.config_generation = 0
        self.irq_rises = 0                       # times the line went from low to high
        self._fields = {f.offset: f for f in self.config_layout}
        self._config_size = max((f.offset + f.width for f in self.config_layout), default=0)
        self._reset_state()

    # --- hooks for the device ------------------------------------------------------------------------
    def offered_features(self) -> int:
        return 1 << F_VERSION_1

    def config_bytes(self) -> bytes:
        """The configuration space as the driver reads it now."""
        return bytes(self._config_size)

    def config_store(self, field: ConfigField, value: int) -> None:
        """A driver write to a writable field."""

    def handle(self, segments: list[Segment]) -> int:
        """Perform one request chain; the number of bytes written into it. May raise QueueFatal."""
        raise QueueFatal("this device handles no requests")

    def on_reset(self) -> None:
        """Device-specific state back to its power-on values."""

    def on_features_ok(self) -> None:
        """Called once the negotiated features are fixed."""

    def shutdown(self) -> None:
        """An orderly power-down (what ModelSpace.close does): whatever the device must save, it saves."""

    # --- state ---------------------------------------------------------------------------------------
    def attach(self, memory: GuestMemory) -> None:
        """Give the device its view of guest RAM (done by ModelSpace)."""
        self.memory = memory

    def _reset_state(self) -> None:
        self.status = 0
        self.features = 0                    # negotiated, fixed at FEATURES_OK
        self.driver_features: dict[int, int] = {}
        self.device_features_sel = 0
        self.driver_features_sel = 0
        self.queue_sel = 0
        self.queue_num = self.queue_size_max
        self.queue_addr = {"desc": 0, "avail": 0, "used": 0}
        self.queue: SplitQueue | None = None
        self.interrupt_status = 0
        self.last_error: str | None = None
        self.notify_pending = False
        self.shm_sel = 0
        self.guest_page_size = 4096              # legacy only
        self.queue_align = 4096
        self.queue_pfn = 0

    def reset(self) -> None:
        """What writing 0 to Status does."""
        with self.lock:
            self._reset_state()
            self.on_reset()
            self.irq_changed.notify_all()

    @property
    def irq_level(self) -> int:
        return 1 if self.interrupt_status else 0

    def device_features(self) -> int:
        """What DeviceFeatures shows: the device's features; legacy devices have 32 bits and no VERSION_1."""
        return self.offered_features() & 0xFFFFFFFF if self.legacy else self.offered_features()

    def has_feature(self, bit: int) -> bool:
        return bool(self.features >> bit & 1)

    def _raise(self, bits: int) -> None:
        if not self.interrupt_status:
            self.irq_rises += 1
        self.interrupt_status |= bits
        self.irq_changed.notify_all()

    def needs_reset(self, reason: str) -> None:
        """Enter the error state: DEVICE_NEEDS_RESET, and a configuration change interrupt if DRIVER_OK."""
        with self.lock:
            self.last_error = reason
            self.status |= DEVICE_NEEDS_RESET
            if self.status & DRIVER_OK:
                self._raise(INT_CONFIG)

    # --- register access -----------------------------------------------------------------------------
    def _misuse(self, message: str) -> None:
        if self.strict:
            raise AccessError(f"{self.name}: {message}")

    def _control_reg(self, offset: int, width: int, op: str) -> str | None:
        """The register's name if the access is allowed; None (after raising when strict) otherwise."""
        reg = self._registers.get(offset)
        if reg is None:
            self._misuse(f"{op} of undefined register offset {offset:#x}")
            return None
        name, direction = reg
        if width != 4:
            self._misuse(f"{width * 8}-bit {op} of {name} (offset {offset:#x}); control registers take "
                         "only 32-bit accesses")
            return None
        if (op == "read" and "r" not in direction) or (op == "write" and "w" not in direction):
            kind = "write-only" if op == "read" else "read-only"
            self._misuse(f"{op} of {kind} register {name} (offset {offset:#x})")
            return None
        return name

    def read(self, offset: int, width: int) -> int:
        with self.lock:
            if offset >= CONFIG_OFFSET:
                return self._config_read(offset - CONFIG_OFFSET, width)
            name = self._control_reg(offset, width, "read")
            return 0 if name is None else self._read_reg(name)

    def _read_reg(self, name: str) -> int:
        if name == "MagicValue":
            return MAGIC
        if name == "Version":
            return 1 if self.legacy else 2
        if name == "DeviceID":
            return self.device_id
        if name == "VendorID":
            return VENDOR_ID
        if name == "DeviceFeatures":
            return (self.device_features() >> (32 * self.device_features_sel)) & 0xFFFFFFFF \
                if self.device_features_sel < 2 else 0
        if name == "QueueNumMax":
            return self.queue_size_max if self.queue_sel == 0 else 0
        if name == "QueueReady":
            return 1 if self.queue_sel == 0 and self.queue is not None else 0
        if name == "InterruptStatus":
            if self.deferred and self.notify_pending:
                self.run_queue()
            return self.interrupt_status
        if name == "Status":
            return self.status
        if name in ("SHMLenLow", "SHMLenHigh", "SHMBaseLow", "SHMBaseHigh"):
            return 0xFFFFFFFF                # no shared memory regions
        if name == "ConfigGeneration":
            return self.config_generation
        if name == "QueuePFN":
            return self.queue_pfn if self.queue_sel == 0 else 0
        return 0                             # QueueReset: VIRTIO_F_RING_RESET is not offered

    def write(self, offset: int, width: int, value: int) -> None:
        if type(value) is not int:  # a float or numpy value would be stored as is (QueueSel=16.0)
            if isinstance(value, bool) or not hasattr(value, "__index__"):
                raise MmioValueError(f"{self.name}: write of {value!r} ({type(value).__name__}) at offset "
                                     f"{offset:#x}: register values are integers")
            value = value.__index__()
        if not 0 <= value < 1 << (8 * width):
            raise MmioValueError(f"{self.name}: write of {value:#x} at offset {offset:#x} does not fit "
                                 f"{width} bytes")
        with self.lock:
            if offset >= CONFIG_OFFSET:
                self._config_write(offset - CONFIG_OFFSET, width, value)
                return
            name = self._control_reg(offset, width, "write")
            if name is not None:
                self._write_reg(offset, name, value)

    def _write_reg(self, offset: int, name: str, value: int) -> None:
        if name == "DeviceFeaturesSel":
            self.device_features_sel = value
        elif name == "DriverFeaturesSel":
            self.driver_features_sel = value
        elif name == "DriverFeatures":
            if self.legacy:                          # no FEATURES_OK: in effect as written, until DRIVER_OK
                if self.driver_features_sel == 0 and not self.status & DRIVER_OK:
                    self.features = value & self.device_features()
            elif not self.status & FEATURES_OK:      # fixed once FEATURES_OK is set
                self.driver_features[self.driver_features_sel] = value
        elif name == "QueueSel":
            self.queue_sel = value
        elif name == "QueueNum":
            if self.queue_sel == 0 and self.queue is None:
                self.queue_num = value
        elif offset in _QUEUE_ADDR:
            if self.queue_sel == 0 and self.queue is None:
                area, shift = _QUEUE_ADDR[offset]
                keep = 0xFFFFFFFF << (32 - shift)
                self.queue_addr[area] = (self.queue_addr[area] & keep) | (value << shift)
        elif name == "QueueReady":
            if self.queue_sel == 0:
                self._set_queue_ready(value)
        elif name == "QueueNotify":
            self._notify(value)
        elif name == "InterruptACK":
            self.interrupt_status &= ~value
            self.irq_changed.notify_all()
        elif name == "Status":
            self._write_status(value)
        elif name == "SHMSel":
            self.shm_sel = value
        elif name == "GuestPageSize":
            self.guest_page_size = value
        elif name == "QueueAlign":
            if self.queue_sel == 0 and self.queue is None:
                self.queue_align = value
        elif name == "QueuePFN" and self.queue_sel == 0:
            self._set_queue_pfn(value)
        # QueueReset: ignored, VIRTIO_F_RING_RESET is not offered

    def _write_status(self, value: int) -> None:
        if value == 0:
            self.reset()
            return
        if value > 0xFF:
            self._misuse(f"Status write {value:#x} sets bits above the 8 status bits")
            value &= 0xFF
        new = self.status | (value & ~DEVICE_NEEDS_RESET)     # bits are never cleared except by reset
        if self.legacy:
            # no FEATURES_OK in the legacy interface: the features are fixed when DRIVER_OK is set
            new &= ~FEATURES_OK
            if new & DRIVER_OK and not self.status & DRIVER_OK:
                self.status = new
                self.on_features_ok()
            self.status = new
            return
        newly_ok = bool(new & FEATURES_OK and not self.status & FEATURES_OK)
        if newly_ok:
            accepted = sum(word << (32 * sel) for sel, word in self.driver_features.items())
            unknown = accepted & ~self.offered_features()
            if unknown or not accepted >> F_VERSION_1 & 1:
                new &= ~FEATURES_OK                            # refused: FEATURES_OK reads back clear
                newly_ok = False
                self.last_error = (f"features {accepted:#x} refused: "
                                   + (f"unoffered bits {unknown:#x}" if unknown else "VERSION_1 not accepted"))
            else:
                self.features = accepted
        self.status = new
        if newly_ok:
            self.on_features_ok()
        if new & DRIVER_OK and not new & FEATURES_OK:
            self.needs_reset("DRIVER_OK was set before FEATURES_OK")

    # --- configuration space -------------------------------------------------------------------------
    def _config_field(self, rel: int, width: int, op: str) -> ConfigField | None:
        """The field an access addresses, checking the spec's width rules (strict only)."""
        if rel + width > self._config_size:
            self._misuse(f"config {op} at +{rel:#x} ({width * 8}-bit) is beyond the {self._config_size:#x}-byte "
                         "configuration space")
            return None
        start = max((off for off in self._fields if off <= rel), default=None)
        field = self._fields.get(start) if start is not None else None
        if field is None or rel + width > field.offset + field.width:
            self._misuse(f"config {op} at +{rel:#x} ({width * 8}-bit) spans more than one field")
            return field
        expected = 4 if field.width == 8 else field.width
        if width != expected or (rel - field.offset) % expected:
            self._misuse(f"{width * 8}-bit config {op} at +{rel:#x} of {field.name} ({field.width * 8}-bit "
                         f"field): use {expected * 8}-bit accesses")
        return field

    def _config_read(self, rel: int, width: int) -> int:
        self._config_field(rel, width, "read")
        data = self.config_bytes()
        return int.from_bytes(data[rel:rel + width].ljust(width, b"\0"), "little")

    def _config_write(self, rel: int, width: int, value: int) -> None:
        field = self._config_field(rel, width, "write")
        if field is None:
            return
        if not field.writable or not self.config_writable(field):
            self._misuse(f"write to read-only config field {field.name} (+{rel:#x})")
            return
        if rel == field.offset and width == field.width:     # a partial write (lenient only) is dropped
            self.config_store(field, value)

    def config_writable(self, field: ConfigField) -> bool:
        return field.writable


def pack_config(layout: tuple[ConfigField, ...], values: dict[str, int]) -> bytes:
    """Lay out `values` by field name (missing fields are 0), little-endian."""
    size = max(f.offset + f.width for f in layout)
    out = bytearray(size)
    fmt = {1: "<B", 2: "<H", 4: "<I", 8: "<Q"}
    for field in layout:
        struct.pack_into(fmt[field.width], out, field.offset, values.get(field.name, 0))
    return bytes(out)
