"""QEMU's `edu` device as the guest tests use it: its BAR0 registers (QEMU docs/specs/edu.rst) and one DMA
copy. The test side's own reading of the device, kept apart from the project's code on purpose."""

from __future__ import annotations

import time
from typing import Any

EDU_ID = 0x010000ED                       # BAR0 0x00: identification
STATUS, IRQ_STATUS, IRQ_RAISE, IRQ_ACK = 0x20, 0x24, 0x60, 0x64
DMA_SRC, DMA_DST, DMA_COUNT, DMA_CMD = 0x80, 0x88, 0x90, 0x98
DMA_START, DMA_TO_RAM = 0x1, 0x2
EDU_BUFFER = 0x40000  # edu's DMA window; QEMU 7.2 aborts on a transfer ending exactly at its 4 KiB end


def edu_at_reset(regs: Any) -> None:
    """The registers a test may have left set back to their reset values, as a reset would (edu has none a
    test can trigger, and the tests of one boot share the device): DMA source, destination and count to 0,
    every interrupt acknowledged, no interrupt on factorial."""
    for reg in (DMA_SRC, DMA_DST, DMA_COUNT):
        regs.write64(reg, 0)
    regs.write32(IRQ_ACK, 0xFFFF_FFFF)
    regs.write32(STATUS, 0)


def edu_copy(regs: Any, src: int, dst: int, count: int, cmd: int) -> None:
    """One DMA transfer by edu's engine, waited for (10 s at most)."""
    regs.write64(DMA_SRC, src)
    regs.write64(DMA_DST, dst)
    regs.write64(DMA_COUNT, count)
    regs.write64(DMA_CMD, cmd | DMA_START)
    deadline = time.monotonic() + 10
    while regs.read64(DMA_CMD) & DMA_START:
        assert time.monotonic() < deadline, "edu DMA did not finish within 10 s"
        time.sleep(0.01)
