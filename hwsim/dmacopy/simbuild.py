"""dmacopy's builds through the generic runner: the cocotb top (tb_dmacopy) and the pure-HDL bench.

The register block is exported from rtl/dmacopy_regs.rdl by PeakRDL-regblock into the build cache; the
result is SystemVerilog, so both builds are Verilator's.
"""

from __future__ import annotations

from pathlib import Path

from hwsim.cosim import regblock, runner

RTL_DIR = Path(__file__).resolve().parent / "rtl"
RDL = RTL_DIR / "dmacopy_regs.rdl"
GENERIC = ("hwsim_axil_master.v", "hwsim_axi_mem.v")


def sources(top: str) -> list[Path]:
    regs = regblock.generate(RDL, runner.build_root() / "regblock" / "dmacopy_regs", cpuif="axi4-lite")
    return [*regs, *(runner.hdl_source(m) for m in GENERIC), RTL_DIR / "dmacopy.sv", RTL_DIR / "dmacopy_system.sv",
            RTL_DIR / f"{top}.sv"]


def build(*, bench: bool = False) -> runner.SimBuild:
    """tb_dmacopy for cocotb (Verilator), or the cached build; `bench`: without the second memory slave
    and its top-level ports (DMACOPY_BENCH), the very design tb_dmacopy_bench runs."""
    return runner.build("verilator", sources("tb_dmacopy"), "tb_dmacopy",
                        defines={"DMACOPY_BENCH": None} if bench else None)


def build_bench() -> list[str]:
    """The pure-HDL bench tb_dmacopy_bench; returns the command that runs it (+copies=N +bytes=B)."""
    return runner.build_standalone("verilator", sources("tb_dmacopy_bench"), "tb_dmacopy_bench")
