"""The shim memory slaves for DUTs that master AXI4, AXI4-Lite, Avalon-MM and Wishbone, and the HDL masters on
them, on Icarus and on Verilator (cocotb_mem.py)."""

from __future__ import annotations

import os

import pytest
from byod_builds import RTL, cocotb_cases
from conftest import RunCosim

from hwsim.cosim import runner

SIMS = (runner.default_simulator(),) if os.environ.get("SIM") else runner.SIMULATORS
SOURCES = ("hwsim_axi_mem.v", "hwsim_axil_mem.v", "hwsim_avmm_mem.v", "hwsim_wb_mem.v", "hwsim_axil_master.v",
           "hwsim_avmm_master.v", "hwsim_wb_master.v")


def build(sim: str) -> runner.SimBuild:
    return runner.build(sim, [*(runner.hdl_source(m) for m in SOURCES), RTL / "tb_mem.v"], "tb_mem")


@pytest.mark.parametrize("case", cocotb_cases("cocotb_mem"))
@pytest.mark.parametrize("sim", SIMS)
def test_memory_slave(sim: str, case: str, cosim_run: RunCosim) -> None:
    results = cosim_run(f"mem-{sim}", lambda: build(sim), "cocotb_mem")
    assert case in results, f"{case} did not run on {sim}: {sorted(results)}"
    assert results[case].passed, results[case].message


@pytest.mark.parametrize("module", ["hwsim_axi_mem", "hwsim_axil_mem", "hwsim_avmm_mem", "hwsim_wb_mem"])
def test_memory_slave_is_lint_clean(module: str) -> None:
    done = runner.lint([runner.hdl_source(f"{module}.v")], top=module)
    assert done.returncode == 0, done.stderr[-3000:]
