"""docs/byod.md is true: its `file=` blocks are written out, its Python blocks run, in order, as one pytest
module (the mmiotk plugin's fixtures available) — the unit tests, the RTL under Verilator, the DMA engine —
and the driver it shows is the one in hwsim/dmacopy/driver.py."""

from __future__ import annotations

import re
from pathlib import Path

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parents[3]
DOC = REPO / "docs" / "byod.md"
FENCE = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```\s*$", re.M | re.S)


def blocks() -> list[tuple[str, dict[str, str], str]]:
    return [(lang, dict(re.findall(r"(\w+)=(\S+)", info)), body) for lang, info, body in FENCE.findall(DOC.read_text())]


def test_the_dma_driver_shown_is_the_real_one() -> None:
    (body,) = [b for _, attrs, b in blocks() if attrs.get("file") == "dmacopy_driver.py"]
    assert body == (REPO / "hwsim" / "dmacopy" / "driver.py").read_text()


def test_byod_doc_runs(pytester) -> None:
    python = []
    for lang, attrs, body in blocks():
        if "file" in attrs:
            (pytester.path / attrs["file"]).write_text(body)
        elif lang == "python":
            python.append(body)
    source = "\n\n".join(python)
    pytester.makepyfile(test_byod_doc_code=source)
    tests = len(re.findall(r"^def test_\w+\(", source, re.M))
    assert tests >= 4
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", "-p", "no:randomly")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed") == tests and set(outcomes) <= {"passed"}, result.stdout.str()[-6000:]
