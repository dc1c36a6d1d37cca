"""The conformance cases inside one cocotb simulation of the RTL block controller (Icarus or Verilator).

Every case of conformance_cases.CASES becomes one cocotb test, named by its case id, so the results file
says which passed; the pytest side (conformance_rtl.py) turns each into its own pytest item. The cases run
as ordinary synchronous code in the bridge's greenlet: every register access is one bus transaction,
interrupt waits are awaits on the RTL line. The environment selects cases (CONFORMANCE_CASES) and names the
scratch directory (CONFORMANCE_WORKDIR).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cocotb
from conformance_cases import CASES, MiB, Target, run_case

from drivers.virtio.blk import VirtioBlk
from hwsim.cosim import Bridge, bridge_await
from hwsim.integration.block_targets import bound_virtio_blk
from hwsim.media import BlockMedia
from hwsim.vblk.env import HOST_BASE, HOST_SIZE, REGS_BASE, REGS_SIZE, SECTOR, VblkEnv

SIM_TIMEOUT_MS = 2000  # simulated time per case; far above what any needs (a 4 KiB request is ~12 us)


class RtlTarget(Target):
    """The controller under cocotb: each device() is a fresh hardware reset with its own media."""

    scale = 0.1
    image_sizes = {"ext4": "1M", "vfat": "512K"}

    def __init__(self, dut: Any, name: str, legacy_build: bool) -> None:
        self.dut = dut
        self.name = name
        self.legacy_build = legacy_build

    @contextmanager
    def device(self, *, image: Path | None = None, disk_size: int = 4 * MiB, readonly: bool = False,
               media_range: tuple[int, int] | None = None, legacy: bool = False,
               **options: Any) -> Iterator[VirtioBlk]:
        if legacy != self.legacy_build:
            raise AssertionError(f"this simulation's build has LEGACY={int(self.legacy_build)}; a "
                                 f"{'legacy' if legacy else 'modern'} device needs the other build")
        media = BlockMedia(image) if image is not None else BlockMedia(size=disk_size)
        sectors = None if media_range is None else (media_range[0] // SECTOR, media_range[1] // SECTOR)
        env: VblkEnv = bridge_await(VblkEnv.create(self.dut, media=media, readonly=readonly,
                                                   media_range=sectors))
        board = {"name": f"{self.name}-rtl", "memory": {"base": HOST_BASE, "size": HOST_SIZE},
                 "devices": [{"name": "blk0", "compatible": "virtio,mmio", "reg": [[REGS_BASE, REGS_SIZE]],
                              "interrupts": [0]}]}
        try:
            with bound_virtio_blk(board, env.space, lambda number: env.irq, memory=env.ram, **options) as blk:
                yield blk
        finally:
            env.close()


def _register(case_id: str) -> None:
    async def case(dut: Any) -> None:
        workdir = Path(os.environ["CONFORMANCE_WORKDIR"]) / case_id
        target = RtlTarget(dut, os.environ.get("CONFORMANCE_TARGET", "rtl"),
                           os.environ.get("CONFORMANCE_LEGACY_BUILD") == "1")
        await Bridge().run(run_case, case_id, target, workdir)

    case.__name__ = case.__qualname__ = case_id.replace("-", "_")
    case.__doc__ = CASES[case_id][0].__doc__  # the case's expected outcome
    globals()[case.__name__] = cocotb.test(timeout_time=SIM_TIMEOUT_MS, timeout_unit="ms", name=case_id)(case)


_selected = os.environ.get("CONFORMANCE_CASES")
for _case_id in (_selected.split(",") if _selected else CASES):
    _register(_case_id)
