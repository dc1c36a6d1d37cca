"""A PCI function's configuration space as a driver sees it: the type 0 header and the capabilities list.

A bus driver hands a bound driver `device.config()` beside its BAR regions (`device.mmio(i)`), as Linux hands
a driver `pci_read_config_*` and `pci_find_capability`. Behind it is whatever the bus reaches config space
through (ECAM memory, a sysfs `config` file); here it is a mapped `MmioBuffer` of the function's 4 KiB, revoked
with the rest of the device's capabilities on unbind. Offsets and bits are PCI Local Bus 3.0 §6.1 / §6.7.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from mmiotk import MmioBuffer
from mmiotk.errors import MmioError

PCI_VENDOR_ID = 0x00
PCI_DEVICE_ID = 0x02
PCI_COMMAND = 0x04
PCI_STATUS = 0x06
PCI_CLASS_REVISION = 0x08
PCI_HEADER_TYPE = 0x0E
PCI_BASE_ADDRESS_0 = 0x10
PCI_CAPABILITY_LIST = 0x34
PCI_INTERRUPT_LINE = 0x3C
PCI_INTERRUPT_PIN = 0x3D

PCI_COMMAND_MEMORY = 0x0002
PCI_COMMAND_MASTER = 0x0004
PCI_COMMAND_INTX_DISABLE = 0x0400
PCI_STATUS_CAP_LIST = 0x0010
PCI_HEADER_TYPE_MASK = 0x7F
PCI_HEADER_TYPE_MULTI_FUNCTION = 0x80

PCI_BASE_ADDRESS_SPACE_IO = 0x01
PCI_BASE_ADDRESS_MEM_TYPE_MASK = 0x06
PCI_BASE_ADDRESS_MEM_TYPE_64 = 0x04
PCI_BASE_ADDRESS_MEM_PREFETCH = 0x08
PCI_BASE_ADDRESS_MEM_MASK = ~0xF

PCI_CAP_ID_VNDR = 0x09
PCI_CAP_ID_MSIX = 0x11

# MSI-X capability (PCI 3.0 §6.8.2) and table entries, names as in Linux's pci_regs.h
PCI_MSIX_FLAGS = 2
PCI_MSIX_FLAGS_QSIZE = 0x07FF
PCI_MSIX_FLAGS_MASKALL = 0x4000
PCI_MSIX_FLAGS_ENABLE = 0x8000
PCI_MSIX_TABLE = 4
PCI_MSIX_TABLE_BIR = 0x7
PCI_MSIX_ENTRY_SIZE = 16
PCI_MSIX_ENTRY_LOWER_ADDR = 0
PCI_MSIX_ENTRY_UPPER_ADDR = 4
PCI_MSIX_ENTRY_DATA = 8
PCI_MSIX_ENTRY_VECTOR_CTRL = 12
PCI_MSIX_ENTRY_CTRL_MASKBIT = 1
PCI_STD_HEADER_SIZEOF = 0x40  # capabilities live after the standard header, inside the 256-byte space
PCI_CFG_SPACE_SIZE = 0x100
PCI_CAP_SIZEOF = 4            # smallest capability: id, next, two bytes of body


class PciConfigError(MmioError):
    """The function's configuration space breaks the PCI rules (a bad capabilities list)."""


@dataclass(frozen=True)
class PciCapability:
    """One entry of the capabilities list: its ID and where it sits in config space."""

    cap_id: int
    offset: int


class PciConfig:
    """Typed access to a function's config space: read8/16/32 and write8/16/32 at naturally aligned offsets
    (the buffer checks bounds and alignment), the command register, and the capabilities list."""

    def __init__(self, buffer: MmioBuffer, name: str | None = None) -> None:
        self.buffer = buffer
        self.name = name or buffer.name
        self.read8, self.read16, self.read32 = buffer.read8, buffer.read16, buffer.read32
        self.write8, self.write16, self.write32 = buffer.write8, buffer.write16, buffer.write32

    def __repr__(self) -> str:
        return f"<PciConfig {self.name} {self.vendor_id:04x}:{self.device_id:04x}>"

    @property
    def vendor_id(self) -> int:
        return self.read16(PCI_VENDOR_ID)

    @property
    def device_id(self) -> int:
        return self.read16(PCI_DEVICE_ID)

    @property
    def interrupt_pin(self) -> int:
        """0: no INTx; 1..4: INTA..INTD."""
        return self.read8(PCI_INTERRUPT_PIN)

    def set_command(self, set_bits: int = 0, clear_bits: int = 0) -> int:
        """Read-modify-write the command register; returns the new value."""
        value = (self.read16(PCI_COMMAND) & ~clear_bits | set_bits) & 0xFFFF
        self.write16(PCI_COMMAND, value)
        return value

    def set_master(self) -> None:
        """Let the function master the bus (DMA, MSI writes), as Linux's pci_set_master."""
        self.set_command(PCI_COMMAND_MASTER)

    def capabilities(self) -> Iterator[PciCapability]:
        """Walk the capabilities list (§6.7) from the Capabilities Pointer.

        Raises PciConfigError naming the offset when a pointer leaves the capability area [0x40, 0x100),
        is not dword aligned (the low two bits are reserved: masked, as the spec says, but a pointer into
        the header is an error), or the list loops.
        """
        if not self.read16(PCI_STATUS) & PCI_STATUS_CAP_LIST:
            return
        seen: set[int] = set()
        where = "Capabilities Pointer (0x34)"
        pointer = self.read8(PCI_CAPABILITY_LIST) & ~3
        while pointer:
            if not PCI_STD_HEADER_SIZEOF <= pointer <= PCI_CFG_SPACE_SIZE - PCI_CAP_SIZEOF:
                raise PciConfigError(f"{self.name}: {where} points to {pointer:#x}, outside the capability area "
                                     f"[{PCI_STD_HEADER_SIZEOF:#x}, {PCI_CFG_SPACE_SIZE:#x})")
            if pointer in seen:
                raise PciConfigError(f"{self.name}: capabilities list loops: {where} points back to the "
                                     f"capability at {pointer:#x}")
            seen.add(pointer)
            header = self.read16(pointer)
            yield PciCapability(header & 0xFF, pointer)
            where = f"next pointer of the capability at {pointer:#x}"
            pointer = (header >> 8) & ~3

    def find_capabilities(self, cap_id: int) -> list[PciCapability]:
        """Every capability with ID `cap_id`, in list order (vendor-specific ones may repeat)."""
        return [cap for cap in self.capabilities() if cap.cap_id == cap_id]
