"""The simulator side of `mmiotk regcheck --rtl`: one cocotb test that runs the suite on the design.

The job comes in $MMIOTK_REGCHECK_JOB (JSON, written by hwsim.integration.regcheck_targets): the map, the
block and its bus address, the HDL master's path under the top level and its bus kind, the reset to pulse.
The suite is the synchronous `check_block`, run through the bridge on a SimSpace over that master; its
disagreements go to the job's `out` file as JSON. The test fails only when the suite could not run.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import cocotb
from cocotb.handle import Immediate
from cocotb.triggers import Timer

from hwsim.cosim import Bridge, HdlApbBus, HdlAvalonBus, HdlAxiLiteBus, HdlWishboneBus, SimSpace
from mmiotk import CachePolicy, MmioResource, regmap
from mmiotk.regmap.regcheck import check_block

RESET_NS = 100


def _handle(dut: Any, path: str) -> Any:
    node = dut
    for part in path.split("."):
        try:
            node = getattr(node, part)
        except AttributeError:
            raise LookupError(f"no {part!r} under {node._path} (on the way to {path!r})") from None
    return node


def _bus(kind: str, master: Any) -> Any:
    if kind == "axi4-lite":
        return HdlAxiLiteBus(master)
    if kind in ("apb4", "apb3"):
        return HdlApbBus(master, apb3=kind == "apb3")
    if kind == "wishbone":
        return HdlWishboneBus(master)
    if kind == "avalon":
        return HdlAvalonBus(master)
    raise ValueError(f"unknown bus kind {kind!r}")


@cocotb.test()
async def regcheck(dut: Any) -> None:
    job = json.loads(os.environ["MMIOTK_REGCHECK_JOB"])
    await Timer(1, "ns")
    if job["reset"]:
        line = _handle(dut, job["reset"]["signal"])
        active = job["reset"]["active"]
        line.value = Immediate(active)
        await Timer(RESET_NS, "ns")
        line.value = Immediate(1 - active)
        await Timer(RESET_NS // 4, "ns")
    rmap = regmap.load(job["map"], strict=job["strict"])
    block = rmap.block_class(job["block"])
    base, size = job["base"], job["size"]
    space = SimSpace(_bus(job["bus"], _handle(dut, job["master"])), base, size, name=job["block"])
    buffer = MmioResource(space, base, size).create_region(base, size, job["block"]).map(CachePolicy.UNCACHED)
    problems = await Bridge().run(lambda: check_block(block(buffer)))
    for problem in problems:
        dut._log.info("regcheck: %s", problem)
    with open(job["out"], "w", encoding="utf-8") as fh:
        json.dump([dataclasses.asdict(p) for p in problems], fh)
