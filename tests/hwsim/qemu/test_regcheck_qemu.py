"""`mmiotk regcheck --qemu virt` on QEMU's own device models: the PL011 UART at 0x09000000 as its manual
describes it agrees with QEMU's model; a copy of that map edited to be wrong is reported register by register;
`--base` puts a map without a base on the virtio-blk transport in slot 31."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmiotk.cli import REGCHECK_DISAGREES, main

DATA = Path(__file__).resolve().parent / "data"
PL011 = DATA / "pl011.yaml"
# (what is edited, into what): each makes the map disagree with QEMU's PL011 on one register
EDITS = (
    ("offset: 0xfe8, access: ro, reset: 0x14", "offset: 0xfe8, access: ro, reset: 0x34"),  # r1p5's PeriphID2
    ("reset: 0x300", "reset: 0x301"),                                                      # CR: UARTEN set
    ("{name: TXFE, lsb: 7, access: ro}", "{name: TXFE, lsb: 7, access: rw}"),              # FR.TXFE writable
    ("{name: WLEN, lsb: 5, width: 2, access: rw}", "{name: WLEN, lsb: 5, width: 2, access: ro}"),  # LCR_H.WLEN
)
EXPECTED = [
    "UART0.FR: RW bits read back 0x0: expected 0x0, read 0x80 (bits 0x80)",
    "UART0.LCR_H: RO bits unchanged by a write: expected 0x0, read 0x60 (bits 0x60)",
    "UART0.CR: reset value: expected 0x301, read 0x300 (bits 0xffffffff)",
    "UART0.PERIPHID2: reset value: expected 0x34, read 0x14 (bits 0xffffffff)",
]


def test_the_pl011_map_agrees_with_qemus_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["regcheck", str(PL011), "--qemu", "virt"]) == 0
    assert "# UART0 on qemu virt @ 0x9000000: 22 registers checked, 0 disagreement(s)" in capsys.readouterr().err


def test_a_pl011_map_edited_to_be_wrong_is_reported_register_by_register(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = PL011.read_text()
    for old, new in EDITS:
        assert old in text
        text = text.replace(old, new)
    wrong = tmp_path / "pl011_wrong.yaml"
    wrong.write_text(text)
    assert main(["regcheck", str(wrong), "--qemu", "virt"]) == REGCHECK_DISAGREES
    out, err = capsys.readouterr()
    assert out.splitlines() == EXPECTED
    assert "22 registers checked, 4 disagreement(s)" in err


def test_base_puts_the_block_on_the_virtio_blk_transport(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["regcheck", str(DATA / "virtio_mmio_id.yaml"), "--qemu", "virt", "--format", "json"]
    assert main([*argv, "--base", "0x0a003e00"]) == 0        # slot 31, where QemuSpace's virtio-blk sits
    report = json.loads(capsys.readouterr().out)
    assert report["target"] == "qemu virt @ 0xa003e00" and report["mismatches"] == []
    assert main([*argv, "--base", "0x0a003c00"]) == REGCHECK_DISAGREES   # slot 30: a transport, no device
    report = json.loads(capsys.readouterr().out)
    assert [m["register"] for m in report["mismatches"]] == ["VIRTIO_MMIO.DEVICE_ID"]


def test_qemu_arg_adds_a_device_to_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = tmp_path / "virtio_rng_id.yaml"   # the same header, for an entropy device (DeviceID 4)
    block = (DATA / "virtio_mmio_id.yaml").read_text()
    rng.write_text(block.replace("DEVICE_ID, offset: 0x008, access: ro, reset: 0x2",
                                 "DEVICE_ID, offset: 0x008, access: ro, reset: 0x4"))
    assert main(["regcheck", str(rng), "--qemu", "virt", "--qemu-arg=-device", "--qemu-arg=virtio-rng-device",
                 "--base", "0x0a003c00"]) == 0                       # the next slot down: 30
    assert "5 registers checked, 0 disagreement(s)" in capsys.readouterr().err
