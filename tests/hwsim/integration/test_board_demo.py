"""`mmiotk demo`: boots the example board, prints the address map and bindings, shows revocation."""

from __future__ import annotations

import argparse
import io
import os
from pathlib import Path

import pytest

from drivers.bus.platform import BoardError
from hwsim.integration import board_demo as demo
from mmiotk import CachePolicy
from mmiotk.bus import Device, Driver


@pytest.fixture
def output() -> str:
    out = io.StringIO()
    assert demo.run_demo(out=out) == 0
    return out.getvalue()


def test_demo_prints_the_address_map_with_every_board_range(output: str) -> None:
    assert "address map" in output
    assert "0xa003e00    0xa004000      0x200  mmio       virtio31[0]" in output
    assert "uart0[0]" in output and "memory     ram" in output and "dma        qemu-virt-dma" in output


def test_demo_binds_the_device_and_leaves_empty_slots_unbound(output: str) -> None:
    assert "virtio31   -> VirtioMmioIdent  virtio block (DeviceID 2)" in output
    assert "virtio0 .. virtio30 (31 devices): unbound: VirtioMmioIdent: empty slot (DeviceID 0)" in output
    assert "uart0, rtc0: unbound: no matching driver" in output


def test_demo_handles_an_interrupt_and_shows_revocation_after_unbind(output: str) -> None:
    assert "interrupt 79 -> virtio31: InterruptStatus 0x1, acknowledged" in output
    assert "virtio31: old mapping -> RevokedError" in output


def test_register_adds_a_demo_subcommand_that_runs(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="mmiotk")
    demo.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["demo", "--board", str(demo.DEFAULT_BOARD)])
    assert args.func(args) == 0
    assert "bindings" in capsys.readouterr().out


def test_shm_backed_ram_file_is_removed_afterwards() -> None:
    out = io.StringIO()
    assert demo.run_demo(shm=True, out=out) == 0
    shared = [w for w in out.getvalue().split() if "mmiotk-demo-ram-" in w]
    assert shared and not os.path.exists(shared[0])


def test_a_bad_board_file_is_reported_with_node_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("memory: {base: 0x40000000, size: 0x100000}\ndevices:\n  - name: x\n    compatible: a\n"
                   "    reg: [[0x1000, 0x100]]\n    irq: [1]\n")
    with pytest.raises(BoardError, match="node 'x', field 'irq': unknown field"):
        demo.run_demo(bad, out=io.StringIO())


class Uart(Driver):
    compatible = ("arm,pl011",)

    def bind(self, device: Device) -> None:
        self.regs = device.mmio(0).map(CachePolicy.UNCACHED_DEVICE)


def test_the_demo_binds_whatever_drivers_it_is_given() -> None:
    out = io.StringIO()
    assert demo.run_demo(drivers=[Uart, *demo.DEMO_DRIVERS], out=out) == 0
    text = out.getvalue()
    assert "uart0      -> Uart" in text and "virtio31   -> VirtioMmioIdent" in text
    assert "unbind uart0 <- Uart" in text
