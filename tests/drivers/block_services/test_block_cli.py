"""`mmiotk nbd` and `mmiotk serve`: run as programs, serve real clients, stop on SIGTERM, explain bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest

from drivers.block.protocol import BlockCommand, BlockFlag, BlockOp, BlockStatus, Vmo, run_op
from drivers.block_services.cli import open_device, parse_size, register_nbd, register_serve
from drivers.block_services.client import BlockClient
from mmiotk import cli

from .block_helpers import Procs

# The commands as the installed `mmiotk` runs them, whether or not the entry points are installed yet.
MAIN = ("import sys; from mmiotk.cli import main; from drivers.block_services.cli import register_nbd, register_serve; "
        "sys.exit(main(sys.argv[1:], extra=[register_nbd, register_serve]))")


def start(procs: Procs, *argv: str) -> tuple[subprocess.Popen[str], str]:
    """Start `mmiotk ARGV` and return it with the first line it prints (the address it serves)."""
    proc = procs.start("-c", MAIN, *argv)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    assert line, proc.stderr.read() if proc.stderr else "no output"
    return proc, line


def stop(proc: subprocess.Popen[str]) -> str:
    os.kill(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    return err


def test_nbd_serves_a_ram_disk_until_sigterm(procs: Procs, sockdir: Path) -> None:
    proc, uri = start(procs, "nbd", "--ramdisk", "8M", "--socket", str(sockdir / "n.sock"), "--name", "ram")
    assert uri == f"nbd+unix:///ram?socket={sockdir / 'n.sock'}"
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", uri], capture_output=True, text=True,
                                     timeout=60, check=True).stdout)
    assert info["virtual-size"] == 8 << 20
    err = stop(proc)
    assert "stopped: 1 connections" in err and not (sockdir / "n.sock").exists()


def test_nbd_serves_an_image_file_over_loopback_tcp(procs: Procs, tmp_path: Path) -> None:
    image = tmp_path / "d.img"
    proc, uri = start(procs, "nbd", "--image", str(image), "--create", "4M", "--tcp", "127.0.0.1:0")
    assert uri.startswith("nbd://127.0.0.1:")
    subprocess.run(["qemu-io", "-f", "raw", "-c", "write -P 0x3c 0 64k", uri], capture_output=True, timeout=60,
                   check=True)
    stop(proc)
    data = image.read_bytes()
    assert len(data) == 4 << 20 and data[:65536] == b"\x3c" * 65536


def test_serve_serves_the_block_fifo_until_sigterm(procs: Procs, sockdir: Path) -> None:
    proc, path = start(procs, "serve", "--ramdisk", "1M", "--socket", str(sockdir / "f.sock"))
    with BlockClient(path) as blk:
        buf = blk.attach(8192)
        buf.array[:4096] = np.arange(4096) % 251
        blk.write(buf, 10, 8)
        blk.read(buf, 10, 8, vmo_offset=8)
        assert np.array_equal(buf.array[4096:], buf.array[:4096])
    err = stop(proc)
    assert "stopped: 1 clients" in err and "0 bytes copied" in err


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = cli.main(list(argv), extra=[register_nbd, register_serve])
    return code, capsys.readouterr().err


@pytest.mark.parametrize(("argv", "message"), [
    (["nbd", "--image", "/nonexistent/disk.img", "--socket", "{s}"], "cannot open /nonexistent/disk.img"),
    (["nbd", "--ramdisk", "1000", "--socket", "{s}"], "not a multiple of the 512-byte block size"),
    (["serve", "--ramdisk", "1M", "--create", "1M", "--socket", "{s}"], "--create SIZE goes with --image"),
    (["nbd", "--ramdisk", "1M", "--tcp", "localhost"], "expected [HOST:]PORT"),
    (["serve", "--ramdisk", "1M", "--dma", "--socket", "{s}"], "no DMA pool to share"),
])
def test_bad_options_are_one_line_errors(capsys: pytest.CaptureFixture[str], sockdir: Path, argv: list[str],
                                         message: str) -> None:
    code, err = run_cli(capsys, *(a.format(s=sockdir / "x.sock") for a in argv))
    assert not (sockdir / "x.sock").exists()
    assert code == 1 and err.startswith(f"mmiotk {argv[0]}: ") and message in err


def test_the_socket_path_must_be_free(capsys: pytest.CaptureFixture[str], sockdir: Path) -> None:
    taken = sockdir / "taken.sock"
    taken.touch()
    code, err = run_cli(capsys, "serve", "--ramdisk", "1M", "--socket", str(taken))
    assert code == 1 and "already exists" in err


@pytest.mark.parametrize("argv", [["nbd"], ["nbd", "--ramdisk", "1M"], ["serve", "--image", "x"],
                                  ["nbd", "--ramdisk", "12Q", "--socket", "s"]])
def test_missing_or_malformed_options_are_usage_errors(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        run_cli(capsys, *argv)
    assert info.value.code == 2 and "usage: mmiotk" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["nbd", "serve"])
def test_help_describes_the_device_options(capsys: pytest.CaptureFixture[str], command: str) -> None:
    with pytest.raises(SystemExit):
        run_cli(capsys, command, "--help")
    out = capsys.readouterr().out
    assert "--ramdisk SIZE" in out and "--image FILE" in out and "--read-only" in out


@pytest.mark.parametrize(("text", "value"), [("64M", 64 << 20), ("1GiB", 1 << 30), ("4096", 4096), ("8k", 8192)])
def test_sizes_take_unit_suffixes(text: str, value: int) -> None:
    assert parse_size(text) == value


@pytest.mark.parametrize(("extra", "flags"), [([], BlockFlag.TRIM_SUPPORT | BlockFlag.FUA_SUPPORT),
                                               (["--read-only"], BlockFlag.READONLY)])
def test_the_cli_ram_disk_offers_trim_and_fua_unless_read_only(extra: list[str], flags: BlockFlag) -> None:
    args = cli.build_parser([register_serve]).parse_args(["serve", "--ramdisk", "1M", "--ublk", *extra])
    with open_device(args) as disk:
        assert disk.query().flags == flags
        if not extra:  # TRIM works: it zeroes
            buf = np.full(1024, 9, dtype=np.uint8)
            assert run_op(disk, BlockOp(BlockCommand.WRITE, 2, 4, 0, Vmo(buf))) is BlockStatus.OK
            assert run_op(disk, BlockOp(BlockCommand.TRIM, 1, 4)) is BlockStatus.OK
            assert run_op(disk, BlockOp(BlockCommand.READ, 2, 4, 0, Vmo(buf))) is BlockStatus.OK
            assert not buf[:512].any() and (buf[512:] == 9).all()


def test_registering_twice_keeps_one_command(capsys: pytest.CaptureFixture[str]) -> None:
    parser = cli.build_parser([register_nbd, register_nbd])
    assert parser.parse_args(["nbd", "--ramdisk", "1M", "--socket", "s"]).command == "nbd"



class _EntryPoint:
    def __init__(self, value: object) -> None:
        self.value = value

    def load(self) -> object:
        return self.value


def test_a_registered_target_adds_its_option_and_serves(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                        sockdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from drivers.block_services import cli as block_cli
    from hwsim.integration.block_targets import open_model

    monkeypatch.setattr(block_cli, "block_targets", lambda: {"virtio-model": _EntryPoint(open_model)})
    image = tmp_path / "m.img"
    image.write_bytes(bytes(1 << 20))
    before = signal.getsignal(signal.SIGTERM)
    code, err = run_cli(capsys, "nbd", "--virtio-model", str(image), "--socket", str(sockdir / "m.sock"),
                        "--duration", "0.2")
    assert code == 0 and "serving 2048 blocks of 512 bytes" in err and "stopped: 0 connections" in err
    assert signal.getsignal(signal.SIGTERM) is before  # the handlers are put back
