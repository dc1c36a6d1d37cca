"""Platform bus: boards from YAML, JSON and dicts; regions, interrupts and DMA per device; bad boards
rejected with errors naming node and field, building nothing."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drivers.bus.platform import BoardError, PlatformBus, load_board
from mmiotk import CachePolicy, PhysicalRegion, RamSpace, RevokedError
from mmiotk.bus import Device, Driver, NoResourceError
from mmiotk.irq import Interrupt, MockInterrupt, MockInterruptController

SLOT = 0x0A00_0000
RAM = 0x4000_0000

BOARD_YAML = """\
name: mini-virt
memory: {base: 0x40000000, size: 0x100000}
dma: {base: 0x40010000, size: 0x10000}
devices:
  - name: blk0
    compatible: virtio,mmio
    reg: [[0x0a003e00, 0x200]]
    interrupts: [79]
  - name: uart0
    compatible:          # most specific first; quote them inside [flow, lists]: YAML splits at commas
      - arm,pl011
      - arm,primecell
    reg: [[0x0a000000, 0x1000]]
    interrupts: [33]
"""


def board(**changes: Any) -> dict[str, Any]:
    """A valid board as a dict, with top-level keys replaced by `changes`."""
    base: dict[str, Any] = {
        "name": "t",
        "memory": {"base": RAM, "size": 0x10_0000},
        "devices": [
            {"name": "blk0", "compatible": "virtio,mmio", "reg": [[SLOT + 0x3E00, 0x200]], "interrupts": [79]},
            {"name": "uart0", "compatible": ["arm,pl011"], "reg": [[SLOT, 0x1000]], "interrupts": [33]},
        ],
    }
    base.update(changes)
    return base


def with_device(index: int, **changes: Any) -> dict[str, Any]:
    b = board()
    b["devices"][index] = {**b["devices"][index], **changes}
    return b


@pytest.fixture
def mmio() -> Iterator[RamSpace]:
    space = RamSpace(0x4000, base=SLOT, name="mock-mmio")
    yield space
    space.close()


@pytest.fixture
def memory() -> Iterator[RamSpace]:
    space = RamSpace(0x10_0000, base=RAM, name="guest-ram")
    yield space
    space.close()


@pytest.fixture
def bus(tmp_path: Path, mmio: RamSpace, memory: RamSpace) -> Iterator[PlatformBus]:
    path = tmp_path / "mini.yaml"
    path.write_text(BOARD_YAML)
    b = PlatformBus.from_board(path, mmio, memory=memory)
    yield b
    b.close()


class Blk(Driver):
    compatible = ("virtio,mmio",)

    def bind(self, device: Device) -> None:
        self.regs = device.mmio(0).map(CachePolicy.UNCACHED_DEVICE)
        self.irq = device.irq(0)


# --- building the bus ------------------------------------------------------------------------------
def test_yaml_board_gives_devices_with_their_regions(bus: PlatformBus) -> None:
    region = bus.devices["blk0"].mmio(0)
    assert isinstance(region, PhysicalRegion)
    assert (region.paddr, region.size, region.name) == (0x0A00_3E00, 0x200, "blk0.reg0")
    assert not region.memory and not region.prefetchable
    assert bus.devices["uart0"].compatible == ("arm,pl011", "arm,primecell")


def test_json_board_and_hex_strings_are_accepted(tmp_path: Path, mmio: RamSpace) -> None:
    data = board(memory=None)
    data["devices"][0]["reg"] = [["0x0a003e00", "0x200"]]
    path = tmp_path / "b.json"
    path.write_text(json.dumps(data))
    jbus = PlatformBus.from_board(path, mmio)
    assert jbus.devices["blk0"].mmio(0).paddr == 0x0A00_3E00


def test_region_maps_and_reaches_the_space(bus: PlatformBus, mmio: RamSpace) -> None:
    regs = bus.devices["blk0"].mmio(0).map(CachePolicy.UNCACHED_DEVICE)
    regs.write32(0, 0x7472_6976)
    assert bytes(mmio.array[0x3E00:0x3E04]) == b"virt"


def test_dma_pool_is_in_the_boards_carve_out(bus: PlatformBus) -> None:
    buf = bus.devices["blk0"].dma_pool().alloc(4096, align=4096)
    assert 0x4001_0000 <= buf.paddr < 0x4002_0000


def test_dma_defaults_to_all_of_memory_in_the_register_space_itself() -> None:
    with RamSpace(0x10_0000, base=RAM, name="all") as space:
        data = {"memory": {"base": RAM, "size": 0x8_0000},
                "devices": [{"name": "d", "compatible": "x", "reg": [[RAM + 0x8_0000, 0x100]]}]}
        pbus = PlatformBus.from_board(data, space)
        assert pbus.dma is not None and (pbus.dma.base, pbus.dma.size) == (RAM, 0x8_0000)


def test_bind_all_binds_the_board_device_and_unbind_revokes_its_mapping(bus: PlatformBus) -> None:
    bus.register_driver(Blk)
    assert list(bus.bind_all()) == ["blk0"]
    driver = bus.devices["blk0"].driver
    assert isinstance(driver, Blk)
    bus.unbind("blk0")
    with pytest.raises(RevokedError):
        driver.regs.read32(0)


def test_default_interrupts_are_mock_lines_by_number(bus: PlatformBus) -> None:
    line = bus.devices["blk0"].irq(0)
    assert isinstance(bus.irq_factory, MockInterruptController)
    bus.irq_factory.trigger(79)
    assert line.wait(0) == 1


def test_irq_factory_from_the_target_is_used(tmp_path: Path, mmio: RamSpace) -> None:
    def factory(number: int) -> Interrupt:
        return MockInterrupt(f"qemu-gic-{number}")

    tbus = PlatformBus.from_board(board(memory=None), mmio, irq_factory=factory)
    assert tbus.devices["uart0"].irq(0).name == "qemu-gic-33"


def test_device_with_a_parent_and_no_reg_has_no_region(mmio: RamSpace) -> None:
    data = board(memory=None)
    data["devices"].append({"name": "kbd0", "compatible": "usb,hid", "parent": "uart0"})
    pbus = PlatformBus.from_board(data, mmio)
    with pytest.raises(NoResourceError, match=r"no MMIO of its own \(it sits behind 'uart0'\)"):
        pbus.devices["kbd0"].mmio(0)


def test_board_without_a_memory_space_has_no_dma(mmio: RamSpace) -> None:
    pbus = PlatformBus.from_board(board(), mmio)
    with pytest.raises(NoResourceError, match="no DMA memory"):
        pbus.devices["blk0"].dma_pool()


def test_prefetchable_devices_get_prefetchable_regions(mmio: RamSpace) -> None:
    pbus = PlatformBus.from_board(with_device(0, prefetchable=True), mmio)
    region = pbus.devices["blk0"].mmio(0)
    assert region.prefetchable
    region.map(CachePolicy.WRITE_COMBINING)


def test_address_map_lists_memory_dma_and_every_reg(bus: PlatformBus) -> None:
    kinds = {(e.kind, e.name) for e in bus.address_map()}
    assert {("memory", "ram"), ("dma", "mini-virt-dma"), ("mmio", "blk0[0]"), ("mmio", "uart0[0]")} <= kinds


# --- bad boards ------------------------------------------------------------------------------------
def problem(exc: pytest.ExceptionInfo[BoardError]) -> tuple[str, str]:
    return exc.value.node, exc.value.field


@pytest.mark.parametrize(("data", "node", "field", "words"), [
    (with_device(0, interupts=[1]), "blk0", "interupts", "unknown field"),
    (board(memroy={}), "(board)", "memroy", "unknown field"),
    (board(memory={"base": RAM, "size": 0x1000, "cached": True}), "memory", "cached", "unknown field"),
    (with_device(1, reg=[[SLOT, "lots"]]), "uart0", "reg[0][1]", "integer"),
    (with_device(1, reg=[[SLOT]]), "uart0", "reg[0][1]", "required"),
    (with_device(0, compatible=[]), "blk0", "compatible", "at least one"),
    (with_device(0, name="blk 0"), "blk 0", "name", "pattern"),
    (with_device(1, interrupts=[True]), "uart0", "interrupts[0]", "boolean"),
    (with_device(1, reg=[[SLOT, -1]]), "uart0", "reg[0][1]", "greater than or equal"),
])
def test_schema_errors_name_node_and_field(mmio: RamSpace, data: dict[str, Any], node: str, field: str,
                                           words: str) -> None:
    with pytest.raises(BoardError, match=re.escape(words)) as exc:
        PlatformBus.from_board(data, mmio)
    assert problem(exc) == (node, field)
    assert f"node {node!r}, field {field!r}" in str(exc.value)


@pytest.mark.parametrize(("data", "node", "field", "words"), [
    (with_device(1, reg=[[SLOT + 0x3E80, 0x100]]), "uart0", "reg[0]", "overlaps node 'blk0' field 'reg[0]'"),
    (with_device(1, reg=[[SLOT + 0x4000, 0x100]]), "uart0", "reg[0]", "outside the address space 'mock-mmio'"),
    (with_device(1, reg=[[SLOT + 4, 0x100]]), "uart0", "reg[0]", "8-byte aligned"),
    (with_device(1, reg=[[SLOT, 0]]), "uart0", "reg[0]", "size must be > 0"),
    (with_device(1, name="blk0"), "blk0", "name", "duplicate"),
    (with_device(1, interrupts=[79]), "uart0", "interrupts[0]", "already used by node 'blk0'"),
    (with_device(1, parent="nobody"), "uart0", "parent", "names no other node"),
    (board(dma={"base": RAM + 0x20_0000}), "dma", "base", "not inside memory"),
])
def test_semantic_errors_name_node_and_field(mmio: RamSpace, data: dict[str, Any], node: str, field: str,
                                             words: str) -> None:
    with pytest.raises(BoardError, match=re.escape(words)) as exc:
        PlatformBus.from_board(data, mmio)
    assert problem(exc) == (node, field)


def test_a_range_inside_a_wider_one_is_caught_even_when_not_adjacent(mmio: RamSpace) -> None:
    data = board(memory=None)
    data["devices"] = [
        {"name": "big", "compatible": "x", "reg": [[SLOT, 0x4000]]},
        {"name": "a", "compatible": "x", "reg": [[SLOT + 0x100, 0x100]]},
        {"name": "b", "compatible": "x", "reg": [[SLOT + 0x1000, 0x100]]},
    ]
    with pytest.raises(BoardError) as exc:
        PlatformBus.from_board(data, mmio)
    assert [p.node for p in exc.value.problems] == ["a", "b"]


def test_device_range_inside_memory_is_an_overlap(memory: RamSpace) -> None:
    data = board()
    data["devices"] = [{"name": "sneaky", "compatible": "x", "reg": [[RAM + 0x1000, 0x100]]}]
    with pytest.raises(BoardError, match="overlaps node 'memory'") as exc:
        PlatformBus.from_board(data, memory)
    assert problem(exc) == ("sneaky", "reg[0]")


def test_memory_outside_the_memory_space_is_refused(mmio: RamSpace, memory: RamSpace) -> None:
    with pytest.raises(BoardError, match="outside the memory space 'guest-ram'") as exc:
        PlatformBus.from_board(board(memory={"base": RAM, "size": 0x20_0000}), mmio, memory=memory)
    assert problem(exc) == ("memory", "base")


def test_every_problem_is_reported_at_once(mmio: RamSpace) -> None:
    data = with_device(1, reg=[[SLOT + 4, 0]], parent="x")
    with pytest.raises(BoardError) as exc:
        PlatformBus.from_board(data, mmio)
    assert {p.field for p in exc.value.problems} == {"reg[0]", "parent"}


def test_unreadable_and_malformed_files_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(BoardError, match=r"missing\.yaml.*cannot read"):
        load_board(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("devices: [\n")
    with pytest.raises(BoardError, match=r"bad\.yaml.*syntax"):
        load_board(bad)
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n")
    with pytest.raises(BoardError, match="expected a mapping"):
        load_board(listing)


def test_interrupts_offered_by_the_space_are_used_by_default(mmio: RamSpace) -> None:
    class QemuLikeSpace(RamSpace):
        def irq_factory(self, number: int) -> Interrupt:
            return MockInterrupt(f"gic-{number}")

    with QemuLikeSpace(0x4000, base=SLOT, name="qemu-like") as target:
        tbus = PlatformBus.from_board(board(memory=None), target)
        assert tbus.devices["blk0"].irq(0).name == "gic-79"
