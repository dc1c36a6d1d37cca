"""The driver model: matching, bind with fallback, unbind -> revoke -> release ordering, in-flight work,
removal, and the errors for capabilities a device does not have."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from mmiotk import CachePolicy, MmioBuffer, RamSpace, RevokedError
from mmiotk.bus import AddressRange, BindError, Bus, Device, DeviceGoneError, DeviceState, Driver, NoResourceError
from mmiotk.dma import DmaBuffer, DmaPool
from mmiotk.errors import MmioValueError
from mmiotk.irq import Interrupt, MockInterrupt, MockInterruptController
from mmiotk.region import MmioResource, PhysicalRegion

REGS = 0x0A00_0000


class FixedBus(Bus):
    """The smallest concrete bus: devices at given ranges of one space."""

    def __init__(self, space: RamSpace, dma: DmaPool | None = None, irq_factory: Any = None) -> None:
        super().__init__("test", irq_factory=irq_factory, dma=dma)
        self.resource = MmioResource(space, space.base, space.size)

    def add(self, name: str, *, compatible: Sequence[str] = ("acme,widget",), ranges: Sequence[AddressRange] = (),
            irqs: Sequence[int] = (), vendor: int | None = None, device: int | None = None,
            parent: str | None = None, probe: bool = False) -> Device:
        return self.add_device(Device(self, name, compatible=compatible, mmio_ranges=ranges, irqs=irqs,
                                      vendor_id=vendor, device_id=device, parent=parent), probe=probe)

    def region_for(self, device: Device, index: int, reg: AddressRange) -> PhysicalRegion:
        return self.resource.create_region(reg.paddr, reg.size, f"{device.name}.reg{index}")


class Widget(Driver):
    """Maps its registers, takes its interrupt and a DMA buffer; records what it saw at each stage."""

    compatible = ("acme,widget",)

    def __init__(self, journal: list[str] | None = None) -> None:
        super().__init__()
        self.journal = journal if journal is not None else []

    def bind(self, device: Device) -> None:
        self.regs: MmioBuffer = device.mmio(0).map(CachePolicy.UNCACHED_DEVICE)
        self.irq: Interrupt = device.irq(0)
        self.buf: DmaBuffer = device.dma_pool().alloc(64)
        self.journal.append("bind")

    def unbind(self) -> None:
        self.regs.write32(0, 0xDEAD)  # capabilities are still live while unbinding
        self.journal.append(f"unbind regs_live={not self.regs.revoked}")
        super().unbind()

    def release(self) -> None:
        self.journal.append(f"release regs_revoked={self.regs.revoked} irq_revoked={self.irq.revoked} "
                            f"buf_live={not self.buf.freed}")


@pytest.fixture
def space() -> Iterator[RamSpace]:
    ram = RamSpace(0x10000, base=REGS, name="mmio")
    yield ram
    ram.close()


@pytest.fixture
def memory() -> Iterator[RamSpace]:
    ram = RamSpace(0x10000, base=0x4000_0000, name="ram")
    yield ram
    ram.close()


@pytest.fixture
def irqs() -> MockInterruptController:
    return MockInterruptController()


@pytest.fixture
def bus(space: RamSpace, memory: RamSpace, irqs: MockInterruptController) -> Iterator[FixedBus]:
    b = FixedBus(space, DmaPool.from_space(memory), irqs)
    b.add("w0", ranges=[AddressRange(REGS, 0x100)], irqs=[40])
    yield b
    b.close()


def bound_widget(bus: FixedBus, journal: list[str] | None = None) -> Widget:
    bus.register_driver(Widget, lambda: Widget(journal))
    driver = bus.bind("w0")
    assert isinstance(driver, Widget)
    return driver


# --- matching and binding --------------------------------------------------------------------------
def test_bind_hands_the_driver_the_device_and_marks_it_bound(bus: FixedBus) -> None:
    driver = bound_widget(bus)
    device = bus.devices["w0"]
    assert driver.device is device and device.driver is driver and device.state is DeviceState.BOUND
    assert bus.bindings() == {"w0": driver}


def test_most_specific_compatible_string_wins_over_registration_order(bus: FixedBus) -> None:
    class Generic(Widget):
        compatible = ("generic,thing",)

    class Specific(Widget):
        compatible = ("acme,widget-v2",)

    bus.register_driver(Generic)
    bus.register_driver(Specific)
    bus.add("w1", compatible=("acme,widget-v2", "generic,thing"), ranges=[AddressRange(REGS + 0x100, 0x100)], irqs=[41])
    assert type(bus.bind("w1")) is Specific


def test_exact_id_beats_vendor_wide_id(bus: FixedBus) -> None:
    class AnyAcme(Widget):
        ids = ((0x1AF4, None),)

    class Blk(Widget):
        ids = ((0x1AF4, 0x1042),)

    bus.register_driver(AnyAcme)
    bus.register_driver(Blk)
    bus.add("p0", compatible=(), vendor=0x1AF4, device=0x1042, ranges=[AddressRange(REGS + 0x100, 0x100)], irqs=[41])
    bus.add("p1", compatible=(), vendor=0x1AF4, device=0x1000, ranges=[AddressRange(REGS + 0x200, 0x100)], irqs=[42])
    assert type(bus.bind("p0")) is Blk
    assert type(bus.bind("p1")) is AnyAcme


def test_bind_with_no_matching_driver_names_the_device(bus: FixedBus) -> None:
    with pytest.raises(BindError, match=r"device 'w0' \(compatible \['acme,widget'\].*no registered driver"):
        bus.bind("w0")


def test_binding_twice_is_refused(bus: FixedBus) -> None:
    bound_widget(bus)
    with pytest.raises(BindError, match="already bound to Widget"):
        bus.bind("w0")


def test_refusing_driver_is_skipped_and_what_it_took_is_revoked(bus: FixedBus) -> None:
    taken: list[MmioBuffer] = []

    class Picky(Driver):
        compatible = ("acme,widget",)

        def bind(self, device: Device) -> None:
            taken.append(device.mmio(0).map(CachePolicy.UNCACHED))
            raise RuntimeError("wrong revision")

    bus.register_driver(Picky)
    bus.register_driver(Widget)
    assert type(bus.bind("w0")) is Widget
    assert bus.devices["w0"].bind_errors == ["Picky: wrong revision"]
    with pytest.raises(RevokedError):
        taken[0].read32(0)


def test_when_every_driver_refuses_the_device_stays_unbound(bus: FixedBus) -> None:
    class Broken(Driver):
        compatible = ("acme,widget",)

        def bind(self, device: Device) -> None:
            raise RuntimeError("no firmware")

    bus.register_driver(Broken)
    with pytest.raises(BindError, match="every matching driver refused it: Broken: no firmware"):
        bus.bind("w0")
    assert bus.devices["w0"].state is DeviceState.UNBOUND and bus.devices["w0"].driver is None
    assert bus.bind_all() == {}


def test_bind_all_binds_what_matches_and_leaves_the_rest(bus: FixedBus) -> None:
    bus.add("other", compatible=("nobody,cares",), ranges=[AddressRange(REGS + 0x100, 0x100)])
    bus.register_driver(Widget)
    assert list(bus.bind_all()) == ["w0"]
    assert bus.devices["other"].state is DeviceState.UNBOUND


def test_add_device_with_probe_binds_at_once(bus: FixedBus) -> None:
    bus.register_driver(Widget)
    device = bus.add("w1", ranges=[AddressRange(REGS + 0x100, 0x100)], irqs=[41], probe=True)
    assert isinstance(device.driver, Widget)


def test_duplicate_device_name_is_refused(bus: FixedBus) -> None:
    with pytest.raises(MmioValueError, match="already has a device named 'w0'"):
        bus.add("w0")


def test_register_driver_that_matches_nothing_is_refused(bus: FixedBus) -> None:
    class Nothing(Driver):
        pass

    with pytest.raises(MmioValueError, match="neither compatible strings nor ids"):
        bus.register_driver(Nothing)


# --- unbind, revoke, release ------------------------------------------------------------------------
def test_unbind_runs_unbind_with_live_capabilities_then_revokes_then_release(bus: FixedBus) -> None:
    journal: list[str] = []
    driver = bound_widget(bus, journal)
    bus.unbind("w0")
    assert journal == ["bind", "unbind regs_live=True",
                       "release regs_revoked=True irq_revoked=True buf_live=True"]
    assert driver.buf.freed  # the bus freed what release() left behind
    assert bus.devices["w0"].state is DeviceState.UNBOUND


def test_after_unbind_the_drivers_old_mmio_buffer_raises_revoked(bus: FixedBus) -> None:
    driver = bound_widget(bus)
    driver.regs.write32(4, 1)
    bus.unbind("w0")
    with pytest.raises(RevokedError, match=r"w0\.reg0"):
        driver.regs.read32(4)
    with pytest.raises(RevokedError):
        driver.regs.write32(4, 2)
    with pytest.raises(RevokedError):
        driver.irq.wait(0)


def test_rebinding_gets_fresh_live_capabilities(bus: FixedBus) -> None:
    first = bound_widget(bus)
    bus.unbind("w0")
    second = bus.bind("w0")
    assert isinstance(second, Widget) and second is not first
    second.regs.write32(0, 5)
    assert second.regs.read32(0) == 5
    assert first.regs.revoked and not second.regs.revoked


def test_capabilities_are_the_same_objects_until_revoked(bus: FixedBus) -> None:
    device = bus.devices["w0"]
    assert device.mmio(0) is device.mmio(0)
    assert device.irq(0) is device.irq(0)
    assert device.dma_pool() is device.dma_pool()


def test_in_flight_wait_fails_with_device_gone_and_new_work_is_refused(
        bus: FixedBus, irqs: MockInterruptController) -> None:
    driver = bound_widget(bus)
    driver.unbind_timeout = 0.05  # the request below never finishes on its own
    outcome: list[BaseException] = []
    inside = threading.Event()

    def request() -> None:
        try:
            with driver.operation("read"):
                inside.set()
                driver.irq.wait(30)
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=request)
    worker.start()
    assert inside.wait(5)
    bus.unbind("w0")
    worker.join(5)
    assert not worker.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], DeviceGoneError)
    assert "went away mid-request" in str(outcome[0])
    with pytest.raises(DeviceGoneError, match="refused: device 'w0' is gone"), driver.operation("write"):
        pass


def test_in_flight_work_may_finish_during_unbind_before_revocation(bus: FixedBus) -> None:
    proceed = threading.Event()
    finished: list[int] = []

    class Finisher(Widget):
        def unbind(self) -> None:
            proceed.set()  # e.g. complete the queue: the worker finishes its request
            super().unbind()

    bus.register_driver(Finisher)
    driver = bus.bind("w0")
    assert isinstance(driver, Finisher)
    inside = threading.Event()

    def request() -> None:
        with driver.operation():
            inside.set()
            proceed.wait(5)
            driver.regs.write32(8, 0x77)  # still allowed: revocation comes after unbind() returns
            finished.append(driver.regs.read32(8))

    worker = threading.Thread(target=request)
    worker.start()
    assert inside.wait(5)
    bus.unbind("w0")
    worker.join(5)
    assert finished == [0x77]


def test_unbind_that_raises_still_revokes_and_reports(bus: FixedBus) -> None:
    class Clumsy(Widget):
        def unbind(self) -> None:
            raise RuntimeError("oops")

    bus.register_driver(Clumsy)
    driver = bus.bind("w0")
    assert isinstance(driver, Clumsy)
    with pytest.raises(BindError, match=r"Clumsy.unbind\(\) raised.*revoked anyway"):
        bus.unbind("w0")
    assert driver.regs.revoked and bus.devices["w0"].driver is None


def test_unbind_of_an_unbound_device_is_an_error(bus: FixedBus) -> None:
    with pytest.raises(BindError, match="'w0' is not bound"):
        bus.unbind("w0")


def test_unknown_device_name_lists_the_ones_there(bus: FixedBus) -> None:
    with pytest.raises(NoResourceError, match="no device 'nope'; it has w0"):
        bus.unbind("nope")


def test_remove_device_unbinds_revokes_and_forgets_it(bus: FixedBus) -> None:
    driver = bound_widget(bus)
    device = bus.remove_device("w0")
    assert device.state is DeviceState.REMOVED and "w0" not in bus.devices
    with pytest.raises(RevokedError):
        driver.regs.read32(0)
    with pytest.raises(DeviceGoneError, match="removed"):
        device.mmio(0)


def test_close_unbinds_every_device(bus: FixedBus) -> None:
    driver = bound_widget(bus)
    bus.close()
    assert driver.regs.revoked and bus.bindings() == {}


# --- capabilities a device does not have -----------------------------------------------------------
def test_device_without_mmio_of_its_own_gets_no_region(bus: FixedBus) -> None:
    kbd = bus.add("kbd0", compatible=("usb,hid",), parent="w0")
    with pytest.raises(NoResourceError, match="'kbd0' has no MMIO of its own \\(it sits behind 'w0'\\)"):
        kbd.mmio(0)


def test_asking_for_a_region_index_that_does_not_exist_names_those_that_do(bus: FixedBus) -> None:
    with pytest.raises(NoResourceError, match="no MMIO region 3; it has 0"):
        bus.devices["w0"].mmio(3)


def test_asking_for_a_missing_interrupt_is_an_error(bus: FixedBus) -> None:
    with pytest.raises(NoResourceError, match="no interrupt 1; it has 1"):
        bus.devices["w0"].irq(1)


def test_bus_without_dma_memory_says_so(space: RamSpace) -> None:
    bare = FixedBus(space)
    device = bare.add("w0", ranges=[AddressRange(REGS, 0x100)])
    with pytest.raises(NoResourceError, match="no DMA memory to give device 'w0'"):
        device.dma_pool()


def test_interrupts_come_from_the_factory_the_target_supplies(space: RamSpace) -> None:
    asked: list[int] = []

    def factory(number: int) -> Interrupt:
        asked.append(number)
        return MockInterrupt(f"target-{number}")

    target_bus = FixedBus(space, irq_factory=factory)
    device = target_bus.add("w0", ranges=[AddressRange(REGS, 0x100)], irqs=[77])
    assert device.irq(0).name == "target-77" and asked == [77]


def test_default_interrupts_are_mock_lines_a_test_can_trigger(space: RamSpace) -> None:
    default_bus = FixedBus(space)
    device = default_bus.add("w0", ranges=[AddressRange(REGS, 0x100)], irqs=[33])
    controller = default_bus.irq_factory
    assert isinstance(controller, MockInterruptController)
    line = device.irq(0)
    controller.trigger(33)
    assert line.wait(0) == 1


def test_handed_out_lists_live_capabilities(bus: FixedBus) -> None:
    bound_widget(bus)
    assert bus.devices["w0"].handed_out() == {"mmio": ["w0.reg0"], "irq": ["irq40"], "dma": ["w0"]}
    bus.unbind("w0")
    assert bus.devices["w0"].handed_out() == {"mmio": [], "irq": [], "dma": []}




def test_a_driver_that_skips_base_init_is_a_clear_bind_error(bus: FixedBus) -> None:
    class Sloppy(Driver):
        compatible = ("acme,widget",)

        def __init__(self) -> None:  # forgets super().__init__()
            self.x = 1

        def bind(self, device: Device) -> None:
            pass

    bus.register_driver(Sloppy)
    with pytest.raises(BindError, match=r"super\(\).__init__"):
        bus.bind("w0")
    assert bus.devices["w0"].driver is None
