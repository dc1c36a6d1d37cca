"""The block controller's RTL under cocotb, on Icarus and on Verilator.

The cocotb modules (cocotb_*.py) run inside the simulator, one simulator process per module; each of
their test cases is reported here as its own pytest test, named after the simulator.
"""

from __future__ import annotations

import pytest
from rtl_cases import VARIANT, RunModule, cocotb_cases, simulators

MODULES = {"cocotb_regs": {}, "cocotb_requests": {}, "cocotb_malformed": {}, "cocotb_variant": VARIANT,
           "cocotb_stall": {}, "cocotb_posted": {}}
CASES = [pytest.param(module, case, id=f"{module.removeprefix('cocotb_')}.{case}")
         for module in MODULES for case in cocotb_cases(module)]


@pytest.mark.parametrize(("module", "case"), CASES)
@pytest.mark.parametrize("sim", simulators())
def test_cocotb_case_passes(sim: str, module: str, case: str, rtl_run: RunModule) -> None:
    results = rtl_run(sim, module, MODULES[module])
    assert case in results, f"{case} did not run on {sim}: {sorted(results)}"
    assert results[case].passed, results[case].message


def test_every_cocotb_module_has_at_least_two_cases() -> None:
    assert all(len(cocotb_cases(module)) >= 2 for module in MODULES)
