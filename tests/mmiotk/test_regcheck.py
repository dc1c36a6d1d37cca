"""Register conformance from the map: the suite passes on a conformant implementation and names each
register where an edited map and the implementation disagree."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmiotk.cli import REGCHECK_DISAGREES, main
from mmiotk.fake import FakeDevice
from mmiotk.regmap import loads
from mmiotk.regmap.regcheck import check_block
from mmiotk.space import PAGE_SIZE as PAGE

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


@pytest.mark.parametrize(("status", "masked_problems", "unmasked_problems"), [
    (0xAB03, [], [("DEV.STATUS", "reset value")]),         # the hardware drives STATUS[15:8]
    (0xAB02, [("DEV.STATUS", "reset value")], [("DEV.STATUS", "reset value")]),   # bit 0 is in the mask
])
def test_bits_outside_the_reset_mask_are_not_compared_with_a_reset_value(status, masked_problems,
                                                                         unmasked_problems):
    masked = TRUE_MAP.replace("access: ro, reset: 0x3}", "access: ro, reset: 0x3, reset_mask: 0xff}")
    for text, expected in ((masked, masked_problems), (TRUE_MAP, unmasked_problems)):
        implementation = FakeDevice(loads(TRUE_MAP))
        implementation.poke("STATUS", status)
        problems = check_block(loads(text).bind(implementation.buffer))
        assert [(p.register, p.check) for p in problems] == expected, problems


def test_rdl_fields_without_a_reset_are_left_out_of_the_reset_mask(tmp_path):
    from mmiotk.regmap import load

    rdl = """addrmap top {
        reg { field { sw = r; hw = w; } ID[15:0]; field { sw = rw; hw = r; } EN[16:16] = 1; } R @ 0x0;
        reg { field { sw = rw; hw = r; } A[7:0] = 0x5; } S @ 0x4;
    };"""
    (tmp_path / "top.rdl").write_text(rdl)
    block = load(tmp_path / "top.rdl").blocks["top"]
    r, s = block._specs["R"], block._specs["S"]
    assert r.reset_mask == 0xFFFF_0000 and r.reset == 0x1_0000   # ID has none; bits 17-31 read 0
    assert s.reset_mask == 0xFFFF_FFFF


RAM_MAP = """
name: r
blocks:
  - name: RAM
    base: 0x1000
    registers:
      - {name: ID, offset: 0, reset: 0x010000ed}
      - {name: B, offset: 4}
