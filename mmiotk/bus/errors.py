"""Errors of the driver model. All derive from MmioError; a vanished device is a RevokedError."""

from __future__ import annotations

from ..errors import MmioError, RevokedError


class BusError(MmioError):
    """Base of the bus and driver-model errors."""


class BindError(BusError):
    """A device could not be bound (no matching driver, every candidate failed, already bound)."""


class NoResourceError(BusError, LookupError):
    """A device has no such MMIO region, interrupt or DMA memory (e.g. a USB function behind a controller)."""


class AllocationError(BusError):
    """An address range or DMA buffer could not be allocated: the window or pool is exhausted."""


class OverlapError(BusError, ValueError):
    """A fixed range collides with one already claimed."""


class DeviceGoneError(RevokedError):
    """The device was unbound or removed while work was in flight, or before it started."""
