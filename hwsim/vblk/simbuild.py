"""The virtio-blk controller's sources, and its builds through the generic runner.

`build()` compiles the controller with its cocotb harness (tb_cosim by default), `build_standalone()` a
pure-Verilog bench (tb_bench), `lint()` runs verilator --lint-only over the design. The harness uses the
generic HDL AXI4-Lite master of hwsim/cosim/hdl.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from hwsim.cosim import runner

RTL_DIR = Path(__file__).resolve().parent / "rtl"
DESIGN_SOURCES = ("vblk_cache.v", "vblk_copy.v", "vblk_regs.v", "vblk_engine.v", "virtio_blk.v")
HARNESS_SOURCES = ("hwsim_axil_master.v", "tb_harness.v")


def _path(name: str) -> Path:
    """A source of ours (rtl/) or a generic module (hwsim/cosim/hdl)."""
    local = RTL_DIR / name
    return local if local.exists() else runner.hdl_source(name)


def _files(top: str, extra: Sequence[str] = ()) -> list[Path]:
    return [_path(s) for s in (*DESIGN_SOURCES, *HARNESS_SOURCES, *extra, f"{top}.v")]


def build(sim: str | None = None, top: str = "tb_cosim", parameters: Mapping[str, int] | None = None, *,
          waves: bool | None = None, sources: Sequence[str] = (), verbose: bool = False) -> runner.SimBuild:
    """Build the controller under `top` (tb_cosim by default) for `sim`, or reuse the cached build."""
    return runner.build(sim, _files(top, sources), top, parameters, waves=waves, verbose=verbose)


def build_standalone(sim: str | None = None, top: str = "tb_bench", sources: Sequence[str] = ()) -> list[str]:
    """Build the pure-Verilog bench `top` (with extra `sources`: tb_bench.v under the tb_bench_w64 wrapper) and
    return the command that runs it."""
    return runner.build_standalone(sim, _files(top, sources), top)


def lint(sources: Sequence[str] = DESIGN_SOURCES, top: str = "virtio_blk",
         args: Sequence[str] = ("-Wall",)) -> subprocess.CompletedProcess[str]:
    """verilator --lint-only over the controller's sources (file names in RTL_DIR or the generic HDL)."""
    return runner.lint([_path(s) for s in sources], top, args)
