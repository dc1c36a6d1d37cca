"""What a virtio driver needs from a transport (virtio 1.2 §4), and the steps every transport shares.

A transport (virtio-mmio §4.2, virtio-pci §4.1) gives the driver: the device status byte, the 64 feature bits
read and written 32 at a time, per-queue size and ring addresses, a doorbell per queue, the interrupt status,
and the device-specific configuration with its generation counter. `VirtioTransport` builds the generic
part of §3.1.1 on those primitives: reset and wait for 0, feature negotiation closed by the FEATURES_OK check,
DRIVER_OK, consistent config reads (§2.5.1). `VirtioDevice` and `Virtqueue` use only what is declared here,
so one device driver runs over either transport.
"""

from __future__ import annotations

import contextlib
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TypeVar

from mmiotk.registers import RegisterBlock

from . import VirtioError

T = TypeVar("T")
B = TypeVar("B", bound=RegisterBlock)


class Status:
    """Device status bits (§2.1)."""

    ACKNOWLEDGE = 0x01
    DRIVER = 0x02
    DRIVER_OK = 0x04
    FEATURES_OK = 0x08
    DEVICE_NEEDS_RESET = 0x40
    FAILED = 0x80


class Feature:
    """Transport feature bits (§6), as bit numbers."""

    RING_INDIRECT_DESC = 28
    RING_EVENT_IDX = 29
    VERSION_1 = 32
    ACCESS_PLATFORM = 33
    RING_PACKED = 34


def bit(n: int) -> int:
    return 1 << n


class VirtioTransport(ABC):
    """One virtio device behind some transport. Subclasses supply the primitives (abstract methods)."""

    name: str
    device_id: int
    vendor_id: int
    reset_timeout: float
    status_register = "device status"          # the transport's names, for messages
    generation_register = "config generation"

    def __init__(self) -> None:
        self.features = 0  # negotiated

    # --- primitives ---------------------------------------------------------------------------------
    @abstractmethod
    def _read_status(self) -> int: ...

    @abstractmethod
    def _write_status(self, value: int) -> None: ...

    @abstractmethod
    def _read_device_features(self, select: int) -> int:
        """Device feature bits [32 * select, 32 * select + 32)."""

    @abstractmethod
    def _write_driver_features(self, select: int, value: int) -> None:
        """Driver feature bits [32 * select, 32 * select + 32)."""

    @abstractmethod
    def config_generation(self) -> int: ...

    @abstractmethod
    def queue_max(self, index: int) -> int:
        """The largest size queue `index` may have (0: the queue does not exist)."""

    @abstractmethod
    def setup_queue(self, index: int, size: int, desc: int, driver: int, device: int) -> None:
        """Program queue `index` with `size` entries at the given ring addresses and enable it."""

    @abstractmethod
    def notify(self, index: int) -> None:
        """Ring the doorbell of queue `index`."""

    @abstractmethod
    def interrupt_status(self) -> int:
        """bit 0: used buffer, bit 1: configuration change (the same bits on every transport)."""

    @abstractmethod
    def ack_interrupt(self, bits: int) -> None: ...

    @abstractmethod
    def config_block(self, block: type[B]) -> B:
        """The device-specific configuration as a RegisterBlock at offset 0 of its space. Declare 64-bit
        fields as two 32-bit registers and read them inside `read_config`."""

    # --- status -------------------------------------------------------------------------------------
    @property
    def status(self) -> int:
        return self._read_status()

    def set_status(self, value: int) -> None:
        """Write the whole status byte (the driver only ever adds bits, except for reset)."""
        self._write_status(value)

    def reset(self) -> None:
        """Write 0 to the status and wait until it reads 0 (the reset may take time: §4.1.4.3.2, §4.2.3.1)."""
        self._write_status(0)
        deadline = time.monotonic() + self.reset_timeout
        while self._read_status() != 0:
            if time.monotonic() > deadline:
                raise VirtioError(f"{self.name}: {self.status_register} did not read 0 within {self.reset_timeout} s "
                                  "after reset")
        self.features = 0

    def fail(self) -> None:
        """Tell the device the driver gave up (FAILED); never raises."""
        with contextlib.suppress(Exception):  # the device may be gone already; nothing else to do
            self._write_status(self._read_status() | Status.FAILED)

    def driver_ok(self) -> None:
        self._write_status(self._read_status() | Status.DRIVER_OK)
        if self._read_status() & Status.DEVICE_NEEDS_RESET:
            raise VirtioError(f"{self.name}: device set DEVICE_NEEDS_RESET at DRIVER_OK")

    # --- features -----------------------------------------------------------------------------------
    def device_features(self) -> int:
        return (self._read_device_features(1) << 32) | self._read_device_features(0)

    def negotiate(self, wanted: int, required: int = 0) -> int:
        """Accept `device & wanted` (VERSION_1 is always required), then check that FEATURES_OK stuck.

        Raises VirtioError naming the bits when the device lacks a required feature or refuses the subset
        (FEATURES_OK reads back clear); the device is marked FAILED then.
        """
        required |= bit(Feature.VERSION_1)
        offered = self.device_features()
        missing = required & ~offered
        if missing:
            self.fail()
            raise VirtioError(f"{self.name}: device lacks required feature bits {_bits(missing)} "
                              f"(offers {offered:#x})")
        accepted = offered & (wanted | required)
        self._write_driver_features(0, accepted & 0xFFFF_FFFF)
        self._write_driver_features(1, accepted >> 32)
        self._write_status(self._read_status() | Status.FEATURES_OK)
        if not self._read_status() & Status.FEATURES_OK:
            self.fail()
            raise VirtioError(f"{self.name}: device refused features {accepted:#x} (FEATURES_OK did not "
                              "stick)")
        self.features = accepted
        return accepted

    def has(self, feature_bit: int) -> bool:
        return bool(self.features >> feature_bit & 1)

    # --- device configuration -----------------------------------------------------------------------
    def read_config(self, reader: Callable[[], T], attempts: int = 100) -> T:
        """Run `reader` until the config generation is the same before and after it (§2.5.1)."""
        for _ in range(attempts):
            before = self.config_generation()
            value = reader()
            if self.config_generation() == before:
                return value
        raise VirtioError(f"{self.name}: {self.generation_register} kept changing over {attempts} reads")


def _bits(mask: int) -> str:
    return "{" + ", ".join(str(n) for n in range(64) if mask >> n & 1) + "}"
