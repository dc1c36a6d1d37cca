"""The device behind a vhost-user back end: a virtio-mmio function the back end programs through its
registers, as a driver would (virtio 1.2, 4.2.2 and 4.2.3), with guest RAM attached for its DMA.

The vring messages become register writes: SET_VRING_NUM/ADDR → QueueNum and QueueDesc/Driver/Device
(the addresses translated to guest physical), the negotiated features → DriverFeatures and FEATURES_OK,
SET_VRING_ENABLE → QueueReady and DRIVER_OK, a kick → QueueNotify, and InterruptStatus bit 0 → the call
eventfd. The same sequence drives the behavioural model and the RTL.
"""

from __future__ import annotations

import abc

import numpy as np

from .messages import VhostUserError

# virtio-mmio register offsets (virtio 1.2, 4.2.2)
MAGIC, VERSION, DEVICE_ID = 0x000, 0x004, 0x008
DEVICE_FEATURES, DEVICE_FEATURES_SEL = 0x010, 0x014
DRIVER_FEATURES, DRIVER_FEATURES_SEL = 0x020, 0x024
QUEUE_SEL, QUEUE_NUM_MAX, QUEUE_NUM, QUEUE_READY, QUEUE_NOTIFY = 0x030, 0x034, 0x038, 0x044, 0x050
INTERRUPT_STATUS, INTERRUPT_ACK, STATUS = 0x060, 0x064, 0x070
QUEUE_DESC, QUEUE_DRIVER, QUEUE_DEVICE = 0x080, 0x090, 0x0A0
CONFIG = 0x100
MAGIC_VALUE = 0x74726976

S_ACKNOWLEDGE, S_DRIVER, S_DRIVER_OK, S_FEATURES_OK, S_NEEDS_RESET = 1, 2, 4, 8, 0x40
INT_USED, INT_CONFIG = 1, 2


class MmioTarget(abc.ABC):
    """A virtio-mmio device: 32-bit register access, its configuration space, guest RAM for its DMA."""

    name = "virtio-mmio target"

    @abc.abstractmethod
    def read32(self, offset: int) -> int: ...

    @abc.abstractmethod
    def write32(self, offset: int, value: int) -> None: ...

    @abc.abstractmethod
    def config(self) -> bytes:
        """The device-specific configuration space, as a driver reads it now."""

    def write_config(self, offset: int, data: bytes) -> None:
        """A driver's write to the configuration space (byte by byte)."""
        for i, byte in enumerate(data):
            self.write_byte(CONFIG + offset + i, byte)

    def write_byte(self, offset: int, value: int) -> None:
        raise VhostUserError(f"{self.name}: configuration writes are not supported")

    @abc.abstractmethod
    def attach(self, ram: np.ndarray, base: int) -> None:
        """Serve the device's DMA from `ram`, whose index 0 is guest physical address `base`."""

    def detach(self) -> None:
        """Take guest RAM away again (before it is unmapped)."""

    @abc.abstractmethod
    def irq_line(self) -> bool:
        """The interrupt line's level (cheap: no register access)."""

    def advance(self) -> None:
        """Let the device work for a while (simulated time for the RTL; a model works synchronously)."""

    # --- the driver-side sequences --------------------------------------------------------------------
    def check_identity(self, device_id: int) -> None:
        magic, version, found = self.read32(MAGIC), self.read32(VERSION), self.read32(DEVICE_ID)
        if magic != MAGIC_VALUE or version != 2 or found != device_id:
            raise VhostUserError(f"{self.name}: MagicValue {magic:#x}, Version {version}, DeviceID {found}: "
                                 f"not a modern virtio-mmio device of id {device_id}")

    def device_features(self) -> int:
        features = 0
        for sel in (0, 1):
            self.write32(DEVICE_FEATURES_SEL, sel)
            features |= self.read32(DEVICE_FEATURES) << (32 * sel)
        return features

    def queue_num_max(self) -> int:
        self.write32(QUEUE_SEL, 0)
        return self.read32(QUEUE_NUM_MAX)

    def resume_at(self, base: int) -> None:
        """Start the running queue at avail/used index `base` (SET_VRING_BASE after a reconnect). A virtio-mmio
        queue always starts at 0 (4.2.2), so only a device that can be told otherwise overrides this."""
        if base:
            raise VhostUserError(f"{self.name}: SET_VRING_BASE {base}: a virtio-mmio queue starts at index 0")

    def start(self, features: int, num: int, desc: int, avail: int, used: int, base: int = 0) -> None:
        """Reset, negotiate `features`, set up queue 0 (at ring index `base`) and set DRIVER_OK; VhostUserError
        naming the step the device refused."""
        self.write32(STATUS, 0)
        self.write32(STATUS, S_ACKNOWLEDGE)
        self.write32(STATUS, S_ACKNOWLEDGE | S_DRIVER)
        for sel in (0, 1):
            self.write32(DRIVER_FEATURES_SEL, sel)
            self.write32(DRIVER_FEATURES, features >> (32 * sel) & 0xFFFFFFFF)
        self.write32(STATUS, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK)
        if not self.read32(STATUS) & S_FEATURES_OK:
            raise VhostUserError(f"{self.name}: FEATURES_OK refused for features {features:#x}")
        self.write32(QUEUE_SEL, 0)
        self.write32(QUEUE_NUM, num)
        for reg, addr in ((QUEUE_DESC, desc), (QUEUE_DRIVER, avail), (QUEUE_DEVICE, used)):
            self.write32(reg, addr & 0xFFFFFFFF)
            self.write32(reg + 4, addr >> 32)
        self.write32(QUEUE_READY, 1)
        if self.read32(QUEUE_READY) != 1:
            raise VhostUserError(f"{self.name}: QueueReady refused (QueueNum {num}, descriptors {desc:#x}, "
                                 f"avail {avail:#x}, used {used:#x})")
        self.resume_at(base)
        self.write32(STATUS, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK)

    def stop(self) -> None:
        self.write32(STATUS, 0)

    def notify(self) -> None:
        self.write32(QUEUE_NOTIFY, 0)

    def take_interrupt(self) -> int:
        """InterruptStatus, acknowledged (0 if the line is low)."""
        if not self.irq_line():
            return 0
        bits = self.read32(INTERRUPT_STATUS)
        if bits:
            self.write32(INTERRUPT_ACK, bits)
        return bits

    def needs_reset(self) -> bool:
        return bool(self.read32(STATUS) & S_NEEDS_RESET)
