"""The dmacopy example engine and the generic AXI4 memory slave under Verilator (cocotb_dmacopy.py)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from hwsim.cosim import runner
from hwsim.dmacopy import simbuild

HERE = Path(__file__).resolve().parent



@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, runner.CaseResult]:
    return runner.run(simbuild.build(), "cocotb_dmacopy", test_dir=tmp_path_factory.mktemp("dmacopy"),
                      module_dir=HERE)


def _cases() -> list[str]:
    tree = ast.parse((HERE / "cocotb_dmacopy.py").read_text())
    return [n.name for n in tree.body if isinstance(n, ast.AsyncFunctionDef)]


@pytest.mark.parametrize("case", _cases())
def test_dmacopy(case: str, results: dict[str, runner.CaseResult]) -> None:
    assert case in results, sorted(results)
    assert results[case].passed, results[case].message
