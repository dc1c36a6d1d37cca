"""One acknowledged write, then the simulation ends (test_durability.py inspects the image afterwards).

HWSIM_IMAGE names the disk image, HWSIM_MODE is writeback, writethrough or flushed.
"""

from __future__ import annotations

import os

import cocotb
from rtl_helpers import TIMEOUT_MS, make, pattern
from vblk_driver import SECTOR

from hwsim.media import BlockMedia

LBA = 7


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def acknowledged_write_reads_back_then_the_simulation_ends(dut):
    """The write (HWSIM_MODE: writeback, writethrough, or writeback then FLUSH) is acknowledged and reads
    back; test_durability.py then checks what of it is in the image."""
    mode = os.environ["HWSIM_MODE"]
    env, drv = await make(dut, media=BlockMedia(os.environ["HWSIM_IMAGE"]))

    def body():
        drv.init()
        drv.set_writeback(mode != "writethrough")
        drv.write(LBA, pattern(SECTOR, 42))          # acknowledged
        if mode == "flushed":
            drv.flush()
        return drv.read(LBA)

    assert await env.run(body) == pattern(SECTOR, 42)
    env.close()                                      # and the simulation ends here
