"""PostedBlockDevice on the RTL: the real virtio-blk driver bound in the bridge's greenlet, queued on from
other threads (as the ublk server's queue thread does), its pump delivering the completions. Writes from
several threads at once read back from the media, every op completes exactly once, and ops posted after
`close()` fail at once instead of waiting for a pump that is gone."""

from __future__ import annotations

import threading
import time
from typing import Any

import cocotb
import numpy as np

from drivers.block.protocol import BlockCommand, BlockOp, BlockStatus, Vmo
from hwsim.integration.block_targets import bound_virtio_blk
from hwsim.integration.posted_block import PostedBlockDevice
from hwsim.vblk.env import HOST_BASE, HOST_SIZE, REGS_BASE, REGS_SIZE, VblkEnv

SECTOR = 512
BOUND_S = 60.0  # wall-clock seconds every op may take to complete
BOARD = {"name": "posted-rtl", "memory": {"base": HOST_BASE, "size": HOST_SIZE},
         "devices": [{"name": "blk0", "compatible": "virtio,mmio", "reg": [[REGS_BASE, REGS_SIZE]],
                      "interrupts": [0]}]}


class Collected:
    """Completions by op, from whatever thread delivers them; `wait` until `n` ops have one."""

    def __init__(self) -> None:
        self.seen: dict[int, list[BlockStatus]] = {}
        self.threads: set[str] = set()
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)

    def __call__(self, status: BlockStatus, op: BlockOp) -> None:
        with self.cond:
            self.seen.setdefault(id(op), []).append(BlockStatus(status))
            self.threads.add(threading.current_thread().name)
            self.cond.notify_all()

    def wait(self, n: int) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.seen) >= n, BOUND_S), f"{len(self.seen)} of {n} completed"


async def run_posted(dut: Any, body: Any) -> Any:
    env = await VblkEnv.create(dut, media_sectors=4096)

    def serve() -> Any:
        with bound_virtio_blk(BOARD, env.space, lambda number: env.irq, memory=env.ram, spin=0.0) as blk:
            device = PostedBlockDevice(blk)
            done = threading.Event()
            outcome: dict[str, Any] = {}

            def client() -> None:
                try:
                    outcome["value"] = body(device, env)
                except BaseException as exc:
                    outcome["error"] = exc
                finally:
                    done.set()

            thread = threading.Thread(target=client, name="posted-client")
            thread.start()
            try:
                device.pump(done.is_set)
            finally:
                device.close()
                thread.join(BOUND_S)
            if "error" in outcome:
                raise outcome["error"]
            return device, outcome.get("value")

    try:
        return await env.run(serve)
    finally:
        env.close()


@cocotb.test()
async def writes_queued_from_threads_read_back_and_complete_once(dut: Any) -> None:
    threads, per_thread, blocks = 4, 8, 2

    def body(device: PostedBlockDevice, env: VblkEnv) -> tuple[Collected, list[BlockOp]]:
        pool = device.pool
        assert pool is not None
        writes: list[BlockOp] = []
        for t in range(threads):
            for i in range(per_thread):
                buf = pool.alloc(blocks * SECTOR, 4096)
                buf[:] = np.uint8(16 * t + i + 1)
                writes.append(BlockOp(BlockCommand.WRITE, blocks, (t * per_thread + i) * blocks, 0,
                                      Vmo(buf, buf.dma_addr)))
        collected = Collected()
        queuers = [threading.Thread(target=lambda t=t: [device.queue(op, collected) for op in
                                                        writes[t * per_thread:(t + 1) * per_thread]])
                   for t in range(threads)]
        for q in queuers:
            q.start()
        for q in queuers:
            q.join(BOUND_S)
        collected.wait(len(writes))
        flush = BlockOp(BlockCommand.FLUSH)
        device.queue(flush, collected)
        collected.wait(len(writes) + 1)
        reads = [BlockOp(BlockCommand.READ, blocks, op.offset_dev, 0, Vmo(np.zeros(blocks * SECTOR, np.uint8)))
                 for op in writes]
        for op in reads:
            device.queue(op, collected)
        collected.wait(2 * len(writes) + 1)
        for write, read in zip(writes, reads, strict=True):
            assert np.array_equal(read.vmo.array, write.vmo.array), f"block {write.offset_dev} read back wrong"
        time.sleep(0.2)  # a late second completion would show up now
        return collected, [*writes, flush, *reads]

    device, (collected, ops) = await run_posted(dut, body)
    assert all(collected.seen[id(op)] == [BlockStatus.OK] for op in ops), "an op did not complete exactly once, OK"
    assert collected.threads == {threading.main_thread().name}  # delivered by the pump, on the simulator's thread
    assert device.posted == device.completed == len(ops)
    assert device.counts == {"WRITE": threads * per_thread, "FLUSH": 1, "READ": threads * per_thread}


@cocotb.test()
async def ops_posted_after_close_fail_at_once(dut: Any) -> None:
    def body(device: PostedBlockDevice, env: VblkEnv) -> None:
        return None

    device, _ = await run_posted(dut, body)
    collected = Collected()
    op = BlockOp(BlockCommand.READ, 1, 0, 0, Vmo(np.zeros(SECTOR, np.uint8)))
    device.queue(op, collected)  # the pump has ended and the driver is unbound: nobody would deliver it
    assert collected.seen == {id(op): [BlockStatus.IO_NOT_PRESENT]}
    assert device.posted == device.completed == 0
