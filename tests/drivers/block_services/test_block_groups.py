"""Block FIFO semantics as Fuchsia's block server defines them: groups that fail stop issuing their items,
items sent to a completing group fail it, GROUP_LAST alone is an ordinary request, PRE_BARRIER flushes
before the write (and holds later requests), FORCE_ACCESS applies to reads and writes and not to TRIM,
and the status codes Fuchsia uses."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from drivers.block.protocol import BlockCommand, BlockFlag, BlockInfo, BlockOp, BlockStatus, Completion, OpFlag
from drivers.block.ramdisk import RamDisk
from drivers.block_services.client import BlockClient
from drivers.block_services.fifo import FifoFlag, FifoOp, Request, Response, ZxStatus
from drivers.block_services.server import BlockServer

from .block_helpers import BLOCKS, BS, Recorder

Serve = Callable[..., BlockServer]
ITEM, LAST = FifoFlag.GROUP_ITEM, FifoFlag.GROUP_ITEM | FifoFlag.GROUP_LAST


class FailingFlush(Recorder):
    """Records ops; every FLUSH fails with IO (a device whose cache cannot be written back)."""

    def queue(self, op: BlockOp, completion: Completion) -> None:
        if op.command is BlockCommand.FLUSH:
            self.ops.append(op)
            completion(BlockStatus.IO, op)
            return
        super().queue(op, completion)


@pytest.fixture
def rec(ramdisk: RamDisk) -> Recorder:
    return Recorder(ramdisk)


@pytest.fixture
def client(serve: Serve, rec: Recorder) -> Iterator[BlockClient]:
    with BlockClient(serve(rec).path, timeout=5) as blk:
        yield blk


def commands(rec: Recorder) -> list[BlockCommand]:
    return [op.command for op in rec.ops]


def test_after_an_item_fails_the_later_items_of_its_group_are_not_issued(client: BlockClient, rec: Recorder,
                                                                        ramdisk: RamDisk) -> None:
    buf = client.attach(4 * BS)
    buf.array[:] = 0x77
    reqs = [Request(FifoOp.WRITE, ITEM, 1, 4, buf.vmoid, 1, 0, BLOCKS),  # past the end: the group fails
            Request(FifoOp.WRITE, ITEM, 2, 4, buf.vmoid, 1, 1, 10),
            Request(FifoOp.WRITE, LAST, 3, 4, buf.vmoid, 1, 2, 11)]
    assert client.transact(reqs) == [Response(ZxStatus.OUT_OF_RANGE, 3, 4, 3)]
    assert rec.ops == [] and not ramdisk.data.any()
    client.write(buf, 20, 1)  # the group answered, the session is fine
    assert (ramdisk.data[20 * BS:21 * BS] == 0x77).all()


def test_a_device_failure_skips_the_rest_of_the_group_and_the_response_carries_it(
        client: BlockClient, rec: Recorder, ramdisk: RamDisk) -> None:
    ramdisk.inject_io_error(5, 1)
    buf = client.attach(4 * BS)
    reqs = [Request(FifoOp.READ, ITEM, 1, 2, buf.vmoid, 1, 0, 4),
            Request(FifoOp.READ, ITEM, 2, 2, buf.vmoid, 1, 1, 5),  # the device fails it
            Request(FifoOp.READ, ITEM, 3, 2, buf.vmoid, 1, 2, 6),
            Request(FifoOp.READ, LAST, 4, 2, buf.vmoid, 1, 3, 7)]
    assert client.transact(reqs) == [Response(ZxStatus.IO, 4, 2, 4)]
    assert [op.offset_dev for op in rec.ops] == [4, 5]  # items 3 and 4 never reached the device


@pytest.mark.parametrize("late_flags", [ITEM, LAST], ids=["item", "second-last"])
def test_an_item_sent_to_a_completing_group_fails_it_and_gets_no_response_of_its_own(
        client: BlockClient, rec: Recorder, late_flags: FifoFlag) -> None:
    buf = client.attach(4 * BS)
    other = client.attach(BS)
    rec.hold()
    client.send([Request(FifoOp.READ, ITEM, 101, 3, buf.vmoid, 1, 0, 0),
                 Request(FifoOp.READ, LAST, 102, 3, buf.vmoid, 1, 1, 1)])  # held in the device: completing
    client.send([Request(FifoOp.READ, late_flags, 103, 3, buf.vmoid, 1, 2, 2)])
    close = Request(FifoOp.CLOSE_VMO, 0, 104, 0, other.vmoid)  # answered without the device
    assert client.transact([close]) == [Response(ZxStatus.OK, 104, 0, 1)]
    assert client.unexpected == []  # nothing for the late item
    rec.release()
    assert client.recv() == [Response(ZxStatus.INVALID_ARGS, 102, 3, 3)]
    assert len(rec.ops) == 2  # the late item was never issued
    client.read(buf, 0, 1)
    assert client.unexpected == []


def test_group_last_without_group_item_is_an_ordinary_request(client: BlockClient, ramdisk: RamDisk) -> None:
    ramdisk.data[9 * BS:10 * BS] = 0x3C
    buf = client.attach(BS)
    assert client.transact([Request(FifoOp.READ, FifoFlag.GROUP_LAST, 5, 6, buf.vmoid, 1, 0, 9)]) == \
        [Response(ZxStatus.OK, 5, 0, 1)]
    assert (buf.array == 0x3C).all()


def test_a_group_id_past_the_limit_fails_io_and_only_its_last_item_is_answered(client: BlockClient,
                                                                              rec: Recorder) -> None:
    buf = client.attach(BS)
    reqs = [Request(FifoOp.READ, ITEM, 1, 8, buf.vmoid, 1, 0, 0),
            Request(FifoOp.READ, LAST, 2, 8, buf.vmoid, 1, 0, 0)]
    assert client.transact(reqs) == [Response(ZxStatus.IO, 2, 8, 1)]
    client.flush()
    assert client.unexpected == [] and commands(rec) == [BlockCommand.FLUSH]


# --- PRE_BARRIER ------------------------------------------------------------------------------------------
def test_pre_barrier_flushes_before_the_write(client: BlockClient, rec: Recorder, ramdisk: RamDisk) -> None:
    buf = client.attach(BS)
    buf.array[:] = 0x42
    assert client.transact([Request(FifoOp.WRITE, FifoFlag.PRE_BARRIER, 1, 0, buf.vmoid, 1, 0, 30)]) == \
        [Response(ZxStatus.OK, 1, 0, 1)]
    assert commands(rec) == [BlockCommand.FLUSH, BlockCommand.WRITE]
    assert (ramdisk.data[30 * BS:31 * BS] == 0x42).all()


def test_a_barrier_waits_for_earlier_requests_and_later_ones_wait_for_its_flush(client: BlockClient,
                                                                               rec: Recorder) -> None:
    buf = client.attach(3 * BS)
    rec.hold()
    client.send([Request(FifoOp.WRITE, 0, 101, 0, buf.vmoid, 1, 0, 1)])  # in flight (held by the device)
    client.send([Request(FifoOp.WRITE, FifoFlag.PRE_BARRIER, 102, 0, buf.vmoid, 1, 1, 2),
                 Request(FifoOp.WRITE, 0, 103, 0, buf.vmoid, 1, 2, 3)])
    deadline = time.monotonic() + 10
    while client.stats()["requests"] < 3:
        assert time.monotonic() < deadline, "the server did not take the three requests"
        time.sleep(0.01)
    assert [(op.command, op.offset_dev) for op in rec.ops] == [(BlockCommand.WRITE, 1)]  # the others wait
    rec.release()
    got = client.recv()
    while len(got) < 3:
        got += client.recv()
    assert sorted(got) == [Response(ZxStatus.OK, r, 0, 1) for r in (101, 102, 103)]
    assert [(op.command, op.offset_dev) for op in rec.ops] == [
        (BlockCommand.WRITE, 1), (BlockCommand.FLUSH, 0), (BlockCommand.WRITE, 2), (BlockCommand.WRITE, 3)]


def test_a_barrier_whose_flush_fails_fails_the_write_without_issuing_it(serve: Serve, ramdisk: RamDisk) -> None:
    rec = FailingFlush(ramdisk)
    with BlockClient(serve(rec).path, timeout=5) as blk:
        buf = blk.attach(2 * BS)
        buf.array[:] = 0x11
        reqs = [Request(FifoOp.WRITE, FifoFlag.PRE_BARRIER, 1, 0, buf.vmoid, 1, 0, 40),
                Request(FifoOp.WRITE, 0, 2, 0, buf.vmoid, 1, 1, 41)]
        assert blk.transact(reqs) == [Response(ZxStatus.IO, 1, 0, 1), Response(ZxStatus.OK, 2, 0, 1)]
    assert commands(rec) == [BlockCommand.FLUSH, BlockCommand.WRITE]
    assert not ramdisk.data[40 * BS:41 * BS].any() and (ramdisk.data[41 * BS:42 * BS] == 0x11).all()


# --- FORCE_ACCESS -----------------------------------------------------------------------------------------
def fua_recorder(ramdisk: RamDisk, flags: BlockFlag) -> Recorder:
    info = ramdisk.query()
    return Recorder(ramdisk, BlockInfo(info.block_count, info.block_size, flags=flags))


def test_force_access_read_with_fua_carries_the_flag_to_the_device(serve: Serve, ramdisk: RamDisk) -> None:
    rec = fua_recorder(ramdisk, BlockFlag.FUA_SUPPORT)
    with BlockClient(serve(rec).path, timeout=5) as blk:
        buf = blk.attach(BS)
        blk.transact([Request(FifoOp.READ, FifoFlag.FORCE_ACCESS, 1, 0, buf.vmoid, 1, 0, 0)])
    assert [(op.command, op.flags) for op in rec.ops] == [(BlockCommand.READ, OpFlag.FORCE_ACCESS)]


def test_force_access_read_without_fua_flushes_the_cache_before_reading(serve: Serve, ramdisk: RamDisk) -> None:
    ramdisk.data[3 * BS:4 * BS] = 0x99
    rec = Recorder(ramdisk)
    with BlockClient(serve(rec).path, timeout=5) as blk:
        buf = blk.attach(BS)
        assert blk.transact([Request(FifoOp.READ, FifoFlag.FORCE_ACCESS, 1, 0, buf.vmoid, 1, 0, 3)]) == \
            [Response(ZxStatus.OK, 1, 0, 1)]
        assert (buf.array == 0x99).all()
    assert [(op.command, op.flags) for op in rec.ops] == [(BlockCommand.FLUSH, OpFlag.NONE),
                                                          (BlockCommand.READ, OpFlag.NONE)]


@pytest.mark.parametrize("fua", [False, True], ids=["emulated", "native"])
def test_force_access_does_not_apply_to_trim(serve: Serve, ramdisk: RamDisk, fua: bool) -> None:
    rec = fua_recorder(ramdisk, BlockFlag.TRIM_SUPPORT | (BlockFlag.FUA_SUPPORT if fua else BlockFlag.NONE))
    with BlockClient(serve(rec).path, timeout=5) as blk:
        assert blk.transact([Request(FifoOp.TRIM, FifoFlag.FORCE_ACCESS, 1, 0, 0, 2, 0, 8)]) == \
            [Response(ZxStatus.OK, 1, 0, 1)]
    assert [(op.command, op.flags) for op in rec.ops] == [(BlockCommand.TRIM, OpFlag.NONE)]


def test_a_group_with_force_access_and_a_barrier_keeps_both(serve: Serve, ramdisk: RamDisk) -> None:
    rec = Recorder(ramdisk)
    with BlockClient(serve(rec).path, timeout=5) as blk:
        buf = blk.attach(3 * BS)
        buf.array[:] = np.arange(3 * BS, dtype=np.uint8)
        reqs = [Request(FifoOp.WRITE, ITEM, 1, 1, buf.vmoid, 1, 0, 0),
                Request(FifoOp.WRITE, ITEM | FifoFlag.PRE_BARRIER | FifoFlag.FORCE_ACCESS, 2, 1, buf.vmoid, 1, 1, 1),
                Request(FifoOp.WRITE, LAST, 3, 1, buf.vmoid, 1, 2, 2)]
        assert blk.transact(reqs) == [Response(ZxStatus.OK, 3, 1, 3)]
    ops = [(op.command, op.offset_dev) for op in rec.ops]
    # the barrier's flush after item 1, then its write; its FORCE_ACCESS flush and item 3 in either order
    assert ops[:3] == [(BlockCommand.WRITE, 0), (BlockCommand.FLUSH, 0), (BlockCommand.WRITE, 1)]
    assert sorted(ops[3:]) == [(BlockCommand.WRITE, 2), (BlockCommand.FLUSH, 0)]
    assert np.array_equal(ramdisk.data[:3 * BS], buf.array)
