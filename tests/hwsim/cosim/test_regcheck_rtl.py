"""`mmiotk regcheck` on PeakRDL-regblock RTL (Verilator): clean on the map the RTL came from, and each
register of a map edited to be wrong reported exactly."""

from __future__ import annotations

import pytest
from byod_builds import build_regcheck, cocotb_cases
from conftest import RunCosim

CASES = cocotb_cases("cocotb_regcheck")


@pytest.mark.parametrize("case", CASES)
def test_regcheck_on_regblock_rtl(case: str, cosim_run: RunCosim) -> None:
    results = cosim_run("regcheck", build_regcheck, "cocotb_regcheck")
    assert case in results, f"{case} did not run: {sorted(results)}"
    assert results[case].passed, results[case].message
