"""Bus: matches devices to drivers and runs their lifecycle; the only holder of the right to mint regions.

A concrete bus (platform, PCI) decides where devices are and creates their regions from the
`MmioResource`s it holds; this base class does the rest: driver registration and matching, bind with
fallback to the next matching driver, unbind -> revoke -> release ordering, device removal, and the
address map. Interrupts come from an `IrqFactory` the target supplies (mock lines by default); DMA from
the bus's `DmaPool`, one child pool per device.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import MmioValueError
from ..irq import Interrupt, IrqFactory, MockInterruptController
from ..region import PhysicalRegion
from .device import AddressRange, Device, DeviceState
from .driver import Driver
from .errors import BindError, DriverModelError, NoResourceError

if TYPE_CHECKING:
    from ..dma import DmaPool

DriverFactory = Callable[[], Driver]


@dataclass(frozen=True)
class MapEntry:
    """One line of an address map: a range, what it is, who has it."""

    base: int
    size: int
    kind: str
    name: str
    detail: str = ""

    @property
    def end(self) -> int:
        return self.base + self.size


def format_address_map(entries: list[MapEntry]) -> str:
    lines = [f"{'start':>12} {'end':>12} {'size':>10}  {'kind':<10} {'name':<16} detail"]
    for e in sorted(entries, key=lambda e: (e.base, -e.size)):
        lines.append(f"{e.base:#12x} {e.end:#12x} {e.size:#10x}  {e.kind:<10} {e.name:<16} {e.detail}".rstrip())
    return "\n".join(lines)


class Bus(ABC):
    """Devices, drivers, bindings. Thread-safe: one lock orders every lifecycle change."""

    def __init__(self, name: str, *, irq_factory: IrqFactory | None = None, dma: DmaPool | None = None) -> None:
        self.name = name
        self.irq_factory: IrqFactory = irq_factory if irq_factory is not None else MockInterruptController()
        self.dma = dma
        self.devices: dict[str, Device] = {}
        self.log: list[str] = []
        self._drivers: list[tuple[type[Driver], DriverFactory]] = []
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} {len(self.devices)} devices>"

    def __enter__(self) -> Bus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- what a concrete bus provides (a device asks through these for what its driver asks of it) -----
    @abstractmethod
    def region_for(self, device: Device, index: int, reg: AddressRange) -> PhysicalRegion:
        """Mint the region for `device`'s range `index` from a resource this bus holds."""

    def irq_for(self, device: Device, number: int) -> Interrupt:
        """The line for `device`'s interrupt `number`, from the bus's irq factory."""
        return self.irq_factory(number)

    def dma_pool_for(self, device: Device) -> DmaPool:
        """A child of the bus's DMA pool for `device` alone."""
        if self.dma is None or self.dma.closed:
            raise NoResourceError(f"bus {self.name!r} has no DMA memory to give device {device.name!r} "
                                  "(give the bus a memory space)")
        return self.dma.child(device.name)

    def _on_remove(self, device: Device) -> None:
        """Return the ranges of a removed device (dynamic buses)."""

    def address_map(self) -> list[MapEntry]:
        entries = []
        for device in self.devices.values():
            owner = device.driver.name if device.driver is not None else device.state.value
            what = device.compatible[0] if device.compatible else ""
            irqs = f" irq {','.join(str(n) for n in device.irq_numbers)}" if device.irq_numbers else ""
            for index, reg in device.mmio_ranges.items():
                pref = " prefetchable" if reg.prefetchable else ""
                entries.append(MapEntry(reg.paddr, reg.size, "mmio", f"{device.name}[{index}]",
                                        f"{what}{irqs}{pref} -> {owner}".lstrip()))
        return entries

    # --- drivers ------------------------------------------------------------------------------------
    def register_driver(self, driver: type[Driver], factory: DriverFactory | None = None) -> None:
        """Make `driver` a candidate for matching; `factory` builds instances (default: the class itself)."""
        if not (isinstance(driver, type) and issubclass(driver, Driver)):
            raise MmioValueError(f"bus {self.name!r}: register_driver needs a Driver subclass, got {driver!r}")
        if not driver.compatible and not driver.ids:
            raise MmioValueError(f"bus {self.name!r}: driver {driver.__name__} declares neither compatible "
                                 "strings nor ids, so it can match nothing")
        with self._lock:
            self._drivers.append((driver, factory or driver))

    def matching_drivers(self, device: Device) -> list[tuple[type[Driver], DriverFactory]]:
        ranked = []
        for order, (cls, factory) in enumerate(self._drivers):
            rank = cls.match(device)
            if rank is not None:
                ranked.append((rank, order, cls, factory))
        return [(cls, factory) for _, _, cls, factory in sorted(ranked, key=lambda r: (r[0], r[1]))]

    # --- devices ------------------------------------------------------------------------------------
    def device(self, name: str) -> Device:
        try:
            return self.devices[name]
        except KeyError:
            raise NoResourceError(f"bus {self.name!r} has no device {name!r}; it has "
                                  f"{', '.join(self.devices) or 'none'}") from None

    def add_device(self, device: Device, *, probe: bool = True) -> Device:
        """Put `device` on the bus; with `probe`, bind it to the best matching driver (refusals are kept in
        `device.bind_errors`, as Linux keeps a failed probe from failing device_add)."""
        with self._lock:
            if device.name in self.devices:
                raise MmioValueError(f"bus {self.name!r} already has a device named {device.name!r}")
            self.devices[device.name] = device
            self.log.append(f"add {device.name}")
            if probe and self.matching_drivers(device):
                with suppress(BindError):
                    self.bind(device.name)
            return device

    def remove_device(self, name: str) -> Device:
        """Unbind (if bound), revoke everything handed out, return the device's ranges, forget it."""
        with self._lock:
            device = self.device(name)
            failure: BaseException | None = None
            if device.driver is not None:
                try:
                    self.unbind(name)
                except DriverModelError as exc:
                    failure = exc
            device.revoke_mmio_and_irqs()
            device.close_dma_pool()
            device.state = DeviceState.REMOVED
            self._on_remove(device)
            del self.devices[name]
            self.log.append(f"remove {name}")
            if failure is not None:
                raise failure
            return device

    # --- binding ------------------------------------------------------------------------------------
    def bind(self, name: str, driver: type[Driver] | None = None) -> Driver:
        """Bind `name` to the best matching driver (or to `driver`); if bind() raises, try the next one."""
        with self._lock:
            device = self.device(name)
            if device.driver is not None:
                raise BindError(f"device {name!r} is already bound to {device.driver.name}")
            candidates = self.matching_drivers(device)
            if driver is not None:
                candidates = [(cls, f) for cls, f in candidates if cls is driver]
            if not candidates:
                what = f"driver {driver.__name__}" if driver is not None else "no registered driver"
                raise BindError(f"device {name!r} (compatible {list(device.compatible)}, ids "
                                f"{device.vendor_id!r}:{device.device_id!r}): {what} matches it")
            device.bind_errors = []
            for cls, factory in candidates:
                instance = factory()
                if not isinstance(instance, Driver) or not hasattr(instance, "device"):
                    made = type(instance).__name__
                    raise BindError(f"device {name!r}: the factory for {cls.__name__} made a {made}, not an "
                                    "initialised Driver (does its __init__ call super().__init__()?)")
                device.state = DeviceState.BINDING
                instance.device = device
                try:
                    instance.bind(device)
                except Exception as exc:
                    device.bind_errors.append(f"{cls.__name__}: {exc}")
                    self.log.append(f"bind {name} -> {cls.__name__} refused: {exc}")
                    instance.quiesce(0.0)
                    device.revoke_mmio_and_irqs()
                    device.close_dma_pool()
                    instance.device = None
                    device.state = DeviceState.UNBOUND
                    continue
                device.driver = instance
                device.state = DeviceState.BOUND
                self.log.append(f"bind {name} -> {cls.__name__}")
                return instance
            raise BindError(f"device {name!r}: every matching driver refused it: {'; '.join(device.bind_errors)}")

    def bind_all(self) -> dict[str, Driver]:
        """Bind every unbound device that has a matching driver; refusals stay in `device.bind_errors`."""
        with self._lock:
            for device in list(self.devices.values()):
                if device.driver is None and self.matching_drivers(device):
                    with suppress(BindError):
                        self.bind(device.name)
            return self.bindings()

    def bindings(self) -> dict[str, Driver]:
        return {name: d.driver for name, d in self.devices.items() if d.driver is not None}

    def unbind(self, name: str) -> None:
        """driver.unbind() (capabilities live) -> revoke regions and interrupts -> driver.release() -> free
        the device's DMA pool. The device stays on the bus, unbound, ready to bind again."""
        with self._lock:
            device = self.device(name)
            driver = device.driver
            if driver is None:
                raise BindError(f"device {name!r} is not bound")
            device.state = DeviceState.UNBINDING
            failure: tuple[str, BaseException] | None = None
            try:
                driver.unbind()
            except Exception as exc:
                failure = ("unbind", exc)
            driver.quiesce(0.0)
            device.revoke_mmio_and_irqs()
            driver.quiesce(driver.unbind_timeout)
            try:
                driver.release()
            except Exception as exc:
                failure = failure or ("release", exc)
            leaked = device.close_dma_pool()
            device.driver = None
            device.state = DeviceState.UNBOUND
            self.log.append(f"unbind {name} <- {driver.name}" + (f" (the bus freed {leaked} DMA buffer(s) left "
                                                                 "behind)" if leaked else ""))
            if failure is not None:
                stage, cause = failure
                raise BindError(f"device {name!r}: {driver.name}.{stage}() raised {cause!r}; the device was "
                                "unbound and its capabilities revoked anyway") from cause

    def close(self) -> None:
        """Unbind every device (last bound first) and close the DMA pool."""
        with self._lock:
            for name in reversed(list(self.bindings())):
                with suppress(DriverModelError):
                    self.unbind(name)
            for device in self.devices.values():
                device.revoke_mmio_and_irqs()
                device.close_dma_pool()

    def __iter__(self) -> Iterator[Device]:
        return iter(list(self.devices.values()))
