"""`peakrdl mmiotk` through the real PeakRDL command line: the YAML/JSON it writes loads to the same map as
the RDL itself, the Python module it writes is the typed codegen module, and a wrong suffix is named."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from mmiotk.regmap import load

PEAKRDL = Path(sys.executable).with_name("peakrdl")
RDL = """
addrmap dev {
    default regwidth = 32;
    enum mode_e { IDLE = 0; RUN = 1; HALT = 2; };
    reg { field { sw = rw; hw = r; encode = mode_e; } MODE[1:0] = 1; field { sw = rw; hw = r; } LEN[15:8] = 4;
    } CTRL @ 0x0;
    reg { field { sw = rw; hw = na; onwrite = woclr; } PEND[7:0] = 0; field { sw = r; hw = w; swacc; } LVL[8:8];
    } IRQ @ 0x4;
    reg { field { sw = rw; hw = r; singlepulse; } GO[0:0] = 0; field { sw = r; hw = w; onread = rclr; } N[15:8];
    } CMD @ 0x8;
    reg { regwidth = 64; accesswidth = 32; field { sw = rw; hw = r; } LO[31:0] = 0; field { sw = rw; hw = r; }
          HI[63:32] = 0; } WIDE @ 0x10;
    regfile { reg { field { sw = rw; hw = r; } V[31:0] = 0; } A; reg { field { sw = r; hw = w; } B[3:0]; } B;
    } CH[2] @ 0x20 += 0x10;
    external mem { mementries = 16; memwidth = 32; } BUF @ 0x100;
};
"""


def peakrdl(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(PEAKRDL), "mmiotk", *map(str, args)], capture_output=True, text=True, timeout=120)


def described(regmap) -> list:
    """Everything a driver relies on, register by register, field by field."""
    out = []
    for name, cls in regmap.blocks.items():
        out.append((name, regmap.bases[name], sorted((n, m.offset, m.size, m.width, m.access.value)
                                                     for n, m in cls._memories.items())))
        for spec in cls._specs.values():
            out.append((spec.short, spec.offset, spec.width, spec.accesswidth, spec.access.value, spec.reset,
                        spec.count, spec.stride,
                        [(f.name, f.lsb, f.width, f.access.value, f.precious, f.swacc, f.swmod, f.singlepulse,
                          None if f.enum is None else {m.name: int(m) for m in f.enum}) for f in spec.fields.values()]))
    return out


@pytest.fixture
def rdl(tmp_path: Path) -> Path:
    path = tmp_path / "dev.rdl"
    path.write_text(RDL)
    return path


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_peakrdl_mmiotk_writes_a_map_that_loads_to_the_same_registers(rdl: Path, tmp_path: Path, suffix: str):
    out = tmp_path / f"dev{suffix}"
    result = peakrdl(rdl, "-o", out)
    assert result.returncode == 0, result.stderr
    assert described(load(out)) == described(load(rdl))


def test_peakrdl_mmiotk_writes_the_typed_register_module(rdl: Path, tmp_path: Path):
    out = tmp_path / "dev_regs.py"
    result = peakrdl(rdl, "-o", out)
    assert result.returncode == 0, result.stderr
    spec = importlib.util.spec_from_file_location("dev_regs", out)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    expected = described(load(rdl))
    got = [row for name, cls in module.BLOCKS.items()
           for row in described(type("M", (), {"blocks": {name: cls}, "bases": module.BASES})())]
    assert got == expected
    lint = subprocess.run([sys.executable, "-m", "ruff", "check", "--isolated", str(out)], capture_output=True,
                          text=True, timeout=120)
    assert lint.returncode == 0, lint.stdout


def test_peakrdl_mmiotk_names_an_output_suffix_it_has_no_format_for(rdl: Path, tmp_path: Path):
    result = peakrdl(rdl, "-o", tmp_path / "dev.txt")
    assert result.returncode != 0
    assert "dev.txt: no format for the suffix '.txt'" in result.stdout + result.stderr
    assert peakrdl(rdl, "-o", tmp_path / "dev.txt", "--format", "yaml").returncode == 0
    assert described(load((tmp_path / "dev.txt").rename(tmp_path / "dev.yaml"))) == described(load(rdl))
