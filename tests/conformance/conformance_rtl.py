"""The pytest side of the RTL targets: one simulation per simulator runs every conformance case
(cocotb_conformance.py), and each pytest item asserts its own case's result. Read-only is an input of the
controller, so the read-only case runs in the same simulation as the others; the legacy interface is a
build option, so the legacy case runs in a second, one-case simulation of the legacy build (the RTL
tests' other build: LEGACY=1, DATA_W=64, no FLUSH or CONFIG_WCE).
"""

from __future__ import annotations

import sys
from pathlib import Path

from conformance_cases import CASES

from hwsim.cosim import runner
from hwsim.vblk import simbuild

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "hwsim" / "vblk"))
from rtl_cases import VARIANT  # noqa: E402  (the legacy build the RTL tests use too)

LEGACY_CASES = ("legacy_interface_binds_and_serves_io",)


def rtl_results(sim: str, workdir: Path) -> dict[str, runner.CaseResult]:
    """Every case's outcome on simulator `sim` (icarus or verilator)."""
    results: dict[str, runner.CaseResult] = {}
    main_cases = [c for c in CASES if c not in LEGACY_CASES]
    for cases, parameters, legacy in ((main_cases, {}, "0"), (list(LEGACY_CASES), VARIANT, "1")):
        built = simbuild.build(sim, parameters=parameters)
        test_dir = workdir / f"sim-legacy{legacy}"
        env = {"CONFORMANCE_WORKDIR": str(test_dir / "cases"), "CONFORMANCE_CASES": ",".join(cases),
               "CONFORMANCE_TARGET": sim, "CONFORMANCE_LEGACY_BUILD": legacy}
        results.update(runner.run(built, "cocotb_conformance", test_dir=test_dir, module_dir=HERE, extra_env=env))
    return results
