"""cocotb module for the documentation waveform: initialise the device, then one 512-byte read.

WAVE_MARKS names a JSON file that receives the simulated times (ps) at which the request was published
and at which its interrupt was acknowledged. Needs tests/hwsim/vblk on the path (for the test driver).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cocotb
from cocotb.utils import get_sim_time
from vblk_driver import MiniBlk

from hwsim.vblk.env import REGS_BASE, REGS_SIZE, VblkEnv
from mmiotk import CachePolicy


@cocotb.test(timeout_time=10, timeout_unit="ms")
async def one_read(dut):
    """One read returns the sector preloaded on the media; its start and end in simulated time go to
    $WAVE_MARKS for the waveform picture."""
    env = await VblkEnv.create(dut)
    env.media.fill(3, bytes(range(256)) * 2)
    regs = env.resource.create_region(REGS_BASE, REGS_SIZE, "vblk").map(CachePolicy.UNCACHED)
    drv = MiniBlk(regs, env.host, env.alloc, env.irq)

    def body() -> tuple[float, float, bytes]:
        drv.init()
        start = get_sim_time("ps")
        data = drv.read(3)
        return start, get_sim_time("ps"), data

    start, end, data = await env.run(body)
    assert data == bytes(range(256)) * 2
    Path(os.environ["WAVE_MARKS"]).write_text(json.dumps({"start": start, "end": end}))
    env.close()
