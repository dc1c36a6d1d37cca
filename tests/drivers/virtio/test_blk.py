"""The virtio-blk driver's own behaviour: options, completion models, batching, backlog, zero-copy, DMA
syncs on non-coherent memory, threads, unbind. Mostly on the strict behavioural model (fast, and any
register misuse raises there); the IRQ-thread model also on QEMU. The cross-target suite is
tests/conformance."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest

from drivers.block.protocol import (
    BlockCommand,
    BlockFlag,
    BlockOp,
    BlockStatus,
    OpFlag,
    Vmo,
    flush,
    read_blocks,
    run_op,
    write_blocks,
)
from drivers.bus.platform import PlatformBus
from drivers.virtio import VirtioError
from drivers.virtio.blk import VirtioBlk, VirtioBlkDriver
from hwsim.integration.block_targets import bound_virtio_blk, virtio_blk_board
from hwsim.models import ModelSpace, VirtioBlkModel
from mmiotk.bus import BindError

BS = 512
T_OUT, T_FLUSH = 1, 4


@contextmanager
def model_blk(model: VirtioBlkModel | None = None, *, coherent: bool = True,
              properties: dict[str, Any] | None = None, **options: Any) -> Iterator[VirtioBlk]:
    """A VirtioBlk bound through the platform bus to a model device (poll mode unless told otherwise)."""
    model = model if model is not None else VirtioBlkModel(size=1 << 20)
    options.setdefault("completions", "poll")
    with ModelSpace(model, ram_size=16 << 20) as space:
        board = virtio_blk_board(space, "test-board", coherent=coherent, properties=properties)
        with bound_virtio_blk(board, space, space.interrupt, **options) as blk:
            yield blk


def wait_all(blk: VirtioBlk, done: Callable[[], bool], timeout: float = 10.0) -> None:
    for _ in range(10_000):
        if done():
            return
        assert blk.poll(timeout), "no completion within the timeout"
    raise AssertionError("completions never finished")


def data(nblocks: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, nblocks * BS, dtype=np.uint8).tobytes()


def dma_vmo(blk: VirtioBlk, nbytes: int) -> Vmo:
    buf = blk.pool.alloc(nbytes)
    return Vmo(buf, buf.dma_addr)


# --- completion models --------------------------------------------------------------------------------
def test_synchronous_helpers_work_in_poll_mode_through_wait_for() -> None:
    with model_blk() as blk:
        done = threading.Event()
        blk.queue(BlockOp(BlockCommand.FLUSH), lambda s, op: done.set())
        assert blk.wait_for(done, 5.0)
        vmo = dma_vmo(blk, 2 * BS)
        vmo.array[:] = np.frombuffer(data(2), dtype=np.uint8)
        status: list[BlockStatus] = []
        blk.queue(BlockOp(BlockCommand.WRITE, 2, 5, 0, vmo), lambda s, op: status.append(s))
        wait_all(blk, lambda: bool(status))
        assert status == [BlockStatus.OK]


def test_irq_thread_delivers_completions_on_its_own_thread() -> None:
    with model_blk(completions="thread") as blk:
        write_blocks(blk, 3, data(4))
        assert read_blocks(blk, 3, 4) == data(4)
        names: list[str] = []
        done = threading.Event()

        def completion(status: BlockStatus, op: BlockOp) -> None:
            names.append(threading.current_thread().name)
            done.set()

        blk.queue(BlockOp(BlockCommand.READ, 1, 0, 0, dma_vmo(blk, BS)), completion)
        assert done.wait(5)
        assert names == ["blk0.reg0-irq"]


def test_poll_mode_waits_on_the_interrupt_of_a_deferred_device() -> None:
    """A deferred model works only when the driver waits on its IRQ or reads InterruptStatus."""
    with model_blk(VirtioBlkModel(size=1 << 20, deferred=True), spin=0.0) as blk:
        status: list[BlockStatus] = []
        blk.queue(BlockOp(BlockCommand.READ, 1, 0, 0, dma_vmo(blk, BS)), lambda s, op: status.append(s))
        assert blk.poll(0.0) == 0  # nothing happens without waiting
        wait_all(blk, lambda: bool(status))
        assert status == [BlockStatus.OK]


def test_bad_completion_mode_is_refused() -> None:
    with pytest.raises(BindError, match="completions must be 'thread' or 'poll'"), model_blk(completions="sometimes"):
        pass


# --- queueing -----------------------------------------------------------------------------------------
def test_more_ops_than_slots_wait_in_the_backlog_and_all_complete() -> None:
    model = VirtioBlkModel(size=1 << 20, queue_size_max=16, indirect=False)
    with model_blk(model) as blk:
        assert blk.max_in_flight == 5  # 16 descriptors, 3 per request (no indirect tables)
        vmo = dma_vmo(blk, 100 * BS)
        vmo.array[:] = np.frombuffer(data(100), dtype=np.uint8)
        statuses: list[BlockStatus] = []
        for i in range(100):
            blk.queue(BlockOp(BlockCommand.WRITE, 1, i, i, vmo), lambda s, op: statuses.append(s))
        wait_all(blk, lambda: len(statuses) == 100)
        assert set(statuses) == {BlockStatus.OK}
        assert read_blocks_polled(blk, 0, 100) == data(100)


def read_blocks_polled(blk: VirtioBlk, offset: int, count: int) -> bytes:
    vmo = dma_vmo(blk, count * BS)
    status: list[BlockStatus] = []
    blk.queue(BlockOp(BlockCommand.READ, count, offset, 0, vmo), lambda s, op: status.append(s))
    wait_all(blk, lambda: bool(status))
    assert status == [BlockStatus.OK]
    return vmo.array.tobytes()


def test_a_batch_rings_the_doorbell_once() -> None:
    with model_blk() as blk:
        before = blk.vq.notifications
        statuses: list[BlockStatus] = []
        with blk.batch():
            for i in range(10):
                blk.queue(BlockOp(BlockCommand.READ, 1, i, 0, dma_vmo(blk, BS)), lambda s, op: statuses.append(s))
            assert blk.vq.notifications == before
        assert blk.vq.notifications == before + 1
        wait_all(blk, lambda: len(statuses) == 10)


def test_queue_many_rings_once_and_completes_every_op_once_in_order_bad_ones_at_once() -> None:
    with model_blk() as blk:
        vmo = dma_vmo(blk, 8 * BS)
        vmo.array[:] = np.frombuffer(data(8, seed=3), dtype=np.uint8)
        ops = [BlockOp(BlockCommand.WRITE, 1, i, i, vmo) for i in range(8)]
        ops.insert(3, BlockOp(BlockCommand.READ, 1, 1 << 40, 0, vmo))   # off the disk
        ops.insert(6, BlockOp(BlockCommand.WRITE, 99, 0, 0, vmo))       # longer than the Vmo
        ops.append(BlockOp(BlockCommand.FLUSH))
        seen: list[tuple[BlockStatus, BlockOp]] = []
        before = blk.vq.notifications
        blk.queue_many(ops, lambda s, op: seen.append((s, op)))
        assert blk.vq.notifications == before + 1
        # the two bad ones (and the FLUSH of a device without a write cache) completed inside the call, in
        # their order, before anything was reaped
        assert not blk.writeback
        assert seen == [(BlockStatus.OUT_OF_RANGE, ops[3]), (BlockStatus.OUT_OF_RANGE, ops[6]),
                        (BlockStatus.OK, ops[-1])]
        wait_all(blk, lambda: len(seen) == len(ops))
        assert sorted(id(op) for _, op in seen) == sorted(id(op) for op in ops)  # each exactly once
        assert {s for s, op in seen if op not in (ops[3], ops[6])} == {BlockStatus.OK}
        assert read_blocks_polled(blk, 0, 8) == data(8, seed=3)


def test_queue_many_beyond_the_slots_waits_in_the_backlog_and_completes_everything() -> None:
    with model_blk() as blk:
        vmo = dma_vmo(blk, BS)
        ops = [BlockOp(BlockCommand.READ, 1, i % 64, 0, vmo) for i in range(3 * blk.max_in_flight)]
        seen: list[BlockStatus] = []
        blk.queue_many(ops, lambda s, op: seen.append(s))
        assert blk.vq.in_flight == blk.max_in_flight
        wait_all(blk, lambda: len(seen) == len(ops))
        assert set(seen) == {BlockStatus.OK} and blk.vq.in_flight == 0


def test_queue_many_on_a_failed_device_completes_everything_not_present() -> None:
    with model_blk() as blk:
        blk._fail(VirtioError("test: the device is gone"))
        vmo = dma_vmo(blk, BS)
        seen: list[BlockStatus] = []
        blk.queue_many([BlockOp(BlockCommand.READ, 1, i, 0, vmo) for i in range(5)], lambda s, op: seen.append(s))
        assert seen == [BlockStatus.IO_NOT_PRESENT] * 5


def test_a_buffer_that_comes_back_to_its_slot_leaves_the_descriptor_as_it_was(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import drivers.virtio.virtqueue as virtqueue

    written: list[int] = []
    pack = virtqueue._pack_desc
    monkeypatch.setattr(virtqueue, "_pack_desc",
                        lambda table, offset, *v: (written.append(offset), pack(table, offset, *v)))
    with model_blk() as blk:
        vmo = dma_vmo(blk, BS)
        chain = blk._slot_list[0].chain
        assert chain is not None
        seen: list[BlockStatus] = []
        for i in range(blk.max_in_flight + 1):  # every slot once (FIFO), then slot 0 again
            blk.queue(BlockOp(BlockCommand.READ, 1, i, 0, vmo), lambda s, op: seen.append(s))
            wait_all(blk, lambda: blk.vq.in_flight == 0)
        assert written.count(chain.offset) == 1 and len(written) == blk.max_in_flight
        assert (chain.addr, chain.length, chain.flags) == (vmo.dma_addr, BS, 2)
        other = dma_vmo(blk, 2 * BS)
        for _ in range(blk.max_in_flight):  # back to slot 0, another buffer: rewritten
            blk.queue(BlockOp(BlockCommand.READ, 2, 0, 0, other), lambda s, op: seen.append(s))
            wait_all(blk, lambda: blk.vq.in_flight == 0)
        assert written.count(chain.offset) == 2
        assert (chain.addr, chain.length) == (other.dma_addr, 2 * BS)
        assert set(seen) == {BlockStatus.OK}


def test_a_polling_spin_yields_the_cpu_now_and_then(monkeypatch: pytest.MonkeyPatch) -> None:
    import drivers.virtio.device as device

    yields = []
    monkeypatch.setattr(device.os, "sched_yield", lambda: yields.append(1))
    with model_blk(spin=0.05) as blk:
        looks = []
        has_used = blk.vq.has_used
        monkeypatch.setattr(blk.vq, "has_used", lambda: looks.append(1) or has_used())
        assert blk.poll(0.02) == 0  # nothing in flight: spins the whole 20 ms
        assert len(looks) > 16 and len(yields) == (len(looks) - 1) // 8  # the first look is before the spin


def test_ops_queued_from_completions_share_one_doorbell() -> None:
    with model_blk() as blk:
        vmo = dma_vmo(blk, BS)
        left = [30]

        def again(status: BlockStatus, op: BlockOp) -> None:
            left[0] -= 1
            if left[0] > 0:
                blk.queue(op, again)

        with blk.batch():
            for i in range(3):
                blk.queue(BlockOp(BlockCommand.READ, 1, i, 0, vmo), again)
        before = blk.vq.notifications
        wait_all(blk, lambda: left[0] <= 0 and blk.vq.in_flight == 0)
        assert blk.vq.notifications - before < 30


def test_queue_from_several_threads_keeps_every_write() -> None:
    with model_blk(completions="thread") as blk:
        def writer(first: int) -> None:
            for b in range(first, 64, 4):
                write_blocks(blk, b, bytes([b]) * BS)

        threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        out = read_blocks(blk, 0, 64)
        assert all(out[b * BS:(b + 1) * BS] == bytes([b]) * BS for b in range(64))


# --- options ------------------------------------------------------------------------------------------
def test_force_access_write_is_followed_by_a_flush() -> None:
    model = VirtioBlkModel(size=1 << 20, writeback=True)  # a cache to flush
    with model_blk(model, completions="thread") as blk:
        assert blk.writeback
        write_blocks(blk, 0, data(1))
        assert model.requests[T_FLUSH] == 0
        write_blocks(blk, 1, data(1), flags=OpFlag.FORCE_ACCESS)
        assert model.requests[T_FLUSH] == 1
        assert model.media.sector(1) == data(1)  # on the media, not only in the device's cache
        vmo = Vmo(np.frombuffer(data(1, seed=3), dtype=np.uint8).copy())
        op = BlockOp(BlockCommand.WRITE, 1, np.int64(2), 0, vmo, flags=OpFlag.FORCE_ACCESS)  # off the fast path
        assert run_op(blk, op) is BlockStatus.OK
        assert model.requests[T_FLUSH] == 2 and model.media.sector(2) == data(1, seed=3)


def test_writethrough_through_config_wce_turns_the_device_cache_off() -> None:
    model = VirtioBlkModel(size=1 << 20, config_wce=True, writeback=True)
    with model_blk(model, completions="thread", writeback=False) as blk:
        assert not blk.writeback and not blk.emulated_writethrough
        assert model.wce == 0
        write_blocks(blk, 2, data(1))
        flush(blk)
        assert model.requests[T_FLUSH] == 0  # no cache: a FLUSH completes without a request


def test_writethrough_without_config_wce_is_emulated_with_a_flush_per_write() -> None:
    model = VirtioBlkModel(size=1 << 20, config_wce=False, writeback=True)
    with model_blk(model, completions="thread", writeback=False) as blk:
        assert blk.writeback and blk.emulated_writethrough
        for i in range(3):
            write_blocks(blk, i, data(1, i))
        assert model.requests[T_OUT] == 3 and model.requests[T_FLUSH] == 3


def test_readonly_option_denies_writes_on_a_writable_device() -> None:
    with model_blk(completions="thread", readonly=True) as blk:
        assert blk.query().flags & BlockFlag.READONLY
        vmo = dma_vmo(blk, BS)
        assert run_op(blk, BlockOp(BlockCommand.WRITE, 1, 0, 0, vmo)) is BlockStatus.ACCESS_DENIED
        assert run_op(blk, BlockOp(BlockCommand.READ, 1, 0, 0, vmo)) is BlockStatus.OK


def test_blk_size_sets_the_block_size_and_sectors_stay_512_bytes() -> None:
    model = VirtioBlkModel(size=1 << 20, blk_size=4096)
    with model_blk(model, completions="thread") as blk:
        assert (blk.query().block_size, blk.query().block_count) == (4096, 256)
        payload = np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes()
        write_blocks(blk, 3, payload)
        flush(blk)
        assert model.media.sector(24, 8) == payload


def test_trim_without_write_zeroes_is_not_supported() -> None:
    with model_blk(VirtioBlkModel(size=1 << 20, write_zeroes=False), completions="thread") as blk:
        assert not blk.query().trim_supported and blk.query().fua_supported
        assert run_op(blk, BlockOp(BlockCommand.TRIM, 1, 0)) is BlockStatus.NOT_SUPPORTED


def test_options_come_from_board_properties() -> None:
    with model_blk(properties={"readonly": True, "start": 8, "length": 16}) as blk:
        info = blk.query()
        assert info.block_count == 16 and info.flags & BlockFlag.READONLY


@pytest.mark.parametrize(("start", "length"), [(-1, 4), (0, 0), (2040, 16), (0, 4096)])
def test_a_range_outside_the_disk_refuses_the_bind(start: int, length: int) -> None:
    with pytest.raises(BindError, match="is not inside the disk's 2048 blocks"), model_blk(start=start, length=length):
        pass


def test_a_device_of_another_type_is_refused() -> None:
    class NetLike(VirtioBlkModel):
        device_id = 1

    with pytest.raises(BindError, match="device id 1 is not a block device"), model_blk(NetLike(size=1 << 20)):
        pass


def test_writeback_on_a_device_without_a_cache_is_refused() -> None:
    class NoCache(VirtioBlkModel):
        def offered_features(self) -> int:
            return super().offered_features() & ~(1 << 9 | 1 << 11)

    with pytest.raises(BindError, match="neither CONFIG_WCE nor FLUSH"), \
            model_blk(NoCache(size=1 << 20), writeback=True):
        pass


# --- data paths ---------------------------------------------------------------------------------------
def test_dma_able_buffers_are_used_in_place_and_others_bounced() -> None:
    with model_blk(completions="thread") as blk:
        vmo = dma_vmo(blk, 8 * BS)
        vmo.array[:] = np.frombuffer(data(8), dtype=np.uint8)
        assert run_op(blk, BlockOp(BlockCommand.WRITE, 8, 0, 0, vmo)) is BlockStatus.OK
        assert run_op(blk, BlockOp(BlockCommand.READ, 8, 0, 0, vmo)) is BlockStatus.OK
        assert blk.bytes_copied == 0 and blk.zero_copy_ops == 2
        assert read_blocks(blk, 0, 8) == data(8)  # read_blocks uses a plain numpy array: bounced
        assert blk.bytes_copied == 8 * BS


def test_non_coherent_dma_memory_is_synced_both_ways() -> None:
    """With a non-coherent pool the CPU works on a shadow; only correct syncs make data and rings work."""
    model = VirtioBlkModel(size=1 << 20)
    with model_blk(model, coherent=False, completions="thread") as blk:
        assert not blk.pool.coherent
        vmo = dma_vmo(blk, 4 * BS)
        vmo.array[:] = np.frombuffer(data(4, 3), dtype=np.uint8)
        assert run_op(blk, BlockOp(BlockCommand.WRITE, 4, 10, 0, vmo)) is BlockStatus.OK
        vmo.array[:] = 0
        assert run_op(blk, BlockOp(BlockCommand.READ, 4, 10, 0, vmo)) is BlockStatus.OK
        assert vmo.array.tobytes() == data(4, 3)
        write_blocks(blk, 20, data(2, 4))  # bounced path
        assert read_blocks(blk, 20, 2) == data(2, 4)


def test_a_transfer_larger_than_max_transfer_is_out_of_range() -> None:
    with model_blk(completions="thread", max_transfer=8 * BS) as blk:
        assert blk.query().max_transfer_size == 8 * BS
        vmo = dma_vmo(blk, 9 * BS)
        assert run_op(blk, BlockOp(BlockCommand.READ, 9, 0, 0, vmo)) is BlockStatus.OUT_OF_RANGE
        assert run_op(blk, BlockOp(BlockCommand.READ, 8, 0, 0, vmo)) is BlockStatus.OK


def test_device_io_error_completes_io() -> None:
    class Failing(VirtioBlkModel):
        def handle(self, segments: Any) -> int:
            if self.requests[1] >= 1:
                raise_status = segments[-1]
                self.memory.write(raise_status.addr + raise_status.length - 1, b"\x01")
                return 1
            return super().handle(segments)

    with model_blk(Failing(size=1 << 20), completions="thread") as blk:
        write_blocks(blk, 0, data(1))
        vmo = dma_vmo(blk, BS)
        assert run_op(blk, BlockOp(BlockCommand.WRITE, 1, 0, 0, vmo)) is BlockStatus.IO


# --- unbind -------------------------------------------------------------------------------------------
def test_unbind_completes_in_flight_and_queued_ops_io_not_present() -> None:
    model = VirtioBlkModel(size=1 << 20, deferred=True, queue_size_max=16)
    with model_blk(model) as blk:
        statuses: list[BlockStatus] = []
        vmo = dma_vmo(blk, BS)
        for i in range(12):  # 5 in flight, 7 in the backlog; the deferred device runs none of them
            blk.queue(BlockOp(BlockCommand.READ, 1, i, 0, vmo), lambda s, op: statuses.append(s))
        blk.unbind()
        assert statuses == [BlockStatus.IO_NOT_PRESENT] * 12
        assert model.status == 0  # the device was reset: it no longer owns the rings
        blk.queue(BlockOp(BlockCommand.FLUSH), lambda s, op: statuses.append(s))
        assert statuses[-1] is BlockStatus.IO_NOT_PRESENT


def test_bus_unbind_releases_the_dma_buffers() -> None:
    with ModelSpace(VirtioBlkModel(size=1 << 20), ram_size=16 << 20) as space:
        bus = PlatformBus.from_board(virtio_blk_board(space, "test-board"), space, irq_factory=space.interrupt)
        bus.register_driver(VirtioBlkDriver, lambda: VirtioBlkDriver(completions="thread"))
        driver = bus.bind("blk0")
        assert isinstance(driver, VirtioBlkDriver)
        write_blocks(driver, 0, data(1))
        assert read_blocks(driver, 0, 1) == data(1)
        pool = bus.devices["blk0"].dma_pool()
        assert pool.buffers >= 2
        bus.unbind("blk0")
        assert "DMA buffers freed by the bus" not in bus.log[-1]
        assert run_op(driver, BlockOp(BlockCommand.FLUSH)) is BlockStatus.IO_NOT_PRESENT
        bus.close()


# --- QEMU --------------------------------------------------------------------------------------------
def test_irq_thread_completes_writes_and_reads_on_qemu(tmp_path: Any) -> None:
    from hwsim.qemu import QemuSpace

    with QemuSpace(disk_size=1 << 20, ram_size=32 << 20) as space:
        bus = PlatformBus.from_board(virtio_blk_board(space, "test-board"), space, irq_factory=space.irq_factory)
        bus.register_driver(VirtioBlkDriver, lambda: VirtioBlkDriver(completions="thread"))
        driver = bus.bind("blk0")
        try:
            write_blocks(driver, 7, data(2, 9))
            flush(driver)
            assert read_blocks(driver, 7, 2) == data(2, 9)
        finally:
            bus.close()


# --- ring features, topology, legacy ------------------------------------------------------------------
def test_trim_is_write_zeroes_with_the_header_sector_zero() -> None:
    """The model refuses (IOERR) a WRITE_ZEROES whose header sector is not 0 (§5.2.6); the range is in the
    segment."""
    model = VirtioBlkModel(size=1 << 20)
    with model_blk(model, completions="thread") as blk:
        assert blk.query().trim_supported
        write_blocks(blk, 8, data(4))
        assert run_op(blk, BlockOp(BlockCommand.TRIM, 2, 9)) is BlockStatus.OK
        assert read_blocks(blk, 8, 4) == data(4)[:BS] + bytes(2 * BS) + data(4)[3 * BS:]
        assert model.requests[13] == 1


def test_reads_and_writes_use_each_slots_reserved_chain_and_other_requests_the_free_list() -> None:
    model = VirtioBlkModel(size=1 << 20)
    with model_blk(model, writeback=True) as blk:
        vq = blk.vq
        reserved = 3 * blk.max_in_flight
        assert vq.num_free == vq.size - reserved  # header, data, status of every slot, written once
        write_blocks(blk, 3, data(8))
        assert read_blocks(blk, 3, 8) == data(8)
        flush(blk)
        assert run_op(blk, BlockOp(BlockCommand.TRIM, 1, 3)) is BlockStatus.OK
        assert model.requests[T_FLUSH] == 1 and model.requests[13] == 1  # on chains from the free list
        assert read_blocks(blk, 3, 2) == bytes(BS) + data(8)[BS:2 * BS]
        assert vq.num_free == vq.size - reserved and vq.in_flight == 0
    with model_blk(VirtioBlkModel(size=1 << 20), queue_size=16) as blk:  # no room beside them: none reserved
        assert blk.vq.num_free == 16
        write_blocks(blk, 0, data(2))
        assert read_blocks(blk, 0, 2) == data(2)


def test_long_chains_go_through_an_indirect_table_when_offered() -> None:
    """A chain longer than indirect_threshold takes one ring descriptor; data is right either way."""
    with model_blk(VirtioBlkModel(size=1 << 20), completions="thread", indirect_threshold=2) as blk:
        assert blk.dev.has(28)
        write_blocks(blk, 3, data(8))
        assert read_blocks(blk, 3, 8) == data(8)
        assert blk.vq.indirect_chains == 2
    with model_blk(VirtioBlkModel(size=1 << 20, indirect=False), completions="thread",
                   indirect_threshold=2) as blk:
        write_blocks(blk, 3, data(8))
        assert read_blocks(blk, 3, 8) == data(8) and blk.vq.indirect_chains == 0
    with model_blk(VirtioBlkModel(size=1 << 20), completions="thread") as blk:   # 3 segments: direct
        write_blocks(blk, 3, data(8))
        assert blk.vq.indirect_chains == 0


def test_topology_is_reported_in_block_info() -> None:
    model = VirtioBlkModel(size=1 << 20, physical_block_exp=3, alignment_offset=1, min_io_size=8, opt_io_size=64)
    with model_blk(model, completions="thread") as blk:
        info = blk.query()
        assert (info.physical_block_size, info.alignment_offset, info.min_io_size, info.opt_io_size) == (
            4096, 512, 4096, 32768)
    with model_blk(VirtioBlkModel(size=1 << 20, topology=False), completions="thread") as blk:
        info = blk.query()
        assert (info.physical_block_size, info.min_io_size) == (0, 0)


def test_a_legacy_device_binds_and_serves_requests() -> None:
    model = VirtioBlkModel(size=1 << 20, legacy=True)
    with model_blk(model, completions="thread", writeback=True) as blk:
        assert blk.dev.legacy and not blk.dev.has(32)
        write_blocks(blk, 5, data(3))
        assert read_blocks(blk, 5, 3) == data(3)
        assert blk.writeback and model.wce == 1          # CONFIG_WCE works without FEATURES_OK
        flush(blk)
        assert model.media.sector(5, 3) == data(3)


def test_event_idx_is_negotiated_when_offered_and_irq_driven_io_completes_with_it() -> None:
    """EVENT_IDX offered: negotiated, interrupts asked for through used_event (the IRQ thread gets every
    completion); not offered: the flags are used and there is no used_event to set."""
    with model_blk(VirtioBlkModel(size=1 << 20), completions="thread") as blk:
        assert blk.dev.has(29) and blk.vq.event_idx
        write_blocks(blk, 3, data(8))
        assert read_blocks(blk, 3, 8) == data(8)
        assert blk.vq.avail_event == blk.vq.avail_published
    with model_blk(VirtioBlkModel(size=1 << 20, event_idx=False), completions="thread") as blk:
        assert not blk.dev.has(29) and not blk.vq.event_idx
        write_blocks(blk, 3, data(8))
        assert read_blocks(blk, 3, 8) == data(8)
        with pytest.raises(VirtioError, match="used_event needs VIRTIO_F_EVENT_IDX"):
            blk.vq.set_used_event(0)
