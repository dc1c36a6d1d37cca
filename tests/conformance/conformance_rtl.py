"""The pytest side of the RTL targets: one simulation per simulator runs every conformance case
(cocotb_conformance.py), and each pytest item asserts its own case's result.

A read-only device is a different hardware build (parameter F_RO=1), so the one case that needs it runs in
a second, one-case simulation of that build.
"""

from __future__ import annotations

from pathlib import Path

from conformance_cases import CASES

from hwsim.cosim import runner
from hwsim.vblk import simbuild

HERE = Path(__file__).resolve().parent
READONLY_CASES = ("readonly_device_rejects_writes",)
READONLY_BUILD = {"F_RO": 1, "F_FLUSH": 0, "F_CONFIG_WCE": 0}


def rtl_results(sim: str, workdir: Path) -> dict[str, runner.CaseResult]:
    """Every case's outcome on simulator `sim` (icarus or verilator)."""
    results: dict[str, runner.CaseResult] = {}
    main_cases = [c for c in CASES if c not in READONLY_CASES]
    for cases, parameters, readonly in ((main_cases, {}, "0"), (list(READONLY_CASES), READONLY_BUILD, "1")):
        built = simbuild.build(sim, parameters=parameters)
        test_dir = workdir / f"sim-ro{readonly}"
        env = {"CONFORMANCE_WORKDIR": str(test_dir / "cases"), "CONFORMANCE_CASES": ",".join(cases),
               "CONFORMANCE_TARGET": sim, "CONFORMANCE_READONLY_BUILD": readonly}
        results.update(runner.run(built, "cocotb_conformance", test_dir=test_dir, module_dir=HERE,
                                  extra_env=env))
    return results
