"""The virtio-pci transport's reading of a function: the capabilities list, the virtio structures it finds
there, the doorbell addresses, and the errors a broken list gives. Config space and BAR are plain memory laid
out byte by byte (the layout QEMU 7.2's virtio-blk-pci presents, then broken on purpose); bring-up against
QEMU's own device is the conformance suite's `qemu-pci` target."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from drivers.bus.pci_config import PciConfig, PciConfigError
from drivers.virtio import VirtioError
from drivers.virtio.pci import CfgType, VirtioPci, find_virtio_caps
from mmiotk import CachePolicy, MmioBuffer, MmioResource, RamSpace

CONFIG, BAR4 = 0x0, 0x4000
BAR_SIZE = 0x4000


@dataclass
class Cap:
    """One capability as it is written into config space."""

    at: int
    cfg_type: int = CfgType.COMMON
    bar: int = 4
    offset: int = 0
    length: int = 0x1000
    mult: int | None = None
    cap_id: int = 0x09
    cap_len: int | None = None


@dataclass
class Function:
    """A virtio-blk-pci function in memory: config space at 0, BAR 4 at 0x4000."""

    caps: list[Cap] = field(default_factory=lambda: [
        Cap(0x98, cap_id=0x11),                                   # MSI-X: not a virtio capability
        Cap(0x84, CfgType.PCI, bar=0, offset=0, length=0),      # PCI_CFG: not used by this driver
        Cap(0x70, CfgType.NOTIFY, offset=0x3000, mult=4),
        Cap(0x60, CfgType.DEVICE, offset=0x2000),
        Cap(0x50, CfgType.ISR, offset=0x1000),
        Cap(0x40, CfgType.COMMON, offset=0x0)])
    vendor: int = 0x1AF4
    device: int = 0x1042
    first: int | None = None


@pytest.fixture
def ram() -> Iterator[tuple[RamSpace, MmioBuffer, MmioBuffer]]:
    with RamSpace(2 * BAR_SIZE, name="pci-function") as space:
        resource = MmioResource(space, 0, 2 * BAR_SIZE)
        config = resource.create_region(CONFIG, 0x1000, "0000:00:01.0 config").map(CachePolicy.UNCACHED_DEVICE)
        bar = resource.create_region(BAR4, BAR_SIZE, "0000:00:01.0.bar4").map(CachePolicy.UNCACHED_DEVICE)
        yield space, config, bar


def lay_out(config: MmioBuffer, fn: Function) -> PciConfig:
    """Write `fn`'s header and capabilities list (in list order: each cap's next is the one after it)."""
    config.write_block(0, bytes(0x100))
    config.write16(0x00, fn.vendor)
    config.write16(0x02, fn.device)
    config.write16(0x06, 0x0010)  # status: capabilities list
    config.write8(0x34, fn.caps[0].at if fn.first is None else fn.first)
    for i, cap in enumerate(fn.caps):
        nxt = fn.caps[i + 1].at if i + 1 < len(fn.caps) else 0
        if cap.cap_id != 0x09:
            config.write_block(cap.at, bytes([cap.cap_id, nxt, 0, 0]))
            continue
        size = 20 if cap.cfg_type == CfgType.NOTIFY else 16
        body = struct.pack("<BBBBBBxxII", 0x09, nxt, size if cap.cap_len is None else cap.cap_len, cap.cfg_type,
                           cap.bar, 0, cap.offset, cap.length)
        if cap.mult is not None:
            body += struct.pack("<I", cap.mult)
        config.write_block(cap.at, body)
    return PciConfig(config)


def transport(ram: tuple[RamSpace, MmioBuffer, MmioBuffer], fn: Function | None = None) -> VirtioPci:
    _, config, bar = ram
    return VirtioPci(lay_out(config, fn or Function()), {4: bar})


# --- parsing what a real device presents ---------------------------------------------------------------
def test_finds_the_four_structures_and_ignores_other_capabilities(ram: tuple[RamSpace, MmioBuffer, MmioBuffer]) -> None:
    dev = transport(ram)
    assert dev.device_id == 2 and dev.name == "0000:00:01.0"
    caps = {t: (c.bar, c.offset, c.length, c.at) for t, c in dev.caps.items()}
    assert caps == {CfgType.COMMON: (4, 0x0, 0x1000, 0x40), CfgType.ISR: (4, 0x1000, 0x1000, 0x50),
                    CfgType.DEVICE: (4, 0x2000, 0x1000, 0x60), CfgType.NOTIFY: (4, 0x3000, 0x1000, 0x70)}
    assert dev.caps[CfgType.NOTIFY].notify_off_multiplier == 4


def test_capabilities_walk_in_list_order(ram: tuple[RamSpace, MmioBuffer, MmioBuffer]) -> None:
    cfg = lay_out(ram[1], Function())
    assert [(c.cap_id, c.offset) for c in cfg.capabilities()] == \
        [(0x11, 0x98), (0x09, 0x84), (0x09, 0x70), (0x09, 0x60), (0x09, 0x50), (0x09, 0x40)]


def test_the_first_instance_of_a_type_wins(ram: tuple[RamSpace, MmioBuffer, MmioBuffer]) -> None:
    fn = Function()
    fn.caps.insert(0, Cap(0xB0, CfgType.ISR, offset=0x1800))
    assert transport(ram, fn).caps[CfgType.ISR].offset == 0x1800


def test_reserved_cfg_types_and_bar_numbers_are_ignored(ram: tuple[RamSpace, MmioBuffer, MmioBuffer]) -> None:
    fn = Function()
    fn.caps.insert(0, Cap(0xB0, cfg_type=7, offset=0x10))          # reserved cfg_type
    fn.caps.insert(0, Cap(0xC0, CfgType.COMMON, bar=6, offset=0x100))  # reserved BAR number
    assert transport(ram, fn).caps[CfgType.COMMON].offset == 0


def test_a_function_of_another_vendor_is_not_virtio(ram: tuple[RamSpace, MmioBuffer, MmioBuffer]) -> None:
    with pytest.raises(VirtioError, match=r"PCI 8086:1042 is not a virtio device"):
        transport(ram, Function(vendor=0x8086))


# --- doorbells ----------------------------------------------------------------------------------------
def test_notify_address_is_cap_offset_plus_queue_notify_off_times_multiplier(
        ram: tuple[RamSpace, MmioBuffer, MmioBuffer]) -> None:
    _, _, bar = ram
    dev = transport(ram)
    bar.write16(0x1E, 3)  # queue_notify_off of the selected queue
    assert dev.notify_offset(5) == 0x3000 + 3 * 4
    assert bar.read16(0x16) == 5  # it selected the queue before reading queue_notify_off


def test_a_zero_multiplier_puts_every_doorbell_at_the_cap_offset(ram: tuple[RamSpace, MmioBuffer, MmioBuffer]) -> None:
    fn = Function()
    fn.caps[2] = Cap(0x70, CfgType.NOTIFY, offset=0x3000, length=2, mult=0)
    dev = transport(ram, fn)
    ram[2].write16(0x1E, 9)
    assert dev.notify_offset(1) == 0x3000


def test_a_doorbell_outside_the_notify_structure_is_refused(ram: tuple[RamSpace, MmioBuffer, MmioBuffer]) -> None:
    dev = transport(ram)
    ram[2].write16(0x1E, 0x400)  # 0x400 * 4 = 0x1000: the 2 bytes would end past length 0x1000
    with pytest.raises(VirtioError, match=r"queue 1: queue_notify_off 1024 \* notify_off_multiplier 4 = 0x1000 "
                                          r"leaves no 2-byte doorbell inside the NOTIFY_CFG capability at 0x70"):
        dev.notify_offset(1)


def test_setup_queue_programs_the_rings_and_notify_writes_the_queue_index(
        ram: tuple[RamSpace, MmioBuffer, MmioBuffer]) -> None:
    _, _, bar = ram
    dev = transport(ram)
    bar.write16(0x12, 2)      # num_queues
    bar.write16(0x18, 256)    # queue_size as the device presents it
    bar.write16(0x1E, 1)      # queue 1's queue_notify_off
    dev.setup_queue(1, 64, 0x1_2345_0000, 0x1_2345_0400, 0x1_2345_0800)
    assert (bar.read16(0x18), bar.read16(0x1C)) == (64, 1)
    assert [bar.read32(o) for o in range(0x20, 0x38, 4)] == [0x2345_0000, 1, 0x2345_0400, 1, 0x2345_0800, 1]
    dev.notify(1)
    assert bar.read16(0x3004) == 1
    with pytest.raises(VirtioError, match=r"queue 2 does not exist \(num_queues 2\)"):
        dev.setup_queue(2, 64, 0, 0, 0)


def test_interrupt_status_is_the_isr_byte(ram: tuple[RamSpace, MmioBuffer, MmioBuffer]) -> None:
    dev = transport(ram)
    ram[2].write8(0x1000, 0x3)
    assert dev.interrupt_status() == 0x3


# --- broken capability lists --------------------------------------------------------------------------
@pytest.mark.parametrize(("index", "cap", "message"), [
    (5, Cap(0x40, CfgType.COMMON, cap_len=12), r"COMMON_CFG capability at 0x40: cap_len 12 is shorter than the "
                                               r"16 bytes of struct virtio_pci_cap"),
    (2, Cap(0x70, CfgType.NOTIFY, offset=0x3000, cap_len=16, mult=4),
     r"NOTIFY_CFG capability at 0x70: cap_len 16 is shorter than the 20 bytes of struct virtio_pci_notify_cap"),
    (5, Cap(0x40, CfgType.COMMON, offset=0x3800), r"COMMON_CFG capability at 0x40: \[0x3800, 0x4800\) does not "
                                                  r"fit in BAR 4 \(0x4000 bytes\)"),
    (5, Cap(0x40, CfgType.COMMON, offset=0x2), r"COMMON_CFG capability at 0x40: offset 0x2 is not 4-byte aligned"),
    (5, Cap(0x40, CfgType.COMMON, length=0x30), r"COMMON_CFG capability at 0x40: length 0x30 is less than the "
                                                r"0x38 bytes"),
    (2, Cap(0x70, CfgType.NOTIFY, offset=0x3001, mult=4), r"NOTIFY_CFG capability at 0x70: offset 0x3001 is not "
                                                          r"2-byte aligned"),
    (2, Cap(0x70, CfgType.NOTIFY, offset=0x3000, mult=3), r"NOTIFY_CFG capability at 0x70: notify_off_multiplier 3"
                                                          r" is neither 0 nor a power of 2"),
    (5, Cap(0x40, CfgType.COMMON, bar=2), r"no usable COMMON_CFG capability: the COMMON_CFG capability at 0x40 "
                                          r"names BAR 2, which this function does not implement"),
    (4, Cap(0x50, cfg_type=7), r"no usable ISR_CFG capability: there is none in the capabilities list"),
])
def test_a_broken_capability_is_named_with_its_offset(ram: tuple[RamSpace, MmioBuffer, MmioBuffer], index: int,
                                                      cap: Cap, message: str) -> None:
    fn = Function()
    fn.caps[index] = cap
    with pytest.raises(VirtioError, match=message):
        transport(ram, fn)


def test_a_looping_capabilities_list_is_an_error(ram: tuple[RamSpace, MmioBuffer, MmioBuffer]) -> None:
    config = ram[1]
    cfg = lay_out(config, Function())
    config.write8(0x41, 0x70)  # COMMON's next points back to NOTIFY
    with pytest.raises(PciConfigError, match=r"capabilities list loops: next pointer of the capability at 0x40 "
                                             r"points back to the capability at 0x70"):
        find_virtio_caps(cfg, {4: BAR_SIZE})


def test_a_capability_pointer_into_the_header_is_an_error(ram: tuple[RamSpace, MmioBuffer, MmioBuffer]) -> None:
    with pytest.raises(PciConfigError, match=r"Capabilities Pointer \(0x34\) points to 0x20, outside the "
                                             r"capability area \[0x40, 0x100\)"):
        transport(ram, Function(first=0x20))


def test_without_the_capabilities_list_bit_there_are_no_capabilities(
        ram: tuple[RamSpace, MmioBuffer, MmioBuffer]) -> None:
    config = ram[1]
    cfg = lay_out(config, Function())
    config.write16(0x06, 0)
    assert list(cfg.capabilities()) == []
    with pytest.raises(VirtioError, match="no usable COMMON_CFG capability"):
        VirtioPci(cfg, {4: ram[2]})
