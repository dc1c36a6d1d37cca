"""bench_block.py's RTL side: the same measurement inside one cocotb simulation of the block controller.

The driver runs in the bridge's greenlet exactly as on the other targets; requests per second are wall
clock, so they say how fast the simulator runs the whole stack. Results go to $BENCH_BLOCK_OUT as JSON.
"""

from __future__ import annotations

import json
import os
from typing import Any

import cocotb
from bench_block import bind, dma_vmos, measure

from drivers.block.protocol import BlockCommand
from hwsim.media import SECTOR, BlockMedia
from hwsim.vblk.env import HOST_BASE, HOST_SIZE, REGS_BASE, REGS_SIZE, VblkEnv

DISK_SECTORS = 8192  # 4 MiB


@cocotb.test(timeout_time=60_000, timeout_unit="ms")
async def bench(dut: Any) -> None:
    """Reads and writes at QD1 and QD16 on the RTL through the bound VirtioBlk all complete; the counts and
    times go to $BENCH_BLOCK_OUT."""
    env = await VblkEnv.create(dut, media=BlockMedia(size=DISK_SECTORS * SECTOR))
    requests = int(os.environ.get("BENCH_BLOCK_REQUESTS", "64"))
    board = {"name": "rtl-bench", "memory": {"base": HOST_BASE, "size": HOST_SIZE},
             "devices": [{"name": "blk0", "compatible": "virtio,mmio", "reg": [[REGS_BASE, REGS_SIZE]],
                          "interrupts": [0]}]}

    def body() -> list[tuple[str, int, int, float]]:
        bus, blk = bind(board, env.space, lambda number: env.irq, memory=env.ram)
        try:
            vmos = dma_vmos(blk, 16)
            out = []
            for command in (BlockCommand.READ, BlockCommand.WRITE):
                for depth in (1, 16):
                    n, t = measure(blk, command, depth, count=requests, vmos=vmos, poll=blk.poll)
                    out.append((command.name.lower(), depth, n, t))
            return out
        finally:
            bus.close()

    try:
        results = await env.run(body)
    finally:
        env.close()
    with open(os.environ["BENCH_BLOCK_OUT"], "w") as f:
        json.dump(results, f)
