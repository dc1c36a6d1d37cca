"""Device: what a bus found, and the capabilities it hands the bound driver.

A device knows its physical ranges (`AddressRange`s) and interrupt numbers, but a driver never sees those as raw
numbers to map: it asks `mmio(i)` for a `PhysicalRegion`, `irq(i)` for an `Interrupt`, `dma_pool()` for a
`DmaPool`. Everything handed out is remembered, and revoked (or freed) by the bus on unbind and removal.
The bus itself is not a public attribute: through it a driver could reach every other device.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import DeviceGoneError, NoResourceError

if TYPE_CHECKING:
    from ..dma import DmaPool
    from ..irq import Interrupt
    from ..region import PhysicalRegion
    from .bus import Bus
    from .driver import Driver


@dataclass(frozen=True)
class AddressRange:
    """One physical range of a device (a devicetree `reg` entry, or an assigned PCI BAR)."""

    paddr: int
    size: int
    prefetchable: bool = False

    @property
    def end(self) -> int:
        return self.paddr + self.size


class DeviceState(enum.Enum):
    UNBOUND = "unbound"
    BINDING = "binding"
    BOUND = "bound"
    UNBINDING = "unbinding"
    REMOVED = "removed"


class Device:
    """One device on a bus. `mmio_ranges` maps an index (platform: position in the devicetree `reg`; PCI: BAR
    number) to the physical range behind `mmio(index)`."""

    def __init__(self, bus: Bus, name: str, *, compatible: Sequence[str] = (), vendor_id: int | None = None,
                 device_id: int | None = None,
                 mmio_ranges: Mapping[int, AddressRange] | Sequence[AddressRange] = (),
                 irqs: Sequence[int] = (), parent: str | None = None,
                 properties: Mapping[str, Any] | None = None) -> None:
        self._bus = bus
        self.name = name
        self.compatible = tuple(compatible)
        self.vendor_id = vendor_id
        self.device_id = device_id
        self.mmio_ranges: dict[int, AddressRange] = (dict(mmio_ranges) if isinstance(mmio_ranges, Mapping)
                                                     else dict(enumerate(mmio_ranges)))
        self.irq_numbers = tuple(irqs)
        self.parent = parent
        self.properties: dict[str, Any] = dict(properties or {})
        self.state = DeviceState.UNBOUND
        self.driver: Driver | None = None
        self.bind_errors: list[str] = []
        self._lock = threading.RLock()
        self._regions: dict[int, PhysicalRegion] = {}
        self._irqs: dict[int, Interrupt] = {}
        self._pool: DmaPool | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} {self.state.value}>"

    @property
    def bus_name(self) -> str:
        """The name of the bus the device sits on (the bus object stays with the bus driver)."""
        return self._bus.name

    # --- capabilities -------------------------------------------------------------------------------
    def _check_present(self, what: str) -> None:
        if self.state is DeviceState.REMOVED:
            raise DeviceGoneError(f"device {self.name!r} was removed from bus {self.bus_name!r}: no {what}")

    def _no_mmio(self, index: int) -> NoResourceError:
        if not self.mmio_ranges:
            behind = f" (it sits behind {self.parent!r})" if self.parent else ""
            return NoResourceError(f"device {self.name!r} has no MMIO of its own{behind}: mmio({index}) has "
                                   "nothing to give")
        return NoResourceError(f"device {self.name!r} has no MMIO region {index}; it has "
                               f"{', '.join(str(i) for i in sorted(self.mmio_ranges))}")

    def mmio(self, index: int = 0) -> PhysicalRegion:
        """The region for range `index`; the same object until unbind revokes it, then a fresh one."""
        with self._lock:
            self._check_present(f"MMIO region {index}")
            region = self._regions.get(index)
            if region is not None and not region.revoked:
                return region
            where = self.mmio_ranges.get(index) if isinstance(index, int) else None
            if where is None:
                raise self._no_mmio(index)
            region = self._bus.region_for(self, index, where)
            self._regions[index] = region
            return region

    @property
    def num_irqs(self) -> int:
        return len(self.irq_numbers)

    def irq(self, index: int = 0) -> Interrupt:
        """Interrupt `index` of this device, made by the bus's irq factory; revoked on unbind."""
        with self._lock:
            self._check_present(f"interrupt {index}")
            line = self._irqs.get(index)
            if line is not None and not line.revoked:
                return line
            if not isinstance(index, int) or not 0 <= index < len(self.irq_numbers):
                raise NoResourceError(f"device {self.name!r} has no interrupt {index}; it has "
                                      f"{len(self.irq_numbers)}")
            line = self._bus.irq_for(self, self.irq_numbers[index])
            self._irqs[index] = line
            return line

    def dma_pool(self) -> DmaPool:
        """This device's pool in the bus's DMA memory; closed (every buffer freed) on unbind."""
        with self._lock:
            self._check_present("DMA pool")
            if self._pool is None or self._pool.closed:
                self._pool = self._bus.dma_pool_for(self)
            return self._pool

    # --- revocation (the bus calls these on unbind, refused bind and removal) -------------------------
    def revoke_mmio_and_irqs(self) -> None:
        """Revoke every region and interrupt handed out; the next `mmio(i)`/`irq(i)` makes fresh ones."""
        with self._lock:
            for region in self._regions.values():
                region.revoke()
            for line in self._irqs.values():
                line.revoke()
            self._regions.clear()
            self._irqs.clear()

    def close_dma_pool(self) -> int:
        """Close this device's DMA pool, freeing what is left in it; returns how many buffers that was."""
        with self._lock:
            pool, self._pool = self._pool, None
            return pool.close() if pool is not None else 0

    def handed_out(self) -> dict[str, list[str]]:
        """Names of the live capabilities this device has handed out (for diagnostics and the demo)."""
        with self._lock:
            return {"mmio": [r.name for r in self._regions.values() if not r.revoked],
                    "irq": [i.name for i in self._irqs.values() if not i.revoked],
                    "dma": [self._pool.name] if self._pool is not None and not self._pool.closed else []}
