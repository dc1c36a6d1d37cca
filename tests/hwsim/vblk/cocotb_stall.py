"""The fault suite's "simulator stalled" on the RTL (issue 16): the real virtio-blk driver bound to the
controller under cocotb, then the simulation stalls under it. The requests it touched end in clear errors
within a bound, the requests before were served, and a fresh device on the same simulation works after.

Two stalls: the device's host memory and media stop answering (stall = 255: it stops mid-request while its
registers still answer), and the register bus itself stops answering (the HDL master's port handed to an
external master that never drives it, as a hung interconnect would leave it).
"""

from __future__ import annotations

import time
from typing import Any

import cocotb
import numpy as np
from cocotb.handle import Immediate

from drivers.block.protocol import BlockCommand, BlockOp, BlockStatus, Vmo, read_blocks, write_blocks
from hwsim.integration.block_targets import bound_virtio_blk
from hwsim.vblk.env import HOST_BASE, HOST_SIZE, REGS_BASE, REGS_SIZE, VblkEnv

SECTOR = 512
BOUND_S = 30.0          # wall-clock seconds the stalled requests may take to end (fails the test past it)
BOARD = {"name": "stall-rtl", "memory": {"base": HOST_BASE, "size": HOST_SIZE},
         "devices": [{"name": "blk0", "compatible": "virtio,mmio", "reg": [[REGS_BASE, REGS_SIZE]],
                      "interrupts": [0]}]}


def stalled_requests(blk: Any, stall: Any, n: int = 8) -> list[BlockStatus]:
    """Serve a write and a read, stall the simulation, queue `n` reads; every completion, polled for
    within BOUND_S (each read must complete exactly once)."""
    write_blocks(blk, 3, b"\x5a" * SECTOR, timeout=10)
    assert read_blocks(blk, 3, 1, timeout=10) == b"\x5a" * SECTOR     # it works before the stall
    stall()
    seen: dict[int, list[BlockStatus]] = {}
    ops = [BlockOp(BlockCommand.READ, 1, i, 0, Vmo(np.zeros(SECTOR, dtype=np.uint8))) for i in range(n)]
    for op in ops:
        blk.queue(op, lambda status, op: seen.setdefault(id(op), []).append(BlockStatus(status)))
    deadline = time.monotonic() + BOUND_S
    while len(seen) < n:
        assert time.monotonic() < deadline, f"{n - len(seen)} of {n} requests never completed in {BOUND_S} s"
        blk.poll(0.001)
    assert all(len(seen[id(op)]) == 1 for op in ops), "a request completed more than once"
    return [seen[id(op)][0] for op in ops]


async def still_works(dut: Any) -> None:
    """A fresh hardware reset and a fresh driver on the same simulation: a write reads back."""
    env = await VblkEnv.create(dut)

    def io() -> bytes:
        with bound_virtio_blk(BOARD, env.space, lambda number: env.irq, memory=env.ram) as blk:
            write_blocks(blk, 7, b"\x33" * SECTOR, timeout=10)
            return read_blocks(blk, 7, 1, timeout=10)

    try:
        assert await env.run(io) == b"\x33" * SECTOR
    finally:
        env.close()


@cocotb.test(timeout_time=200, timeout_unit="ms")
async def a_device_stalled_mid_request_fails_its_requests_after_the_request_timeout(dut):
    """Memory and media stop answering: no request completes, so after request_timeout (1 s) the driver
    fails the device and all 8 queued reads complete IO_NOT_PRESENT; the failure names the stall."""
    env = await VblkEnv.create(dut)

    def io() -> tuple[list[BlockStatus], str]:
        with bound_virtio_blk(BOARD, env.space, lambda number: env.irq, memory=env.ram,
                              request_timeout=1.0) as blk:
            statuses = stalled_requests(blk, lambda: setattr(dut.stall, "value", Immediate(255)))
            return statuses, f"{type(blk.failure).__name__}: {blk.failure}"

    try:
        statuses, failure = await env.run(io)
    finally:
        env.close()
    assert statuses == [BlockStatus.IO_NOT_PRESENT] * 8
    assert "no request completed for 1.0 s" in failure, failure
    await still_works(dut)


@cocotb.test(timeout_time=200, timeout_unit="ms")
async def a_register_bus_that_stops_answering_fails_the_device_with_a_bus_error(dut):
    """The bus stops answering: the doorbell write gets no answer, the HDL master's watchdog raises
    BusError after 1 ms of simulated time, the device is failed, all 8 reads complete IO_NOT_PRESENT, and
    the unbind (whose reset cannot reach the device either) still ends cleanly."""
    env = await VblkEnv.create(dut)

    def io() -> tuple[list[BlockStatus], str]:
        with bound_virtio_blk(BOARD, env.space, lambda number: env.irq, memory=env.ram) as blk:
            statuses = stalled_requests(blk, lambda: setattr(dut.bus_sel, "value", Immediate(1)))
            return statuses, f"{type(blk.failure).__name__}: {blk.failure}"

    try:
        statuses, failure = await env.run(io)
    finally:
        env.close()
    assert statuses == [BlockStatus.IO_NOT_PRESENT] * 8
    assert failure.startswith("BusError: AXI4-Lite write at 0x10000050, width 32 bits: no answer within "
                              "1000000 ns of simulated time"), failure
    await still_works(dut)
