"""runner.build: any design (Verilog and SystemVerilog, include dirs, defines, parameters), a cache keyed
by all of them, and concurrent builds (pytest-xdist workers) sharing that cache under a lock."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hwsim.cosim import runner

DESIGN = """`include "widths.vh"
module top #(parameter N = 3) (input wire [`W-1:0] a, output wire [`W-1:0] y);
`ifdef DOUBLE
    assign y = a * 2 + N;
`else
    assign y = a + N;
`endif
endmodule
"""


@pytest.fixture
def design(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HWSIM_BUILD_DIR", str(tmp_path / "cache"))
    (tmp_path / "inc").mkdir()
    (tmp_path / "inc" / "widths.vh").write_text("`define W 8\n")
    (tmp_path / "top.sv").write_text(DESIGN)
    return tmp_path


def test_every_input_is_part_of_the_cache_key(design: Path) -> None:
    src, inc = [design / "top.sv"], [design / "inc"]
    first = runner.build("icarus", src, "top", {"N": 3}, includes=inc)
    again = runner.build("icarus", src, "top", {"N": 3}, includes=inc)
    assert first.compiled and not again.compiled and again.build_dir == first.build_dir
    others = [runner.build("icarus", src, "top", {"N": 4}, includes=inc),
              runner.build("icarus", src, "top", {"N": 3}, includes=inc, defines={"DOUBLE": None}),
              runner.build("icarus", src, "top", {"N": 3}, includes=inc, build_args=["-Wall"])]
    assert all(b.compiled for b in others)
    assert len({b.build_dir for b in [first, *others]}) == 4


def test_the_key_is_the_contents_not_the_paths(design: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    src, inc = [design / "top.sv"], [design / "inc"]
    built = runner.build("icarus", src, "top", includes=inc)
    copy = tmp_path_factory.mktemp("copy")                       # the same design generated elsewhere
    (copy / "inc").mkdir()
    (copy / "inc" / "widths.vh").write_text((design / "inc" / "widths.vh").read_text())
    (copy / "top.sv").write_text(DESIGN)
    again = runner.build("icarus", [copy / "top.sv"], "top", includes=[copy / "inc"])
    assert not again.compiled and again.build_dir == built.build_dir
    (design / "inc" / "widths.vh").write_text("`define W 16\n")      # an include file changed
    changed = runner.build("icarus", src, "top", includes=inc)
    assert changed.compiled and changed.build_dir != built.build_dir


def test_missing_sources_and_include_dirs_are_named(design: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nothere\.sv"):
        runner.build("icarus", [design / "nothere.sv"], "top")
    with pytest.raises(FileNotFoundError, match="noinc"):
        runner.build("icarus", [design / "top.sv"], "top", includes=[design / "noinc"])


def test_two_concurrent_builds_share_one_compile(design: Path) -> None:
    """Two processes (as two pytest-xdist workers would) build the same design at once: the lock makes
    one compile it and the other reuse it."""
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(runner.__file__).resolve().parents[2])!r})
        from hwsim.cosim import runner
        b = runner.build("icarus", [{str(design / "top.sv")!r}], "top", includes=[{str(design / "inc")!r}])
        print("compiled" if b.compiled else "reused", b.build_dir)
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = []
    for p in procs:
        out, _ = p.communicate(timeout=300)
        assert p.returncode == 0
        outs.append(out.split())
    assert sorted(o[0] for o in outs) == ["compiled", "reused"]
    assert outs[0][1] == outs[1][1]


def test_verilator_gets_coroutine_flags_for_this_compiler() -> None:
    flags = runner.coroutine_cflags()
    version = subprocess.run(["c++", "-dumpversion"], capture_output=True, text=True, check=True).stdout
    banner = subprocess.run(["c++", "--version"], capture_output=True, text=True, check=True).stdout
    expected = () if "clang" in banner.lower() or int(version.split(".")[0]) >= 13 else ("-fcoroutines",)
    assert flags == expected
