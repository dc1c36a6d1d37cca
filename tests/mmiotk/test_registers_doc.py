"""docs/registers.md is executed: its python blocks, in order, as one pytest module (module-level code runs
at import, `test_*` functions run with the mmiotk plugin's fixtures); `file=` blocks are written next to it."""

from __future__ import annotations

import re
from pathlib import Path

pytest_plugins = ["pytester"]

DOC = Path(__file__).resolve().parents[2] / "docs" / "registers.md"
FENCE = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```\s*$", re.M | re.S)


def blocks(text: str) -> list[tuple[str, dict[str, str], str]]:
    out = []
    for lang, info, body in FENCE.findall(text):
        attrs = dict(re.findall(r"(\w+)=(\S+)", info))
        out.append((lang, attrs, body))
    return out


def test_registers_doc_has_python_and_yaml_blocks():
    found = blocks(DOC.read_text())
    langs = [lang for lang, _, _ in found]
    assert langs.count("python") >= 8 and "yaml" in langs


def test_registers_doc_code_blocks_run_and_their_tests_pass(pytester):
    found = blocks(DOC.read_text())
    python = []
    for lang, attrs, body in found:
        if "file" in attrs:
            (pytester.path / attrs["file"]).write_text(body)
        elif lang == "python":
            python.append(body)
    source = "\n\n".join(python)
    pytester.makepyfile(test_registers_doc_code=source)
    tests = len(re.findall(r"^def test_\w+\(", source, re.M))
    assert tests >= 4
    result = pytester.runpytest("-p", "no:cacheprovider", "-q")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed") == tests and set(outcomes) <= {"passed"}, result.stdout.str()
