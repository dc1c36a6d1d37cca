"""/proc/iomem, read to explain why the kernel refused a mapping.

Under CONFIG_STRICT_DEVMEM the kernel refuses /dev/mem mappings of System RAM, and under IO_STRICT_DEVMEM
of any page holding a range a driver claimed (request_mem_region); a PCI BAR's resourceN refuses while a
driver holds the BAR. The errno alone (EPERM, EINVAL) says none of this, so the backends look the range up
here and name the owner and the fix.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .space import PAGE_SIZE

# Entries that describe the address map rather than a driver's claim.
_NOT_CLAIMS = ("Reserved", "reserved", "PCI Bus", "PCI ECAM", "PCI MMCONFIG", "System ROM", "Video ROM",
               "Adapter ROM", "Kernel code", "Kernel data", "Kernel rodata", "Kernel bss", "ACPI Tables",
               "ACPI Non-volatile Storage", "System RAM", "Persistent Memory", "Soft Reserved")


@dataclass(frozen=True)
class IomemEntry:
    start: int
    end: int  # inclusive, as the kernel prints it
    name: str
    depth: int
    parent: IomemEntry | None

    @property
    def pci_device(self) -> str | None:
        """The PCI address (0000:00:04.0) of the BAR this entry is, or lies in."""
        entry: IomemEntry | None = self
        while entry is not None:
            if _is_bdf(entry.name):
                return entry.name
            entry = entry.parent
        return None


def _is_bdf(name: str) -> bool:
    parts = name.split(":")
    return len(parts) == 3 and len(parts[0]) == 4 and "." in parts[2]


def read_iomem(path: str | os.PathLike[str] = "/proc/iomem") -> list[IomemEntry]:
    """Every entry, parents before children; [] when the file cannot be read (or shows only zeros)."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return []
    entries: list[IomemEntry] = []
    stack: list[IomemEntry] = []
    for line in lines:
        stripped = line.lstrip(" ")
        depth = (len(line) - len(stripped)) // 2
        span, sep, name = stripped.partition(" : ")
        lo, dash, hi = span.partition("-")
        if not sep or not dash:
            continue
        try:
            start, end = int(lo, 16), int(hi, 16)
        except ValueError:
            continue
        del stack[depth:]
        entry = IomemEntry(start, end, name.strip(), depth, stack[-1] if stack else None)
        stack.append(entry)
        entries.append(entry)
    if entries and all(e.start == 0 and e.end == 0 for e in entries):
        return []  # not root: the kernel hides the addresses
    return entries


def overlapping(entries: list[IomemEntry], start: int, end: int) -> list[IomemEntry]:
    """Entries meeting [start, end), innermost first."""
    hits = [e for e in entries if e.start < end and start <= e.end]
    return sorted(hits, key=lambda e: -e.depth)


def pci_driver(address: str, sysfs_root: str | os.PathLike[str] = "/sys") -> str | None:
    """The kernel driver bound to PCI device `address`, or None."""
    link = Path(sysfs_root) / "bus" / "pci" / "devices" / address / "driver"
    try:
        return os.path.basename(os.readlink(link))
    except OSError:
        return None


def unbind_hint(address: str, driver: str) -> str:
    return f"unbind it first: echo {address} > /sys/bus/pci/drivers/{driver}/unbind"


def explain_devmem_refusal(paddr: int, size: int, *, iomem: str | os.PathLike[str] = "/proc/iomem",
                           sysfs_root: str | os.PathLike[str] = "/sys") -> str:
    """Why /dev/mem refused [paddr, paddr + size) and what to do about it, from /proc/iomem."""
    start = paddr // PAGE_SIZE * PAGE_SIZE
    end = -(-(paddr + size) // PAGE_SIZE) * PAGE_SIZE
    entries = read_iomem(iomem)
    if not entries:
        return ("CONFIG_STRICT_DEVMEM allows only MMIO no driver claims, the first 1 MiB and RAM reserved at "
                f"boot; {iomem} was not readable to say which applies")
    hits = overlapping(entries, start, end)
    ram = [e for e in hits if e.name == "System RAM"]
    if ram:
        return (f"[{start:#x}, {end:#x}) is System RAM ({ram[0].start:#x}-{ram[0].end:#x} in {iomem}), which "
                "CONFIG_STRICT_DEVMEM refuses; reserve memory for devices at boot instead "
                "(kernel parameter memmap=SIZE$ADDRESS, e.g. memmap=16M$0x8000000) and map that")
    claims = [e for e in hits if e.name not in _NOT_CLAIMS and not _is_bdf(e.name)]
    if claims:
        owners = []
        for claim in claims:
            where = f"{claim.name!r} at {claim.start:#x}-{claim.end:#x}"
            bdf = claim.pci_device
            driver = pci_driver(bdf, sysfs_root) if bdf else None
            if bdf and driver:
                where += f" (PCI {bdf}, driver {driver}: {unbind_hint(bdf, driver)})"
            owners.append(where)
        return ("CONFIG_IO_STRICT_DEVMEM refuses every 4 KiB page holding a range a driver claimed; "
                f"[{start:#x}, {end:#x}) holds " + "; ".join(owners)
                + ". Every claimant of the page must let go, not only the one you mean to replace")
    return ("CONFIG_STRICT_DEVMEM refused it though no claim shows in "
            f"{iomem} for [{start:#x}, {end:#x}) (a range beyond the machine's physical address space?)")
