"""The pages of docs/ this package documents are true: their Python blocks run, in order, as one program
(blocks marked `norun` are for hardware; `file=NAME` blocks are written to NAME first), and every command
cli.md names exists."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest

from drivers.block_services.cli import register_nbd, register_serve
from mmiotk import cli

DOCS = Path(__file__).resolve().parents[3] / "docs"
FENCE = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```\s*$", re.M | re.S)


def run_doc(name: str, workdir: Path) -> str:
    """Write the page's files, run its Python blocks as one script in `workdir`; return stdout."""
    script = []
    for lang, info, body in FENCE.findall((DOCS / name).read_text()):
        attrs = dict(re.findall(r"(\w+)=(\S+)", info))
        if "file" in attrs:
            (workdir / attrs["file"]).write_text(body)
        elif lang == "python" and "norun" not in info:
            script.append(body)
    assert script, f"{name} has no runnable Python"
    (workdir / "doc_script.py").write_text("\n".join(script))
    proc = subprocess.run([sys.executable, "doc_script.py"], cwd=workdir, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, f"{name}:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout


@pytest.mark.parametrize("page", ["tutorial.md", "blockfifo.md", "nbd.md", "getting-started.md"])
def test_the_python_in_the_page_runs(page: str, tmp_path: Path) -> None:
    run_doc(page, tmp_path)


def test_every_command_in_cli_md_exists() -> None:
    text = (DOCS / "cli.md").read_text()
    named = set(re.findall(r"^#+ `mmiotk (\w+)", text, re.M))
    parser = cli.build_parser([register_nbd, register_serve])
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    commands = set(sub.choices)
    assert {"peek", "poke", "dump", "trace", "demo", "nbd", "serve"} <= named
    assert named <= commands
