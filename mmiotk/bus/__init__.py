"""The driver model: buses find devices and hand drivers capabilities; unbind revokes them.

See docs/bus.md. Concrete buses live in `drivers` (platform_bus, pci_bus).
"""

from .allocator import Allocation, RangeAllocator, is_power_of_two
from .bus import Bus, DriverFactory, MapEntry, format_address_map
from .device import Device, DeviceState, Reg
from .driver import ANY_ID, Driver
from .errors import AllocationError, BindError, BusError, DeviceGoneError, NoResourceError, OverlapError

__all__ = [
    "ANY_ID", "Allocation", "AllocationError", "BindError", "Bus", "BusError", "Device", "DeviceGoneError",
    "DeviceState", "Driver", "DriverFactory", "MapEntry", "NoResourceError", "OverlapError", "RangeAllocator",
    "Reg", "format_address_map", "is_power_of_two",
]
