"""The cocotbext adapters on slow plain-Verilog slaves, on Icarus and on Verilator (cocotb_ext_slow.py)."""

from __future__ import annotations

import os

import pytest
from byod_builds import RTL, cocotb_cases
from conftest import RunCosim

from hwsim.cosim import runner

SIMS = (runner.default_simulator(),) if os.environ.get("SIM") else runner.SIMULATORS


def build(sim: str) -> runner.SimBuild:
    return runner.build(sim, [RTL / "tb_slow.v", RTL / "tb_ext_slow.v"], "tb_ext_slow")


@pytest.mark.parametrize("case", cocotb_cases("cocotb_ext_slow"))
@pytest.mark.parametrize("sim", SIMS)
def test_cocotbext_adapter_on_a_slow_slave(sim: str, case: str, cosim_run: RunCosim) -> None:
    results = cosim_run(f"ext-slow-{sim}", lambda: build(sim), "cocotb_ext_slow")
    assert case in results, f"{case} did not run on {sim}: {sorted(results)}"
    assert results[case].passed, results[case].message
