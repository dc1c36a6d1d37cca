"""WAVES=1 (here: build(waves=True)) makes a run leave a waveform of the simulation."""

from __future__ import annotations

from pathlib import Path

import pytest
from rtl_cases import HERE, simulators

from hwsim.cosim import runner
from hwsim.vblk import simbuild


@pytest.mark.parametrize("sim", simulators())
def test_waves_are_written(sim: str, tmp_path: Path) -> None:
    built = simbuild.build(sim, waves=True)
    results = runner.run(built, "cocotb_regs", test_dir=tmp_path, testcase="reset_values", module_dir=HERE)
    assert results["reset_values"].passed, results["reset_values"].message
    wave = runner.waves_file(built, tmp_path)
    assert wave.exists() and wave.stat().st_size > 1000
    head = wave.read_bytes()[:4096]
    if sim == "verilator":
        assert b"$var" in head and b"$timescale" in head   # VCD
    else:
        assert head[0] == 0                               # FST: the file starts with its header block
