"""Errors of the driver model. All derive from MmioError; a vanished device is a RevokedError."""

from __future__ import annotations

from ..errors import MmioError, RevokedError


class DriverModelError(MmioError):
    """Base of the driver-model errors (binding, missing resources). Not a bus transaction's error response."""


class BindError(DriverModelError):
    """A device could not be bound (no matching driver, every candidate failed, already bound)."""


class NoResourceError(DriverModelError, LookupError):
    """A device has no such MMIO region, interrupt or DMA memory (e.g. a USB function behind a controller)."""


class DeviceGoneError(RevokedError):
    """The device was unbound or removed while work was in flight, or before it started."""
