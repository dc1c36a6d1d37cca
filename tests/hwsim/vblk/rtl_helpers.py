"""Shared set-up for the cocotb test modules (they run inside the simulator)."""

from __future__ import annotations

from typing import Any

from vblk_driver import MiniBlk

from hwsim.media import BlockMedia
from hwsim.vblk.env import REGS_BASE, REGS_SIZE, VblkEnv
from mmiotk import CachePolicy, MmioBuffer

# Simulated-time limit for every cocotb test: far above what any of them needs (a 4 KiB request
# takes about 12 us of simulated time).
TIMEOUT_MS = 20


def map_regs(env: VblkEnv) -> MmioBuffer:
    """The controller's registers as a driver sees them: a region of the SimSpace, mapped uncached."""
    return env.resource.create_region(REGS_BASE, REGS_SIZE, "vblk").map(CachePolicy.UNCACHED)


async def make(dut: Any, *, qsize: int = 16, stall: int = 0, media: BlockMedia | None = None,
               media_sectors: int = 2048, readonly: bool = False,
               media_range: tuple[int, int] | None = None) -> tuple[VblkEnv, MiniBlk]:
    env = await VblkEnv.create(dut, media=media, media_sectors=media_sectors, stall=stall, readonly=readonly,
                               media_range=media_range)
    drv = MiniBlk(map_regs(env), env.host, env.alloc, env.irq, qsize=qsize)
    return env, drv


def pattern(nbytes: int, seed: int) -> bytes:
    """Deterministic, position-dependent bytes (a shifted sector would not compare equal)."""
    return bytes((i * 7 + seed * 13 + (i >> 9) * 31) & 0xFF for i in range(nbytes))
