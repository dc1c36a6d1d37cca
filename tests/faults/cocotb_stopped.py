"""A simulation that the fault suite stops with SIGSTOP (test_faults.py): it says its PID, then runs on."""

from __future__ import annotations

import os
import time
from pathlib import Path

import cocotb
from cocotb.triggers import Timer


@cocotb.test()
async def runs_until_stopped(dut):
    """Writes the simulator's PID where the test asks, then keeps simulated time moving for 120 s."""
    Path(os.environ["STOPPED_PID_FILE"]).write_text(str(os.getpid()))
    end = time.monotonic() + 120
    while time.monotonic() < end:
        await Timer(1, "us")
