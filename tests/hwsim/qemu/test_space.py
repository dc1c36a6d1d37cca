"""QemuSpace against a real QEMU: registers through qtest, guest RAM shared both ways, interrupts, DMA."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from hwsim.qemu import QemuError, QemuSpace
from hwsim.qemu.qtest import QtestClient
from mmiotk import CachePolicy, IrqTimeoutError, MmioBuffer, MmioResource, MmioValueError, OutOfRangeError

DISK_SECTORS = 2048                       # 1 MiB image
MAGIC, VERSION, DEVICE_ID, STATUS, INT_STATUS, INT_ACK = 0x000, 0x004, 0x008, 0x070, 0x060, 0x064
CONFIG_GENERATION, CONFIG = 0x0FC, 0x100


def stamped_image(path: Path, sectors: int) -> Path:
    """A raw image whose 512-byte sector i starts with the 64-bit index i."""
    data = bytearray(sectors * 512)
    for i in range(sectors):
        struct.pack_into("<Q", data, i * 512, i)
    path.write_bytes(bytes(data))
    return path


@pytest.fixture(scope="module")
def qemu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[QemuSpace]:
    image = stamped_image(tmp_path_factory.mktemp("qemu") / "disk.img", DISK_SECTORS)
    with QemuSpace(image=image, ram_size=16 << 20) as space:
        yield space


@pytest.fixture(scope="module")
def regs(qemu: QemuSpace) -> MmioBuffer:
    bus = MmioResource(qemu, qemu.device_base, 0x200)
    return bus.create_region(qemu.device_base, 0x200, "virtio-blk").map(CachePolicy.UNCACHED_DEVICE)


@pytest.fixture(scope="module")
def pool(qemu: QemuSpace) -> MmioBuffer:
    dma = MmioResource(qemu, qemu.dma_base, 1 << 20)
    return dma.create_region(qemu.dma_base, 1 << 20, "dma", memory=True).map(CachePolicy.CACHED)


def test_device_identity_and_capacity_read_through_a_mapped_buffer(regs: MmioBuffer) -> None:
    assert regs.mechanism == "qemu qtest"
    assert regs.read32(MAGIC) == 0x74726976
    assert regs.read32(VERSION) == 2
    assert regs.read32(DEVICE_ID) == 2
    assert regs.read64(CONFIG) == DISK_SECTORS


def test_device_sits_in_the_last_virt_slot_with_its_spi(qemu: QemuSpace) -> None:
    assert qemu.device_slot == 31
    assert qemu.device_base == 0x0A000000 + 31 * 0x200
    assert qemu.irq_number == 32 + 16 + 31  # GIC interrupt ID of SPI 16 + slot
    assert qemu.devices == {31: 2}
    assert qemu.ram_base == 0x40000000 and qemu.dma_base == 0x40100000
    assert qemu.arch == "aarch64" and qemu.simulated


def test_numpy_writes_to_guest_ram_are_what_qemu_reads(qemu: QemuSpace, pool: MmioBuffer) -> None:
    view = pool.array(np.uint8, 0, 64)
    view[:] = np.arange(64, dtype=np.uint8) ^ 0x5A
    expected = bytes(view)
    assert qemu.qtest.read_bytes(qemu.dma_base, 64) == expected
    assert qemu.qtest.read_hex(qemu.dma_base, 64) == expected


def test_qemu_writes_to_guest_ram_appear_in_the_numpy_view(qemu: QemuSpace, pool: MmioBuffer) -> None:
    qemu.qtest.write_bytes(qemu.dma_base + 4096, b"from qemu")
    qemu.qtest.write(qemu.dma_base + 4112, 8, 0x1122334455667788)
    assert bytes(pool.array(np.uint8, 4096, 9)) == b"from qemu"
    assert int(pool.array("<u8", 4112, 1)[0]) == 0x1122334455667788


def test_interrupt_wait_times_out_while_the_line_is_low(qemu: QemuSpace) -> None:
    irq = qemu.interrupt()
    with pytest.raises(IrqTimeoutError, match="GIC input 47"):
        irq.wait(0.05)


def test_register_and_ram_ranges_are_checked(qemu: QemuSpace) -> None:
    with pytest.raises(OutOfRangeError, match="straddles"):
        qemu.open(qemu.ram_base - 8, 16, CachePolicy.UNCACHED)
    with pytest.raises(OutOfRangeError):
        qemu.open(qemu.ram_base + qemu.ram_size - 8, 16, CachePolicy.CACHED)
    with pytest.raises(MmioValueError, match="does not fit"):
        qemu.qtest.write(qemu.device_base, 4, 1 << 32)
    with pytest.raises(MmioValueError, match="width"):
        qemu.qtest.read(qemu.device_base, 3)


# --- a read request through the real device, DMA into shared memory, completion interrupt ----------
def _negotiate(regs: MmioBuffer) -> None:
    regs.write32(STATUS, 0)
    regs.write32(STATUS, 1 | 2)
    regs.write32(0x024, 0)
    regs.write32(0x020, 0)
    regs.write32(0x024, 1)
    regs.write32(0x020, 1)                                # VIRTIO_F_VERSION_1 only
    regs.write32(STATUS, 1 | 2 | 8)
    assert regs.read32(STATUS) & 8


def test_read_request_lands_in_shared_ram_and_raises_the_irq(qemu: QemuSpace, regs: MmioBuffer,
                                                             pool: MmioBuffer) -> None:
    _negotiate(regs)
    base = qemu.dma_base + 0x10000
    desc, avail, used, hdr, data, status = (base + off for off in (0, 0x100, 0x200, 0x300, 0x1000, 0x310))
    mem = pool.array(np.uint8)
    off = base - qemu.dma_base
    mem[off:off + 0x2000] = 0
    buf = mem.data
    struct.pack_into("<QIHH", buf, off + 0x00, hdr, 16, 1, 1)
    struct.pack_into("<QIHH", buf, off + 0x10, data, 512, 1 | 2, 2)
    struct.pack_into("<QIHH", buf, off + 0x20, status, 1, 2, 0)
    struct.pack_into("<IIQ", buf, off + 0x300, 0, 0, 7)       # VIRTIO_BLK_T_IN, sector 7
    buf[off + 0x310] = 0xFF
    regs.write32(0x030, 0)
    regs.write32(0x038, 8)
    for reg, addr in ((0x080, desc), (0x090, avail), (0x0A0, used)):
        regs.write32(reg, addr & 0xFFFFFFFF)
        regs.write32(reg + 4, addr >> 32)
    regs.write32(0x044, 1)
    regs.write32(STATUS, 1 | 2 | 8 | 4)
    struct.pack_into("<HH", buf, off + 0x104, 0, 1)            # ring[0] = 0; then idx = 1
    struct.pack_into("<H", buf, off + 0x102, 1)
    irq = qemu.interrupt()
    regs.write32(0x050, 0)
    assert irq.wait(5.0) >= 1
    assert regs.read32(INT_STATUS) & 1
    assert struct.unpack_from("<HII", buf, off + 0x202) == (1, 0, 513)
    assert buf[off + 0x310] == 0                               # VIRTIO_BLK_S_OK
    assert struct.unpack_from("<Q", buf, off + 0x1000)[0] == 7  # the stamp of sector 7
    regs.write32(INT_ACK, regs.read32(INT_STATUS))
    assert irq.level == 0
    irq.ack()
    with pytest.raises(IrqTimeoutError):
        irq.wait(0.05)
    regs.write32(STATUS, 0)


def test_config_change_raises_the_irq_until_acknowledged(tmp_path: Path) -> None:
    with QemuSpace(image=stamped_image(tmp_path / "d.img", 64), ram_size=8 << 20) as qemu:
        regs = MmioResource(qemu, qemu.device_base, 0x200).create_region(
            qemu.device_base, 0x200).map(CachePolicy.UNCACHED)
        _negotiate(regs)
        regs.write32(STATUS, 1 | 2 | 8 | 4)
        generation = regs.read32(CONFIG_GENERATION)
        node = qemu.qmp.execute("query-block")[0]["inserted"]["node-name"]
        qemu.qmp.execute("block_resize", {"node-name": node, "size": 128 * 512})
        irq = qemu.interrupt()
        assert irq.wait(5.0) == 1
        assert regs.read32(INT_STATUS) & 2
        assert regs.read64(CONFIG) == 128
        assert regs.read32(CONFIG_GENERATION) != generation
        with pytest.raises(IrqTimeoutError, match="never acked"):
            irq.wait(0.02)
        regs.write32(INT_ACK, regs.read32(INT_STATUS))
        assert irq.level == 0


def test_readonly_block_size_and_cache_options_reach_qemus_device(tmp_path: Path) -> None:
    image = stamped_image(tmp_path / "ro.img", 64)
    with QemuSpace(image=image, readonly=True, logical_block_size=4096, config_wce=True,
                   cache="writethrough", ram_size=8 << 20) as qemu:
        regs = MmioResource(qemu, qemu.device_base, 0x200).create_region(
            qemu.device_base, 0x200).map(CachePolicy.UNCACHED)
        regs.write32(0x014, 0)
        features = regs.read32(0x010)
        assert features & (1 << 5)                             # VIRTIO_BLK_F_RO
        assert features & (1 << 11)                            # VIRTIO_BLK_F_CONFIG_WCE
        assert regs.read32(CONFIG + 0x14) == 4096              # blk_size
        assert regs.read8(CONFIG + 0x20) == 0                  # wce: writethrough
        assert "readonly=on" in " ".join(qemu.command)


def test_malformed_options_are_refused_before_launch(tmp_path: Path) -> None:
    with pytest.raises(MmioValueError, match="does not exist"):
        QemuSpace(image=tmp_path / "missing.img")
    with pytest.raises(MmioValueError, match="cache"):
        QemuSpace(cache="sometimes")
    with pytest.raises(MmioValueError, match="logical_block_size"):
        QemuSpace(logical_block_size=1000)
    with pytest.raises(MmioValueError, match="ram_size"):
        QemuSpace(ram_size=3 << 19)
    with pytest.raises(MmioValueError, match="not found"):
        QemuSpace(qemu_binary="no-such-qemu-binary")
    with pytest.raises(MmioValueError, match="transport must be one of mmio, pci, got 'isa'"):
        QemuSpace(transport="isa")
    for spin in (-1e-3, 11.0, True, "1ms"):
        with pytest.raises(MmioValueError, match=r"reply_spin must be 0\.\.command_timeout \(10\.0\) seconds"):
            QemuSpace(reply_spin=spin)


def test_a_spinning_qtest_client_gets_replies_inside_and_beyond_its_spin() -> None:
    ours, peer = socket.socketpair()
    client = QtestClient(ours, timeout=5.0, spin=0.02)

    def answer(delay: float, reply: bytes) -> None:
        assert peer.recv(100).startswith(b"readl")
        time.sleep(delay)
        peer.sendall(b"IRQ raise 3\n" + reply)

    try:
        for delay, value in ((0.0, 7), (0.1, 9)):  # within the 20 ms of spinning, then after it (sleeps)
            server = threading.Thread(target=answer, args=(delay, b"OK 0x%016x\n" % value))
            server.start()
            assert client.read(0x1000, 4) == value
            server.join(5)
        assert client.irq_raises == {3: 2}
        peer.close()
        with pytest.raises(QemuError, match="QEMU went away"):
            client.read(0x1000, 4)
    finally:
        ours.close()


def test_register_accesses_work_with_the_client_spinning_for_replies() -> None:
    with QemuSpace(ram_size=8 << 20, reply_spin=1e-3) as qemu:
        assert qemu.qtest.spin == 1e-3
        assert qemu.qtest.read(qemu.device_base, 4) == 0x74726976      # "virt"
        qemu.qtest.write(qemu.device_base + 0x70, 4, 1)                  # Status: ACKNOWLEDGE
        assert qemu.qtest.read(qemu.device_base + 0x70, 4) == 1


def test_the_pci_transport_puts_a_modern_virtio_blk_pci_on_the_host_bridge() -> None:
    with QemuSpace(transport="pci", config_wce=True, ram_size=8 << 20) as qemu:
        command = " ".join(qemu.command)
        assert "virtio-blk-pci,drive=disk0,disable-legacy=on,config-wce=on" in command and "highmem=off" in command
        device1 = qemu.ecam_base + (1 << 15)                    # bus 0, device 1, function 0
        assert qemu.qtest.read(device1, 4) == 0x1042_1AF4        # virtio-blk-pci, modern device ID
        assert qemu.qtest.read(device1 + 0x10, 4) == 0           # no I/O BAR 0: legacy is off
        assert not hasattr(qemu, "device_base")                  # no virtio-mmio device to point at


def test_accesses_after_close_raise(tmp_path: Path) -> None:
    qemu = QemuSpace(ram_size=8 << 20)
    base = qemu.device_base
    qemu.close()
    qemu.close()
    with pytest.raises(QemuError, match="closed"):
        qemu.qtest.read(base, 4)
    with pytest.raises(QemuError, match="after close"):
        qemu.open(base, 0x200, CachePolicy.UNCACHED)


def test_connection_stays_in_step_after_an_interrupt_wait_times_out(qemu: QemuSpace) -> None:
    irq = qemu.interrupt()
    with pytest.raises(IrqTimeoutError):
        irq.wait(0.1)                                          # several pump slices
    assert qemu.qtest.read(qemu.device_base, 4) == 0x74726976
