"""WAVES=1 (here: build(waves=True)) makes a run leave a waveform of the simulation."""

from __future__ import annotations

from pathlib import Path

import pytest
from rtl_cases import HERE, simulators

from hwsim.cosim import runner
from hwsim.vblk import simbuild


@pytest.mark.parametrize("sim", simulators())
def test_waves_build_writes_a_vcd_or_fst_file(sim: str, tmp_path: Path) -> None:
    built = simbuild.build(sim, waves=True)
    case = "registers_read_their_reset_values"
    results = runner.run(built, "cocotb_regs", test_dir=tmp_path, testcase=case, module_dir=HERE)
    assert results[case].passed, results[case].message
    wave = runner.waves_file(built, tmp_path)
    assert wave.exists() and wave.stat().st_size > 1000
    head = wave.read_bytes()[:4096]
    if sim == "verilator":
        assert b"$var" in head and b"$timescale" in head   # VCD
    else:
        assert head[0] == 0                               # FST: the file starts with its header block
