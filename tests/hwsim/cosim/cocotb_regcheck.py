"""`mmiotk regcheck` on RTL nobody here wrote: PeakRDL-regblock's block of rtl/regcheck_regs.rdl (tb_regcheck.sv,
Verilator) behind the HDL AXI4-Lite master, checked against the map loaded from the same RDL, and against
copies of that map edited to be wrong.

Runs inside the simulator; the suite is the synchronous `check_block`, run through the bridge as a driver.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import cocotb
from cocotb.handle import Immediate
from cocotb.triggers import Timer

from hwsim.cosim import Bridge, HdlAxiLiteBus, SimSpace
from mmiotk import CachePolicy, MmioResource, regmap
from mmiotk.regmap.regcheck import check_block

RDL = Path(__file__).resolve().parent / "rtl" / "regcheck_regs.rdl"
BASE = 0x4000_0000
SIZE = 0x40

# Each edit makes the map disagree with the RTL on one register, and how the suite says so.
EDITS = (
    ("VAL[31:0] = 0x1234_5678", "VAL[31:0] = 0x1234_5679"),        # SCRATCH: a reset value changed
    ("field { sw = rw; } LEN", "field { sw = r; } LEN"),            # CTRL.LEN: RW edited to RO
    ("onwrite = woclr; } PEND", "onwrite = woset; } PEND"),         # IRQ.PEND: W1C edited to W1S
    ("field { sw = rw; onwrite = wot; } FLIP", "field { sw = rw; } FLIP"),   # TOGGLE.FLIP: W1T edited to RW
    ("onread = rset; } DONE", "onread = rclr; } DONE"),             # READY.DONE: read-sets edited to read-clears
    ("HI[63:32] = 0x0123_4567", "HI[63:32] = 0x0123_4667"),        # WIDE.HI: the upper accesswidth half's reset
)
EXPECTED = [
    "regcheck_regs.SCRATCH: reset value: expected 0x12345679, read 0x12345678 (bits 0xffffffff)",
    # PEND really clears on a 1 while ARM sets
    "regcheck_regs.IRQ: W1S bits set by writing 1: expected 0xffff, read 0xff00 (bits 0xffff)",
    # writing FLIP's value back toggles it to 0; 0x5 then reads back by chance (0 ^ 5), 0xa does not (5 ^ 0xa)
    "regcheck_regs.TOGGLE: a neutral write changes nothing: expected 0x5, read 0x0 (bits 0xf0f)",
    "regcheck_regs.TOGGLE: RW bits read back 0xa: expected 0xa, read 0xf (bits 0xf)",
    "regcheck_regs.READY: RC bits clear on read: expected 0x0, read 0xff (bits 0xff)",
    # LEN took the complement of 0x40; BUSY and the unused bits (read-only) did not move
    "regcheck_regs.CTRL: RO bits unchanged by a write: expected 0x4000, read 0xbf00 (bits 0xfffffffc)",
    "regcheck_regs.WIDE: reset value: expected 0x123466789abcdef, read 0x123456789abcdef (bits 0xffffffffffffffff)",
]


async def reset(dut: Any) -> None:
    await Timer(1, "ns")
    dut.rst.value = Immediate(1)
    await Timer(40, "ns")
    dut.rst.value = Immediate(0)
    await Timer(10, "ns")


async def regcheck(dut: Any, rdl_text: str) -> list[str]:
    """Reset the RTL, load the map from `rdl_text`, run the suite on the RTL; the disagreements as printed."""
    await reset(dut)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "regcheck_regs.rdl"
        path.write_text(rdl_text)
        rmap = regmap.load(path)
    space = SimSpace(HdlAxiLiteBus(dut.h.m_axil), BASE, SIZE, name="regcheck")
    buffer = MmioResource(space, BASE, SIZE).create_region(BASE, SIZE, "regs").map(CachePolicy.UNCACHED)
    problems = await Bridge().run(lambda: check_block(rmap.bind(buffer)))
    for problem in problems:
        dut._log.info("regcheck: %s", problem)
    return [str(p) for p in problems]


@cocotb.test()
async def regcheck_is_clean_on_the_map_the_rtl_was_generated_from(dut):
    assert await regcheck(dut, RDL.read_text()) == []


@cocotb.test()
async def regcheck_names_each_register_a_map_edited_to_be_wrong_disagrees_on(dut):
    text = RDL.read_text()
    for old, new in EDITS:
        assert old in text, old
        text = text.replace(old, new)
    assert await regcheck(dut, text) == EXPECTED


@cocotb.test()
async def regcheck_catches_each_edit_alone_on_its_own_register(dut):
    """One edit at a time: only the edited register is reported, so no check leaks onto a neighbour."""
    reported: list[str] = []
    for old, new in EDITS:
        problems = await regcheck(dut, RDL.read_text().replace(old, new))
        assert len({p.split(":")[0] for p in problems}) == 1, (old, problems)
        reported += problems
    assert sorted(reported) == sorted(EXPECTED)