"""


def ram_file(path, size: int, at: int = 0):
    """A memory file whose word at `at` holds the ID RAM_MAP declares (a file is RAM: every bit RW)."""
    data = bytearray(size)
    data[at:at + 4] = (0x010000ED).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    return path


def write_map(tmp_path, text: str, name: str = "ram.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_regcheck_command_on_a_memory_file(tmp_path, capsys):
    mem = ram_file(tmp_path / "mem.bin", 0x2000, at=0x1000)
    assert main(["regcheck", write_map(tmp_path, RAM_MAP), "--mem", str(mem)]) == 0
    bad = write_map(tmp_path, RAM_MAP.replace("{name: B, offset: 4}", "{name: B, offset: 4, reset: 0x5}"), "bad.yaml")
    assert main(["regcheck", bad, "--mem", str(mem)]) == REGCHECK_DISAGREES
    captured = capsys.readouterr()
    assert captured.out.splitlines() == ["RAM.B: reset value: expected 0x5, read 0x0 (bits 0xffffffff)"]
    assert "# RAM on " + str(mem) + " @ 0x1000: 2 registers checked, 1 disagreement(s)" in captured.err


def test_regcheck_refuses_a_block_past_the_end_of_a_memory_file(tmp_path, capsys):
    mem = ram_file(tmp_path / "mem.bin", 0x1004)
    assert main(["regcheck", write_map(tmp_path, RAM_MAP), "--mem", str(mem)]) == 1
    assert f"block RAM [0x1000, 0x1008) is beyond the end of {mem} (0x1004 bytes)" in capsys.readouterr().err
    assert main(["regcheck", write_map(tmp_path, RAM_MAP), "--mem", str(tmp_path / "none")]) == 1
    assert "cannot open" in capsys.readouterr().err


def test_regcheck_defaults_to_the_maps_fake_and_reports_json(tmp_path, capsys):
    assert main(["regcheck", write_map(tmp_path, TRUE_MAP), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["target"] == "fake DEV" and report["registers"] == 5 and report["mismatches"] == []


def test_regcheck_json_lists_each_disagreement_with_its_bits(tmp_path, capsys):
    mem = ram_file(tmp_path / "mem.bin", 0x2000, at=0x1000)
    # ID's upper half declared read-only: the memory file takes the write of its complement
    wrong = write_map(tmp_path, RAM_MAP.replace("{name: ID, offset: 0, reset: 0x010000ed}",
                                                "{name: ID, offset: 0, fields: [{name: LO, lsb: 0, width: 16, "
                                                "reset: 0xed}, {name: HI, lsb: 16, width: 16, access: ro, "
                                                "reset: 0x100}]}"))
    assert main(["regcheck", wrong, "--mem", str(mem), "--format", "json"]) == REGCHECK_DISAGREES
    report = json.loads(capsys.readouterr().out)
    assert report["mismatches"] == [{"register": "RAM.ID", "check": "RO bits unchanged by a write",
                                     "mask": 0xFFFF0000, "expected": 0x0100AAAA, "got": 0xFEFFAAAA}]


def make_uio(root: Path, maps: list[tuple[int, int, int]]) -> Path:
    """sysfs and /dev of a UIO device uio0 with `maps` (addr, size, offset); /dev/uio0 is a file of zeros
    holding map N at page N."""
    for i, (addr, size, offset) in enumerate(maps):
        d = root / "sys" / "class" / "uio" / "uio0" / "maps" / f"map{i}"
        d.mkdir(parents=True)
        for name, value in (("addr", addr), ("size", size), ("offset", offset)):
            (d / name).write_text(f"{value:#x}\n")
    (root / "dev").mkdir()
    (root / "dev" / "uio0").write_bytes(bytes(PAGE * (len(maps) + 1)))
    return root / "dev" / "uio0"


def make_pci(root: Path) -> Path:
    """sysfs of PCI function 0000:00:02.0: BAR0 4 KiB, BAR1 unused, BAR2 64 KiB (resourceN files of zeros)."""
    d = root / "bus" / "pci" / "devices" / "0000:00:02.0"
    d.mkdir(parents=True)
    (d / "resource").write_text(f"{0xFE00_0000:#x} {0xFE00_0FFF:#x} 0x40200\n0x0 0x0 0x0\n"
                                f"{0xE000_0000:#x} {0xE000_FFFF:#x} 0x40200\n")
    (d / "resource0").write_bytes(bytes(0x1000))
    (d / "resource2").write_bytes(bytes(0x10000))
    return d


def test_regcheck_on_a_uio_map_checks_at_the_offset_in_the_map(tmp_path, capsys):
    dev = make_uio(tmp_path, [(0xFE00_0000, 0x1000, 0), (0xFE01_0000, 0x1000, 0x40)])
    image = bytearray(dev.read_bytes())
    image[PAGE + 0x40 + 0x100:PAGE + 0x40 + 0x104] = (0x010000ED).to_bytes(4, "little")  # map1, offset 0x100
    dev.write_bytes(bytes(image))
    argv = ["regcheck", write_map(tmp_path, RAM_MAP), "--uio", "uio0", "--uio-map", "1", "--base", "0x100",
            "--sysfs-root", str(tmp_path / "sys"), "--dev-root", str(tmp_path / "dev")]
    assert main(argv) == 0
    assert "# RAM on uio0 map1 @ 0xfe010100: 2 registers checked, 0 disagreement(s)" in capsys.readouterr().err
    assert main([*argv[:-6], "--base", "0x108", *argv[-4:]]) == REGCHECK_DISAGREES   # ID is not there
    assert capsys.readouterr().out.startswith("RAM.ID: reset value: expected 0x10000ed, read 0x0")
    assert main([*argv[:4], "--uio-map", "2", *argv[6:]]) == 1
    assert "uio0: no map2 (maps: map0, map1)" in capsys.readouterr().err


def test_regcheck_on_a_pci_bar_through_sysfs(tmp_path, capsys):
    d = make_pci(tmp_path)
    ram_file(d / "resource2", 0x10000, at=0x2000)
    argv = ["regcheck", write_map(tmp_path, RAM_MAP), "--pci", "0000:00:02.0", "--bar", "2",
            "--sysfs-root", str(tmp_path)]
    assert main([*argv, "--base", "0x2000"]) == 0
    assert "on pci 0000:00:02.0 BAR 2 @ 0xe0002000" in capsys.readouterr().err
    assert main(argv) == REGCHECK_DISAGREES   # the default: the BAR's start, where ID is not
    assert main(["regcheck", write_map(tmp_path, RAM_MAP), "--pci", "0000:00:02.0", "--bar", "1",
                 "--sysfs-root", str(tmp_path)]) == 1
    assert "BAR 1 is not a memory BAR" in capsys.readouterr().err


def test_regcheck_takes_one_target(tmp_path, capsys):
    assert main(["regcheck", write_map(tmp_path, RAM_MAP), "--fake", "--mem", "/dev/null"]) == 1
    assert "choose one target, not fake and mem" in capsys.readouterr().err


@pytest.mark.parametrize(("options", "stray", "target"), [
    (["--bar", "0"], "--bar", "--pci"),                      # the default value counts: it was given
    (["--uio-map", "1"], "--uio-map", "--uio"),
    (["--mem", "/dev/null", "--bar", "2"], "--bar", "--pci"),
    (["--fake", "--uio-map", "0"], "--uio-map", "--uio"),
])
def test_an_option_without_its_target_is_a_usage_error(tmp_path, capsys, options, stray, target):
    with pytest.raises(SystemExit) as exit_:
        main(["regcheck", write_map(tmp_path, RAM_MAP), *options])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"{stray} is an option of {target}, which was not given" in err
    assert err.startswith("usage: mmiotk regcheck")


def test_target_options_keep_their_defaults_when_not_given(tmp_path, capsys):
    d = make_pci(tmp_path)
    ram_file(d / "resource0", 0x1000)
    argv = ["regcheck", write_map(tmp_path, RAM_MAP), "--pci", "0000:00:02.0", "--sysfs-root", str(tmp_path)]
    assert main(argv) == 0   # --bar not given: BAR 0
    assert "on pci 0000:00:02.0 BAR 0 @ 0xfe000000" in capsys.readouterr().err
