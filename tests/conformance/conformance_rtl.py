"""The pytest side of the RTL targets: one simulation per simulator runs every conformance case
(cocotb_conformance.py), and each pytest item asserts its own case's result. Read-only is an input of the
controller, so the read-only case runs in the same simulation as the others.
"""

from __future__ import annotations

from pathlib import Path

from conformance_cases import CASES

from hwsim.cosim import runner
from hwsim.vblk import simbuild

HERE = Path(__file__).resolve().parent


def rtl_results(sim: str, workdir: Path) -> dict[str, runner.CaseResult]:
    """Every case's outcome on simulator `sim` (icarus or verilator)."""
    built = simbuild.build(sim)
    env = {"CONFORMANCE_WORKDIR": str(workdir / "cases"), "CONFORMANCE_CASES": ",".join(CASES),
           "CONFORMANCE_TARGET": sim}
    return runner.run(built, "cocotb_conformance", test_dir=workdir / "sim", module_dir=HERE, extra_env=env)
