"""`mmiotk regcheck`'s simulated targets (`--qemu`, `--rtl`, registered by hwsim.integration) refuse their
options given without them, and `--rtl` without what it needs, as usage errors, before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmiotk.cli import main

MAP = """
name: dev
blocks:
  - name: DEV
    base: 0x1000
    registers:
      - {name: CTRL, offset: 0x0, reset: 0x10}
"""


@pytest.fixture
def regmap(tmp_path: Path) -> str:
    path = tmp_path / "dev.yaml"
    path.write_text(MAP)
    return str(path)


def usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: mmiotk regcheck")
    return err


@pytest.mark.parametrize(("options", "stray", "target"), [
    (["--top", "tb"], "--top", "--rtl"),
    (["--master", "h.m_axil"], "--master", "--rtl"),
    (["--bus", "axi4-lite"], "--bus", "--rtl"),               # the default value, given, is still stray
    (["--sim", "icarus"], "--sim", "--rtl"),
    (["--reset-n", "rst_n"], "--reset-n", "--rtl"),
    (["--include", "rtl"], "--include", "--rtl"),
    (["--sim-timeout", "5"], "--sim-timeout", "--rtl"),
    (["--qemu-arg=-device"], "--qemu-arg", "--qemu"),
    (["--qemu", "virt", "--top", "tb"], "--top", "--rtl"),     # another target's option
    (["--pci", "0000:00:02.0", "--qemu-arg=-device"], "--qemu-arg", "--qemu"),
])
def test_a_simulated_targets_option_without_it_is_a_usage_error(regmap: str, capsys: pytest.CaptureFixture[str],
                                                               options: list[str], stray: str, target: str) -> None:
    err = usage_error(["regcheck", regmap, *options], capsys)
    assert f"{stray} is an option of {target}, which was not given" in err


def test_every_stray_option_is_named(regmap: str, capsys: pytest.CaptureFixture[str]) -> None:
    err = usage_error(["regcheck", regmap, "--master", "m", "--bus", "apb4", "--bar", "1"], capsys)
    for stray, target in (("--master", "--rtl"), ("--bus", "--rtl"), ("--bar", "--pci")):
        assert f"{stray} is an option of {target}" in err


def test_rtl_without_its_top_and_master_is_a_usage_error(regmap: str, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "tb.v"
    source.write_text("module tb; endmodule\n")
    err = usage_error(["regcheck", regmap, "--rtl", str(source)], capsys)
    assert "--rtl needs --top and --master" in err


def test_qemu_names_its_one_machine(regmap: str, capsys: pytest.CaptureFixture[str]) -> None:
    err = usage_error(["regcheck", regmap, "--qemu", "q35"], capsys)
    assert "invalid choice: 'q35' (choose from 'virt')" in err
