"""The RTL is Verilog-2005 that Verilator lints clean with -Wall and Icarus compiles."""

from __future__ import annotations

import subprocess

from hwsim.cosim import runner
from hwsim.vblk import simbuild


def test_design_is_clean_under_verilator_lint_wall() -> None:
    done = simbuild.lint()
    assert done.returncode == 0, done.stderr
    assert "%Warning" not in done.stderr and "%Error" not in done.stderr, done.stderr


def test_harness_is_clean_under_verilator_lint_wall() -> None:
    done = simbuild.lint((*simbuild.DESIGN_SOURCES, *simbuild.HARNESS_SOURCES), top="tb_harness",
                       args=("-Wall", "--timing", "--timescale", "1ns/1ps"))
    assert done.returncode == 0, done.stderr


def test_icarus_accepts_verilog_2005(tmp_path) -> None:
    files = [str(simbuild.RTL_DIR / s) for s in simbuild.DESIGN_SOURCES]
    done = subprocess.run(["iverilog", "-g2005", "-Wall", "-o", str(tmp_path / "a.vvp"), "-s", "virtio_blk",
                           *files], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "error" not in done.stderr.lower()


def test_lint_catches_a_bad_design(tmp_path) -> None:
    bad = tmp_path / "bad.v"
    bad.write_text("module bad(input wire [3:0] a, output wire [1:0] y);\nassign y = a;\nendmodule\n")
    done = runner.lint([bad], top="bad")
    assert done.returncode != 0 and "WIDTH" in done.stderr


def test_config_wce_without_flush_does_not_build(tmp_path) -> None:
    """virtio 1.2, 5.2.5.2: a device offering CONFIG_WCE must offer FLUSH; such a build fails to elaborate
    on both tools, naming why."""
    done = simbuild.lint(args=("-Wall", "-GF_FLUSH=0", "-GF_CONFIG_WCE=1"))
    assert done.returncode != 0 and "vblk_error_config_wce_needs_flush" in done.stderr, done.stderr
    files = [str(simbuild.RTL_DIR / s) for s in simbuild.DESIGN_SOURCES]
    icarus = subprocess.run(["iverilog", "-g2005", "-o", str(tmp_path / "a.vvp"), "-s", "virtio_blk",
                             "-Pvirtio_blk.F_FLUSH=0", *files], capture_output=True, text=True, timeout=120,
                            check=False)
    assert icarus.returncode != 0 and "vblk_error_config_wce_needs_flush" in icarus.stderr, icarus.stderr
    assert simbuild.lint(args=("-Wall", "-GF_FLUSH=0", "-GF_CONFIG_WCE=0")).returncode == 0
