"""The driver model: buses find devices and hand drivers capabilities; unbind revokes them.

See docs/bus.md. Concrete buses live in `drivers.bus` (platform, pci); they place devices with
`mmiotk.allocator.RangeAllocator`.
"""

from .bus import Bus, DriverFactory, MapEntry, format_address_map
from .device import AddressRange, Device, DeviceState
from .driver import ANY_ID, Driver
from .errors import BindError, DeviceGoneError, DriverModelError, NoResourceError

__all__ = [
    "ANY_ID", "AddressRange", "BindError", "Bus", "Device", "DeviceGoneError", "DeviceState", "Driver",
    "DriverFactory", "DriverModelError", "MapEntry", "NoResourceError", "format_address_map",
]
