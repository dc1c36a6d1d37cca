"""RTL co-simulation fixtures: each cocotb module runs once per simulator; pytest reports every case."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
for _path in (HERE, HERE.parents[2]):  # helper modules (importlib mode) and the repository
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from rtl_cases import RunModule  # noqa: E402

from hwsim.cosim import runner  # noqa: E402
from hwsim.vblk import simbuild  # noqa: E402


@pytest.fixture(scope="session")
def rtl_run(tmp_path_factory: pytest.TempPathFactory) -> RunModule:
    """Run a cocotb module on a simulator once per session and hand out its per-case results."""
    done: dict[tuple[str, str], dict[str, runner.CaseResult] | Exception] = {}

    def run(sim: str, module: str, parameters: Mapping[str, int]) -> dict[str, runner.CaseResult]:
        key = (sim, module)
        if key not in done:
            try:
                built = simbuild.build(sim, parameters=parameters)
                done[key] = runner.run(built, module, test_dir=tmp_path_factory.mktemp(f"{sim}-{module}"),
                                       module_dir=HERE)
            except Exception as exc:
                done[key] = exc
        outcome = done[key]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    return run
