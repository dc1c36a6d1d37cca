"""The RAM-disk: protocol validation, data paths, flags, TRIM, asynchronous worker, unbind."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
import pytest

from drivers.block.protocol import (
    BlockCommand,
    BlockError,
    BlockFlag,
    BlockOp,
    BlockStatus,
    Extent,
    ExtentFlag,
    Vmo,
    flush,
    read_blocks,
    run_op,
    write_blocks,
)
from drivers.block.ramdisk import RamDisk, RamDiskDriver, ramdisk_from_properties
from drivers.bus.platform import PlatformBus
from mmiotk import RamSpace
from mmiotk.bus import BindError

BS = 512
BLOCKS = 64


@pytest.fixture(params=["sync", "worker"])
def disk(request: pytest.FixtureRequest) -> Iterator[RamDisk]:
    d = RamDisk(BLOCKS * BS, BS, worker=request.param == "worker")
    yield d
    d.unbind()


def pattern(nblocks: int, seed: int = 1) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, nblocks * BS, dtype=np.uint8).tobytes()


def test_query_reports_geometry_and_flags() -> None:
    d = RamDisk(1 << 20, 4096, BlockFlag.REMOVABLE | BlockFlag.BOOTPART, max_transfer_size=64 * 1024)
    info = d.query()
    assert (info.block_count, info.block_size, info.max_transfer_size) == (256, 4096, 64 * 1024)
    assert info.flags == BlockFlag.REMOVABLE | BlockFlag.BOOTPART
    assert not info.trim_supported and not info.fua_supported  # advertised only when asked for


def test_write_then_read_returns_the_same_bytes(disk: RamDisk) -> None:
    data = pattern(5)
    write_blocks(disk, 7, data)
    assert read_blocks(disk, 7, 5) == data
    assert read_blocks(disk, 6, 1) == bytes(BS)


def test_vmo_offset_selects_the_buffer_blocks(disk: RamDisk) -> None:
    src = np.frombuffer(pattern(4), dtype=np.uint8).copy()
    assert run_op(disk, BlockOp(BlockCommand.WRITE, 2, 10, 2, Vmo(src))) is BlockStatus.OK
    assert read_blocks(disk, 10, 2) == src[2 * BS:].tobytes()


def test_trim_zeroes_the_blocks(disk: RamDisk) -> None:
    write_blocks(disk, 0, pattern(8))
    assert run_op(disk, BlockOp(BlockCommand.TRIM, 3, 2)) is BlockStatus.OK
    out = read_blocks(disk, 0, 8)
    assert out[2 * BS:5 * BS] == bytes(3 * BS)
    assert out[:2 * BS] == pattern(8)[:2 * BS]


@pytest.mark.parametrize(("offset", "length"), [(BLOCKS, 1), (BLOCKS - 1, 2), (-1, 1), (0, BLOCKS + 1)])
def test_out_of_range_ops_are_rejected_and_change_nothing(disk: RamDisk, offset: int, length: int) -> None:
    vmo = Vmo(np.full((BLOCKS + 1) * BS, 0xAA, dtype=np.uint8))
    assert run_op(disk, BlockOp(BlockCommand.WRITE, length, offset, 0, vmo)) is BlockStatus.OUT_OF_RANGE
    assert not disk.data.any()


def test_op_reaching_past_the_vmo_is_out_of_range(disk: RamDisk) -> None:
    vmo = Vmo(np.zeros(2 * BS, dtype=np.uint8))
    assert run_op(disk, BlockOp(BlockCommand.READ, 2, 0, 1, vmo)) is BlockStatus.OUT_OF_RANGE


def test_transfer_larger_than_max_is_out_of_range() -> None:
    d = RamDisk(BLOCKS * BS, BS, max_transfer_size=4 * BS)
    vmo = Vmo(np.zeros(5 * BS, dtype=np.uint8))
    assert run_op(d, BlockOp(BlockCommand.READ, 5, 0, 0, vmo)) is BlockStatus.OUT_OF_RANGE
    assert run_op(d, BlockOp(BlockCommand.READ, 4, 0, 0, vmo)) is BlockStatus.OK


def test_unknown_command_is_not_supported(disk: RamDisk) -> None:
    op = BlockOp(BlockCommand.READ, 1, 0, 0, Vmo(np.zeros(BS, dtype=np.uint8)))
    op.command = 99  # type: ignore[assignment]
    assert run_op(disk, op) is BlockStatus.NOT_SUPPORTED


def test_readonly_disk_denies_writes_and_trims_but_reads() -> None:
    d = RamDisk(BLOCKS * BS, BS, BlockFlag.READONLY)
    d.data[:BS] = 7
    vmo = Vmo(np.ones(BS, dtype=np.uint8))
    assert run_op(d, BlockOp(BlockCommand.WRITE, 1, 0, 0, vmo)) is BlockStatus.ACCESS_DENIED
    assert run_op(d, BlockOp(BlockCommand.TRIM, 1, 0)) is BlockStatus.ACCESS_DENIED
    assert read_blocks(d, 0, 1) == bytes([7]) * BS


def test_injected_bad_blocks_complete_io_and_can_be_cleared(disk: RamDisk) -> None:
    disk.inject_io_error(4, 2)
    with pytest.raises(BlockError) as err:
        read_blocks(disk, 3, 2)
    assert err.value.status is BlockStatus.IO
    assert read_blocks(disk, 0, 4) == bytes(4 * BS)
    disk.inject_io_error(4, 2, bad=False)
    assert read_blocks(disk, 3, 2) == bytes(2 * BS)


def test_inject_io_error_outside_the_disk_raises_naming_the_range(disk: RamDisk) -> None:
    with pytest.raises(ValueError, match=r"outside the 64-block disk"):
        disk.inject_io_error(BLOCKS - 1, 2)


def test_flush_completes_ok(disk: RamDisk) -> None:
    flush(disk)


def test_every_op_after_unbind_completes_io_not_present(disk: RamDisk) -> None:
    disk.unbind()
    assert disk.dead
    vmo = Vmo(np.zeros(BS, dtype=np.uint8))
    for op in (BlockOp(BlockCommand.READ, 1, 0, 0, vmo), BlockOp(BlockCommand.WRITE, 1, 0, 0, vmo),
               BlockOp(BlockCommand.FLUSH), BlockOp(BlockCommand.TRIM, 1, 0)):
        assert run_op(disk, op) is BlockStatus.IO_NOT_PRESENT


def test_worker_completes_on_its_own_thread_in_queue_order() -> None:
    d = RamDisk(BLOCKS * BS, BS, worker=True)
    seen: list[tuple[int, str]] = []
    done = threading.Event()
    vmo = Vmo(np.zeros(BS, dtype=np.uint8))

    def completion(status: BlockStatus, op: BlockOp) -> None:
        seen.append((op.cookie, threading.current_thread().name))
        if op.cookie == 9:
            done.set()

    for i in range(9):
        d.queue(BlockOp(BlockCommand.READ, 1, i, 0, vmo, cookie=i), completion)
    d.queue(BlockOp(BlockCommand.FLUSH, cookie=9), completion)
    assert done.wait(5)
    assert [c for c, _ in seen] == list(range(10))
    assert {t for _, t in seen} == {"ramdisk-worker"}
    d.unbind()


def test_unbind_completes_queued_ops_io_not_present() -> None:
    d = RamDisk(BLOCKS * BS, BS, worker=True)
    gate = threading.Event()
    statuses: list[BlockStatus] = []
    all_done = threading.Event()

    def blocking(status: BlockStatus, op: BlockOp) -> None:
        gate.wait(5)

    def record(status: BlockStatus, op: BlockOp) -> None:
        statuses.append(status)
        if len(statuses) == 5:
            all_done.set()

    d.queue(BlockOp(BlockCommand.FLUSH), blocking)  # holds the worker inside a completion
    for i in range(5):
        d.queue(BlockOp(BlockCommand.TRIM, 1, i), record)
    unbinder = threading.Thread(target=d.unbind)
    unbinder.start()
    gate.set()
    unbinder.join(5)
    assert all_done.wait(5)
    assert statuses == [BlockStatus.IO_NOT_PRESENT] * 5


def test_concurrent_queue_from_threads_keeps_every_write(disk: RamDisk) -> None:
    def writer(first: int) -> None:
        for b in range(first, BLOCKS, 4):
            write_blocks(disk, b, bytes([b]) * BS)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    out = read_blocks(disk, 0, BLOCKS)
    assert all(out[b * BS:(b + 1) * BS] == bytes([b]) * BS for b in range(BLOCKS))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"size": 1000, "block_size": 512}, "multiple of block_size"),
    ({"size": 4096, "block_size": 500}, "power of two"),
    ({"size": 4096, "block_size": 512, "max_transfer_size": 100}, "smaller than one"),
])
def test_bad_construction_arguments_raise_naming_the_argument(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RamDisk(**kwargs)


def test_properties_build_the_disk_and_unknown_keys_are_refused() -> None:
    d = ramdisk_from_properties({"size": 8192, "block-size": 4096, "readonly": True, "bootpart": True})
    assert d.query().block_count == 2
    assert d.query().flags == BlockFlag.READONLY | BlockFlag.BOOTPART
    d = ramdisk_from_properties({"size": 8192, "trim": True, "fua": True})
    assert d.query().trim_supported and d.query().fua_supported
    with pytest.raises(ValueError, match=r"unknown properties \['sise'\]"):
        ramdisk_from_properties({"sise": 8192})
    with pytest.raises(ValueError, match="'size' property"):
        ramdisk_from_properties({})


# --- binding through the bus ------------------------------------------------------------------------
@pytest.fixture
def bus() -> Iterator[PlatformBus]:
    board = {"name": "rd-board", "devices": [
        {"name": "rd0", "compatible": "mmiotk,ramdisk",
         "properties": {"size": 64 * BS, "block-size": BS, "removable": True, "worker": True}}]}
    with RamSpace(1 << 16, name="regs") as space:
        platform = PlatformBus.from_board(board, space)
        platform.register_driver(RamDiskDriver)
        yield platform
        platform.close()


def test_bus_binds_the_ramdisk_driver_from_the_board_node(bus: PlatformBus) -> None:
    driver = bus.bind("rd0")
    assert isinstance(driver, RamDiskDriver)
    assert driver.query().block_count == 64
    assert driver.query().flags & BlockFlag.REMOVABLE and not driver.query().flags & BlockFlag.READONLY
    write_blocks(driver, 3, pattern(2))
    assert read_blocks(driver, 3, 2) == pattern(2)


def test_bus_unbind_makes_every_op_io_not_present(bus: PlatformBus) -> None:
    driver = bus.bind("rd0")
    assert isinstance(driver, RamDiskDriver)
    disk = driver.block
    bus.unbind("rd0")
    assert disk is not None and disk.dead
    vmo = Vmo(np.zeros(BS, dtype=np.uint8))
    assert run_op(driver, BlockOp(BlockCommand.READ, 1, 0, 0, vmo)) is BlockStatus.IO_NOT_PRESENT


def test_bad_ramdisk_properties_refuse_the_bind_naming_the_key() -> None:
    board = {"devices": [{"name": "rd1", "compatible": "mmiotk,ramdisk", "properties": {"bogus": 1}}]}
    with RamSpace(1 << 16) as space:
        platform = PlatformBus.from_board(board, space)
        platform.register_driver(RamDiskDriver)
        with pytest.raises(BindError, match="bogus"):
            platform.bind("rd1")


HOLE = ExtentFlag.HOLE | ExtentFlag.ZERO


def test_extents_mark_never_written_and_trimmed_blocks_as_holes(disk: RamDisk) -> None:
    assert disk.extents(0, BLOCKS) == [Extent(0, BLOCKS, HOLE)]
    write_blocks(disk, 4, bytes(4 * BS))  # zeroes written are data: the blocks are allocated
    write_blocks(disk, 20, pattern(8))
    assert run_op(disk, BlockOp(BlockCommand.TRIM, 2, 22)) is BlockStatus.OK
    assert disk.extents(0, BLOCKS) == [Extent(0, 4, HOLE), Extent(4, 4), Extent(8, 12, HOLE), Extent(20, 2),
                                       Extent(22, 2, HOLE), Extent(24, 4), Extent(28, BLOCKS - 28, HOLE)]
    assert disk.extents(21, 2) == [Extent(21, 1), Extent(22, 1, HOLE)]


def test_a_hole_changed_behind_the_protocols_back_counts_as_data(disk: RamDisk) -> None:
    disk.data[10 * BS + 7] = 1
    assert disk.extents(9, 3) == [Extent(9, 1, HOLE), Extent(10, 1), Extent(11, 1, HOLE)]


@pytest.mark.parametrize(("offset", "length"), [(-1, 2), (0, 0), (BLOCKS - 1, 2), (0, 1.5)])
def test_extents_of_a_range_off_the_disk_is_a_value_error(disk: RamDisk, offset: int, length: int) -> None:
    with pytest.raises(ValueError, match=f"outside the {BLOCKS}-block device"):
        disk.extents(offset, length)
