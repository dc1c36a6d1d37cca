"""MSI-X (PCI 3.0 §6.8.2): the bus programs a function's vector table so each vector is a write of the
interrupt controller's message (doorbell address, data) and hands the driver one `Interrupt` per vector.

As in Linux, the PCI core, not the device driver, owns the table: `device.enable_msix(n)` (on a bus with an
`MsiController`) fills entries 0..n-1, enables MSI-X with INTx disabled, and from then on `device.irq(i)` is
vector i; unbind masks and disables it again and gives the vectors back. A message is a posted write, so its
interrupt is an edge: the controller's factory must return lines that count arrivals, not levels.
"""

from __future__ import annotations

from dataclasses import dataclass

from mmiotk import MmioBuffer
from mmiotk.bus import NoResourceError
from mmiotk.irq import IrqFactory

from .pci_config import (
    PCI_CAP_ID_MSIX,
    PCI_COMMAND_INTX_DISABLE,
    PCI_MSIX_ENTRY_CTRL_MASKBIT,
    PCI_MSIX_ENTRY_DATA,
    PCI_MSIX_ENTRY_LOWER_ADDR,
    PCI_MSIX_ENTRY_SIZE,
    PCI_MSIX_ENTRY_UPPER_ADDR,
    PCI_MSIX_ENTRY_VECTOR_CTRL,
    PCI_MSIX_FLAGS,
    PCI_MSIX_FLAGS_ENABLE,
    PCI_MSIX_FLAGS_MASKALL,
    PCI_MSIX_FLAGS_QSIZE,
    PCI_MSIX_TABLE,
    PCI_MSIX_TABLE_BIR,
    PciConfig,
)


@dataclass(frozen=True)
class MsiController:
    """Where MSI writes go: a write of `data` = interrupt number to `doorbell` raises that interrupt, for
    numbers in [first, first + count) (a GICv2m frame's MSI_SETSPI_NS, say). `irq_factory` makes the
    edge-triggered `Interrupt` of a number."""

    doorbell: int
    first: int
    count: int
    irq_factory: IrqFactory


@dataclass(frozen=True)
class MsixCapability:
    """Where a function's MSI-X capability and table are."""

    at: int
    table_size: int
    table_bar: int
    table_offset: int


def find_msix(config: PciConfig) -> MsixCapability:
    caps = config.find_capabilities(PCI_CAP_ID_MSIX)
    if not caps:
        raise NoResourceError(f"{config.name}: the function has no MSI-X capability")
    at = caps[0].offset
    flags = config.read16(at + PCI_MSIX_FLAGS)
    table = config.read32(at + PCI_MSIX_TABLE)
    return MsixCapability(at, (flags & PCI_MSIX_FLAGS_QSIZE) + 1, table & PCI_MSIX_TABLE_BIR,
                          table & ~PCI_MSIX_TABLE_BIR)


def msix_enable(config: PciConfig, cap: MsixCapability, table: MmioBuffer, messages: list[tuple[int, int]]) -> None:
    """Program entries 0..len(messages)-1 with (address, data) and turn MSI-X on, INTx off (§6.8.2.3:
    entries are written while the function is masked, then the mask is lifted)."""
    if len(messages) > cap.table_size:
        raise NoResourceError(f"{config.name}: {len(messages)} MSI-X vectors asked for, the table has "
                              f"{cap.table_size}")
    flags_at = cap.at + PCI_MSIX_FLAGS
    config.write16(flags_at, config.read16(flags_at) | PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL)
    for vector, (address, data) in enumerate(messages):
        entry = cap.table_offset + vector * PCI_MSIX_ENTRY_SIZE
        table.write32(entry + PCI_MSIX_ENTRY_LOWER_ADDR, address & 0xFFFF_FFFF)
        table.write32(entry + PCI_MSIX_ENTRY_UPPER_ADDR, address >> 32)
        table.write32(entry + PCI_MSIX_ENTRY_DATA, data)
        table.write32(entry + PCI_MSIX_ENTRY_VECTOR_CTRL, 0)
    config.set_command(PCI_COMMAND_INTX_DISABLE)
    config.write16(flags_at, config.read16(flags_at) & ~PCI_MSIX_FLAGS_MASKALL)


def msix_disable(config: PciConfig, cap: MsixCapability, table: MmioBuffer, vectors: int) -> None:
    """Mask the entries, turn MSI-X off and INTx back on."""
    for vector in range(vectors):
        table.write32(cap.table_offset + vector * PCI_MSIX_ENTRY_SIZE + PCI_MSIX_ENTRY_VECTOR_CTRL,
                      PCI_MSIX_ENTRY_CTRL_MASKBIT)
    flags_at = cap.at + PCI_MSIX_FLAGS
    config.write16(flags_at, config.read16(flags_at) & ~(PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL))
    config.set_command(clear_bits=PCI_COMMAND_INTX_DISABLE)
