"""No public attribute of what a driver is handed reaches beyond its own grant (issue 16, item 7).

Property: walking the public attributes of everything a bound driver holds (its Device, regions, mappings,
interrupt, DMA pool and buffers) finds no MmioResource, address space, bus, other device, or region or pool
wider than the device's own. Python is not a sandbox (underscored attributes are reachable): this guards
against mistakes, which is what the capability model promises."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from mmiotk import CachePolicy, RamSpace
from mmiotk.bus import AddressRange, Bus, Device
from mmiotk.dma import DmaBuffer, DmaPool, FreedBufferError
from mmiotk.errors import MmioValueError
from mmiotk.irq import MockInterruptController
from mmiotk.region import MmioResource, PhysicalRegion
from mmiotk.space import AddressSpace

from .test_bus_lifecycle import FixedBus, Widget

REGS = 0x0A00_0000


@pytest.fixture
def bound() -> Iterator[tuple[FixedBus, Widget, Device]]:
    space = RamSpace(0x10000, base=REGS, name="mmio")
    memory = RamSpace(0x10000, base=0x4000_0000, name="ram")
    ctrl = MockInterruptController()
    bus = FixedBus(space, DmaPool.from_space(memory), ctrl)
    bus.register_driver(Widget)
    bus.add("a", ranges=[AddressRange(REGS, 0x100)], irqs=[1])
    bus.add("b", ranges=[AddressRange(REGS + 0x1000, 0x100)], irqs=[2])
    widget = bus.bind("a")
    assert isinstance(widget, Widget)
    yield bus, widget, bus.devices["a"]
    bus.close()
    space.close()
    memory.close()


def public_reach(root: object, depth: int = 4) -> list[tuple[str, object]]:
    """(path, value) of every object reachable through public, non-callable attributes of `root`."""
    seen: set[int] = set()
    out: list[tuple[str, object]] = []

    def walk(obj: object, path: str, left: int) -> None:
        if id(obj) in seen or left < 0 or isinstance(obj, (int, float, str, bytes, bool, type(None))):
            return
        seen.add(id(obj))
        out.append((path, obj))
        items: list[tuple[str, Any]] = []
        if isinstance(obj, dict):
            items = [(f"[{k!r}]", v) for k, v in obj.items()]
        elif isinstance(obj, (list, tuple, set, frozenset)):
            items = [(f"[{i}]", v) for i, v in enumerate(obj)]
        elif not isinstance(obj, np.ndarray) or isinstance(obj, DmaBuffer):
            for name in dir(obj):
                if name.startswith("_"):
                    continue
                try:
                    value = getattr(obj, name)
                except Exception:  # a property that refuses (freed, revoked) reaches nothing
                    continue
                if callable(value) and not isinstance(value, (PhysicalRegion, DmaPool, Device, Bus)):
                    continue
                items.append((f".{name}", value))
        for suffix, value in items:
            walk(value, path + suffix, left - 1)

    walk(root, "driver", depth)
    return out


def test_nothing_a_driver_holds_reaches_a_resource_space_bus_or_other_device(bound: Any) -> None:
    _bus, widget, device = bound
    own = device.mmio_ranges[0]
    for path, obj in public_reach(widget):
        assert not isinstance(obj, (MmioResource, AddressSpace, Bus)), path
        if isinstance(obj, Device):
            assert obj is device, path
        if isinstance(obj, PhysicalRegion):
            assert (obj.paddr, obj.size) == (own.paddr, own.size), path


def test_a_region_exposes_neither_its_resource_nor_its_space(bound: Any) -> None:
    _bus, _widget, device = bound
    region = device.mmio(0)
    for name in ("resource", "space"):
        assert not hasattr(region, name)
    assert not hasattr(device, "bus") and device.bus_name == "test"
    assert not hasattr(device.dma_pool(), "region")


@pytest.mark.parametrize("name,value", [("paddr", REGS + 0x1000), ("size", 0x2000), ("memory", True),
                                        ("coherent", False), ("prefetchable", True), ("policy", None)])
def test_a_region_cannot_be_retargeted_before_it_is_mapped(bound: Any, name: str, value: object) -> None:
    _bus, _widget, device = bound
    region = device.mmio(0)
    with pytest.raises(AttributeError):
        setattr(region, name, value)
    assert (region.paddr, region.size) == (REGS, 0x100)


def test_a_freed_buffer_cannot_be_made_writable_again(bound: Any) -> None:
    _bus, _widget, device = bound
    buf = device.dma_pool().alloc(64, dtype=np.uint32)
    buf[:] = 7
    buf.free()
    with pytest.raises(ValueError, match="read-only"):
        buf[0] = 1
    with pytest.raises(ValueError, match="WRITEABLE"):
        buf.flags.writeable = True
    with pytest.raises(ValueError, match="read-only"):
        np.asarray(buf)[0] = 1
    with pytest.raises(ValueError, match="WRITEABLE"):
        np.asarray(buf.base).flags.writeable = True
    with pytest.raises(FreedBufferError):
        np.asarray(buf.base.base)


def test_buffers_freed_by_closing_the_pool_are_read_only_too(bound: Any) -> None:
    bus, widget, _device = bound
    buf = widget.buf
    bus.unbind("a")
    assert buf.freed
    with pytest.raises(ValueError, match="WRITEABLE"):
        buf.flags.writeable = True


@pytest.mark.parametrize("dtype", ["S0", "V0", object])
def test_a_dtype_without_a_size_is_refused_by_name(bound: Any, dtype: object) -> None:
    _bus, _widget, device = bound
    with pytest.raises(MmioValueError, match="cannot describe device memory"):
        device.dma_pool().alloc(64, dtype=dtype)


def test_a_live_buffer_stays_an_ordinary_writable_dma_array(bound: Any) -> None:
    _bus, _widget, device = bound
    buf = device.dma_pool().alloc(64)
    buf[:] = np.arange(64)
    view = buf[16:32].view(np.uint32)
    assert isinstance(view, DmaBuffer) and view.dma_addr == buf.dma_addr + 16
    view[0] = 0x04030201
    assert bytes(buf[16:20]) == b"\x01\x02\x03\x04"
    assert device.mmio(0).map(CachePolicy.UNCACHED_DEVICE).read32(0) == 0
