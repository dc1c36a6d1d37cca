"""The designs the generic co-simulation tests run, built without importing cocotb: regblock exports of
rtl/*.rdl behind every HDL master (Verilator), and the plain-Verilog slow-slave and memory benches."""

from __future__ import annotations

from pathlib import Path

from hwsim.cosim import regblock, runner

HERE = Path(__file__).resolve().parent
RTL = HERE / "rtl"
REGBLOCKS = (("byod_regs.rdl", "axi4-lite", "regs_axi4lite"), ("byod_regs.rdl", "apb4", "regs_apb4"),
             ("byod_regs.rdl", "apb3", "regs_apb3"), ("byod_regs.rdl", "wishbone", "regs_wishbone"),
             ("byod_regs.rdl", "avalon-mm", "regs_avalonmm"), ("byod_regs64.rdl", "axi4-lite", "regs64_axi4lite"))
MASTERS = ("hwsim_axil_master.v", "hwsim_apb_master.v", "hwsim_wb_master.v", "hwsim_avmm_master.v")


def regblock_sources() -> list[Path]:
    """Every register block of REGBLOCKS, exported once into the build cache."""
    out: list[Path] = []
    for rdl, cpuif, name in REGBLOCKS:
        out += regblock.generate(RTL / rdl, runner.build_root() / "regblock" / name, cpuif=cpuif, module_name=name,
                                 retime_read_response=cpuif == "avalon-mm")
    return out


def build_regs(*, bench: bool = False) -> runner.SimBuild:
    """tb_byod_regs under Verilator (regblock's SystemVerilog is beyond Icarus 11); `bench`: only its
    AXI4-Lite and APB4 blocks (BYOD_BENCH)."""
    sources = [*regblock_sources(), *(runner.hdl_source(m) for m in MASTERS), RTL / "tb_byod_regs.sv"]
    return runner.build("verilator", sources, "tb_byod_regs", defines={"BYOD_BENCH": None} if bench else None)


def cocotb_cases(module: str) -> list[str]:
    """Names of the @cocotb.test functions in <module>.py, read without importing cocotb."""
    return runner.cocotb_cases(HERE / f"{module}.py")


def build_regcheck() -> runner.SimBuild:
    """tb_regcheck: regblock's export of rtl/regcheck_regs.rdl behind the HDL AXI4-Lite master (Verilator)."""
    regs = regblock.generate(RTL / "regcheck_regs.rdl", runner.build_root() / "regblock" / "regcheck_axi4lite",
                             cpuif="axi4-lite", module_name="regcheck_axi4lite")
    return runner.build("verilator", [*regs, runner.hdl_source("hwsim_axil_master.v"), RTL / "tb_regcheck.sv"],
                        "tb_regcheck")
