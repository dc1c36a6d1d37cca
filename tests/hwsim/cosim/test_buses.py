"""Every HDL bus master and every cocotbext adapter on PeakRDL-regblock slaves (Verilator): register
semantics, byte lanes, 64-bit buses, error responses as BusError, one await per transaction."""

from __future__ import annotations

import pytest
from byod_builds import build_regs, cocotb_cases
from conftest import RunCosim

CASES = cocotb_cases("cocotb_buses")


@pytest.mark.parametrize("case", CASES)
def test_bus(case: str, cosim_run: RunCosim) -> None:
    results = cosim_run("regs", build_regs, "cocotb_buses")
    assert case in results, f"{case} did not run: {sorted(results)}"
    assert results[case].passed, results[case].message
