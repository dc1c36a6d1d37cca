"""The HDL masters on slow plain-Verilog slaves, on Icarus and on Verilator (cocotb_slow.py)."""

from __future__ import annotations

import os

import pytest
from byod_builds import MASTERS, RTL, cocotb_cases
from conftest import RunCosim

from hwsim.cosim import runner

SIMS = (runner.default_simulator(),) if os.environ.get("SIM") else runner.SIMULATORS


def build(sim: str) -> runner.SimBuild:
    return runner.build(sim, [*(runner.hdl_source(m) for m in MASTERS), RTL / "tb_slow.v"], "tb_slow")


@pytest.mark.parametrize("case", cocotb_cases("cocotb_slow"))
@pytest.mark.parametrize("sim", SIMS)
def test_slow_slave(sim: str, case: str, cosim_run: RunCosim) -> None:
    results = cosim_run(f"slow-{sim}", lambda: build(sim), "cocotb_slow")
    assert case in results, f"{case} did not run on {sim}: {sorted(results)}"
    assert results[case].passed, results[case].message
