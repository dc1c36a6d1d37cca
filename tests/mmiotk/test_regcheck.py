"""Register conformance from the map: the suite passes on a conformant implementation and names each
register where an edited map and the implementation disagree."""

from __future__ import annotations

import pytest

from mmiotk.cli import main
from mmiotk.fake import FakeDevice
from mmiotk.regmap import loads
from mmiotk.regmap.regcheck import check_block

TRUE_MAP = """
name: dev
blocks:
  - name: DEV
    registers:
      - {name: CTRL, offset: 0x0, reset: 0x10, fields: [{name: EN, lsb: 0}, {name: MODE, lsb: 4, width: 2}]}
      - {name: STATUS, offset: 0x4, access: ro, reset: 0x3}
      - name: IRQ
        offset: 0x8
        fields: [{name: EV, lsb: 0, width: 4, access: w1c}, {name: SET, lsb: 8, access: w1s},
                 {name: FLIP, lsb: 12, access: w1t}, {name: NACK, lsb: 16, access: w0c}]
      - {name: COUNT, offset: 0xc, access: rc}
      - {name: WIDE, offset: 0x10, width: 64, accesswidth: 32}
"""


@pytest.fixture
def implementation():
    return FakeDevice(loads(TRUE_MAP))


def test_the_suite_passes_on_an_implementation_of_the_map(implementation):
    implementation.poke("COUNT", 5)
    assert check_block(loads(TRUE_MAP).bind(implementation.buffer)) == []


@pytest.mark.parametrize(("edit", "register", "check"), [
    (("reset: 0x10", "reset: 0x11"), "DEV.CTRL", "reset value"),
    (("access: ro, reset: 0x3", "access: rw, reset: 0x3"), "DEV.STATUS", "RW bits read back"),
    (("{name: EN, lsb: 0}", "{name: EN, lsb: 0, access: ro}"), "DEV.CTRL", "RO bits unchanged"),
    (("access: w1s}", "access: w0s}"), "DEV.IRQ", "a neutral write changes nothing"),
    (("access: w1t}", "access: w0t}"), "DEV.IRQ", "W0T bits toggled"),
    (("access: rc}", "access: rs}"), "DEV.COUNT", "RS bits set on read"),
])
def test_a_map_edited_to_be_wrong_is_caught_register_by_register(implementation, edit, register, check):
    wrong = loads(TRUE_MAP.replace(*edit))
    problems = check_block(wrong.bind(implementation.buffer))
    assert problems and {p.register for p in problems} == {register}, problems
    assert any(p.check.startswith(check) for p in problems), problems


def test_regcheck_command_on_a_memory_file(tmp_path, capsys):
    mem = tmp_path / "mem.bin"
    mem.write_bytes(bytes(0x2000))
    good = tmp_path / "ram.yaml"
    good.write_text("name: r\nblocks:\n  - name: RAM\n    base: 0x1000\n    registers:\n"
                    "      - {name: A, offset: 0}\n      - {name: B, offset: 4}\n")
    assert main(["regcheck", str(good), "--mem", str(mem)]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(good.read_text().replace("{name: B, offset: 4}", "{name: B, offset: 4, reset: 0x5}"))
    assert main(["regcheck", str(bad), "--mem", str(mem)]) == 1
    assert "RAM.B: reset value: expected 0x5, read 0x0" in capsys.readouterr().out
