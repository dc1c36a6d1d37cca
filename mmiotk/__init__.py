"""mmiotk: write a register-level driver once; run it on mock MMIO, models, RTL, QEMU and hardware."""

from .buffer import MmioBuffer, MmioView
from .devmem import DevMemSpace
from .dma import DmaBuffer, DmaDirection, DmaPool, FreedBufferError
from .errors import (
    AccessError,
    AlignmentError,
    BadStateError,
    BusError,
    MmioError,
    MmioValueError,
    OutOfRangeError,
    PolicyError,
    RevokedError,
)
from .irq import Interrupt, IrqTimeoutError, MockInterrupt, MockInterruptController, UioInterrupt
from .pci import PciSysfsSpace
from .policy import CachePolicy
from .ram import RamSpace
from .region import MmioResource, PhysicalRegion
from .registers import RC, RO, RSVDZ, RW, W1C, W1S, WO, Access, Field, Indirect, Register, RegisterBlock
from .space import AddressSpace, MemoryWindow, Window
from .uio import UioSpace

__all__ = [
    "RC",
    "RO",
    "RSVDZ",
    "RW",
    "W1C",
    "W1S",
    "WO",
    "Access",
    "AccessError",
    "AddressSpace",
    "AlignmentError",
    "BadStateError",
    "BusError",
    "CachePolicy",
    "DevMemSpace",
    "DmaBuffer",
    "DmaDirection",
    "DmaPool",
    "Field",
    "FreedBufferError",
    "Indirect",
    "Interrupt",
    "IrqTimeoutError",
    "MemoryWindow",
    "MmioBuffer",
    "MmioError",
    "MmioResource",
    "MmioValueError",
    "MmioView",
    "MockInterrupt",
    "MockInterruptController",
    "OutOfRangeError",
    "PciSysfsSpace",
    "PhysicalRegion",
    "PolicyError",
    "RamSpace",
    "Register",
    "RegisterBlock",
    "RevokedError",
    "UioInterrupt",
    "UioSpace",
    "Window",
]
__version__ = "0.1.0"
