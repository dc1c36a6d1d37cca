"""The bounded fuzz suite: every test records the distinct bad inputs it tried at its boundary, and the run
ends with one line per boundary (like the conformance suite's per-target counts)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # fuzz_helpers (importlib mode)

from fuzz_helpers import BAD_INPUTS


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not BAD_INPUTS:
        return
    terminalreporter.section("fuzz: distinct bad inputs tried per boundary")
    for boundary in sorted(BAD_INPUTS):
        terminalreporter.write_line(f"{boundary:<34} {len(BAD_INPUTS[boundary]):>6}")
    total = sum(len(v) for v in BAD_INPUTS.values())
    terminalreporter.write_line(f"{'total':<34} {total:>6}")


@pytest.fixture
def bad() -> Any:
    """bad(boundary, input): count `input` as one bad input tried at `boundary` (distinct by repr)."""
    def record(boundary: str, value: object) -> None:
        BAD_INPUTS.setdefault(boundary, set()).add(repr(value)[:2000])

    return record
