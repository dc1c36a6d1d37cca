"""Fixtures of the conformance suite: one target object per target name for the whole session, and a
per-target count of the tests that ran, printed at the end of the run."""

from __future__ import annotations

import re
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the suite's helper modules (importlib mode)

from conformance_harness import TARGETS, Conformance


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Cases on a Linux target run inside that target's guest: one boot per machine for all of them."""
    from conformance_linux import GUEST_TARGETS

    for item in items:
        callspec = getattr(item, "callspec", None)
        target = callspec.params.get("target") if callspec is not None else None
        if target in GUEST_TARGETS:
            item.add_marker(pytest.mark.linux_guest(GUEST_TARGETS[target][1]))


@pytest.fixture(scope="session")
def conformance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Conformance]:
    runner = Conformance(tmp_path_factory.mktemp("conformance"))
    yield runner
    runner.close()


# longest name first: "qemu-pci-qd16" is target qemu-pci, not qemu
_TARGET_ID = re.compile(r"tests/conformance/.*\[(" + "|".join(sorted(TARGETS, key=len, reverse=True)) + r")[\]-]")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    counts: dict[str, Counter[str]] = {}
    for outcome in ("passed", "failed", "error", "skipped"):
        for report in terminalreporter.stats.get(outcome, []):
            match = _TARGET_ID.search(getattr(report, "nodeid", ""))
            if match and getattr(report, "when", "call") in ("call", "setup"):
                if outcome == "passed" and report.when != "call":
                    continue
                counts.setdefault(match.group(1), Counter())[outcome] += 1
    if not counts:
        return
    terminalreporter.section("conformance tests per target")
    for target in TARGETS:
        c = counts.get(target)
        if c:
            detail = ", ".join(f"{n} {k}" for k, n in sorted(c.items()))
            terminalreporter.write_line(f"{target:<10} {sum(c.values()):>3} tests: {detail}")
