"""Generic co-simulation fixtures: one simulation per (design, module), every cocotb case a pytest item."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
for _path in (HERE, HERE.parents[2]):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from hwsim.cosim import runner  # noqa: E402

RunCosim = Callable[[str, Callable[[], runner.SimBuild], str], dict[str, runner.CaseResult]]


@pytest.fixture(scope="session")
def cosim_run(tmp_path_factory: pytest.TempPathFactory) -> RunCosim:
    """Build a design and run a cocotb module on it once per session; hand out the per-case results."""
    done: dict[tuple[str, str], dict[str, runner.CaseResult] | Exception] = {}

    def run(design: str, build: Callable[[], runner.SimBuild], module: str) -> dict[str, runner.CaseResult]:
        key = (design, module)
        if key not in done:
            try:
                built = build()
                done[key] = runner.run(built, module, test_dir=tmp_path_factory.mktemp(f"{design}-{module}"),
                                       module_dir=HERE)
            except Exception as exc:
                done[key] = exc
        outcome = done[key]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    return run
