"""`mmiotk regcheck --rtl` on PeakRDL-regblock RTL (Verilator), as a user runs it: the RDL, the generated
SystemVerilog and the test bench, its top, the HDL master's path, the bus and the reset. Clean on the map the
RTL came from; a map edited to be wrong is reported register by register, as the in-simulator suite reports
it (cocotb_regcheck.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from byod_builds import RTL

from hwsim.cosim import regblock, runner
from mmiotk.cli import REGCHECK_DISAGREES, main

RDL = RTL / "regcheck_regs.rdl"
EDITS = (
    ("VAL[31:0] = 0x1234_5678", "VAL[31:0] = 0x1234_5679"),        # SCRATCH: a reset value changed
    ("onwrite = woclr; } PEND", "onwrite = woset; } PEND"),         # IRQ.PEND: W1C edited to W1S
)
EXPECTED = [
    "regcheck_regs.SCRATCH: reset value: expected 0x12345679, read 0x12345678 (bits 0xffffffff)",
    "regcheck_regs.IRQ: W1S bits set by writing 1: expected 0xffff, read 0xff00 (bits 0xffff)",
]


@pytest.fixture(scope="module")
def rtl_argv() -> list[str]:
    """The design as a user hands it over: regblock's export of the RDL and the test bench (the master's
    source is added by the command)."""
    sources = regblock.generate(RDL, runner.build_root() / "regblock" / "regcheck_axi4lite", cpuif="axi4-lite",
                                module_name="regcheck_axi4lite")
    return ["--rtl", *map(str, sources), runner.hdl_source("hwsim_axil_master.v").as_posix(),
            str(RTL / "tb_regcheck.sv"), "--top", "tb_regcheck", "--master", "h.m_axil", "--bus", "axi4-lite",
            "--reset", "rst"]


def test_regcheck_on_the_rtl_the_map_was_generated_for(rtl_argv: list[str],
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["regcheck", str(RDL), *rtl_argv]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert "# regcheck_regs on rtl tb_regcheck (verilator) h.m_axil @ 0x0: 8 registers checked, 0 disagreement(s)" \
        in err


def test_regcheck_names_each_register_an_edited_map_disagrees_on(rtl_argv: list[str], tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    text = RDL.read_text()
    for old, new in EDITS:
        assert old in text
        text = text.replace(old, new)
    wrong = tmp_path / "regcheck_regs.rdl"
    wrong.write_text(text)
    assert main(["regcheck", str(wrong), *rtl_argv]) == REGCHECK_DISAGREES
    assert capsys.readouterr().out.splitlines() == EXPECTED


def test_a_master_path_that_is_not_there_is_a_clear_error(rtl_argv: list[str],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    argv = [a if a != "h.m_axil" else "h.m_apb" for a in rtl_argv]
    assert main(["regcheck", str(RDL), *argv]) == 1
    assert "no 'm_apb' under tb_regcheck.h" in capsys.readouterr().err
