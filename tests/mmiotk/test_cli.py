"""The `mmiotk` command: peek/poke/dump on a memory file, register-map decoding, traces, help, errors, and
subcommands registered from other layers."""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from mmiotk import cli

UART_MAP = Path(__file__).parent / "data" / "uart.yaml"
UART_BASE = 0x40001000


@pytest.fixture
def mem(tmp_path: Path) -> Path:
    """A 64 KiB file standing in for physical memory: byte i holds i & 0xff."""
    path = tmp_path / "mem.bin"
    path.write_bytes(bytes(i & 0xFF for i in range(1 << 16)))
    return path


def mmiotk(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_peek_reads_little_endian_words(mem: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = mmiotk(capsys, "peek", "--mem", str(mem), "0x100", "2")
    assert code == 0
    assert out.splitlines() == ["0x00000100: 0x03020100", "0x00000104: 0x07060504"]


@pytest.mark.parametrize(("width", "value"), [("8", "0x10"), ("16", "0x1110"), ("64", "0x1716151413121110")])
def test_peek_honours_the_width(mem: Path, capsys: pytest.CaptureFixture[str], width: str, value: str) -> None:
    assert mmiotk(capsys, "peek", "--mem", str(mem), "-w", width, "0x10")[1].split()[1] == value


def test_poke_writes_exactly_the_word_and_verify_reads_it_back(mem: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = mmiotk(capsys, "poke", "--mem", str(mem), "--verify", "0x200", "0xdeadbeef")
    assert code == 0 and "read back 0xdeadbeef" in out
    data = mem.read_bytes()
    assert data[0x200:0x204] == bytes.fromhex("efbeadde") and data[0x1FF] == 0xFF and data[0x204] == 0x04


def test_dump_prints_a_hexdump(mem: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = mmiotk(capsys, "dump", "--mem", str(mem), "-w", "8", "0x40", "32")
    assert code == 0
    first, second = out.splitlines()
    assert first.startswith("00000040  40 41 42") and first.endswith("|@ABCDEFGHIJKLMNO|")
    assert second.startswith("00000050  50 51")


def test_dump_to_a_file_saves_the_raw_bytes_with_progress(mem: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    out_file = tmp_path / "out.bin"
    code, _, err = mmiotk(capsys, "dump", "--mem", str(mem), "--progress", "-o", str(out_file), "0x0", "64K")
    assert code == 0 and out_file.read_bytes() == mem.read_bytes()
    assert "100.0%" in err and "wrote 65536 bytes" in err


def test_progress_is_silent_when_not_a_terminal() -> None:
    stream = io.StringIO()
    progress = cli.Progress(10, "x", stream=stream)
    progress.update(10)
    progress.close()
    assert stream.getvalue() == ""


def test_peek_decodes_registers_with_a_map(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mem = tmp_path / "uart.bin"
    regs = bytearray(0x20)
    regs[0x4:0x8] = (1 | 2 << 2).to_bytes(4, "little")  # LINECTRL: PARITY=ODD, STOPBITS=2
    mem.write_bytes(bytes(regs))
    code, out, _ = mmiotk(capsys, "peek", "--mem", str(mem), "--map", str(UART_MAP), "--map-base", "0", "4")
    assert code == 0
    assert out.strip() == "0x00000004: 0x00000009  UART0.LINECTRL {PARITY=ODD STOPBITS=2}"


def test_trace_prints_a_saved_trace_decoded_with_a_map(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "t.jsonl"
    lines = [{"mmiotk_trace": 1, "name": "uart", "size": 32},
             {"kind": "write", "offset": 0, "width": 32, "value": 1, "time_ns": 1000},
             {"kind": "read", "offset": 8, "width": 32, "value": 2, "time_ns": 2000}]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    code, out, err = mmiotk(capsys, "trace", str(path), "--map", str(UART_MAP))
    assert code == 0
    write, read = out.splitlines()
    assert "write32 0x0000 <- 0x00000001" in write and "CTRL" in write and "EN=1" in write
    assert "read32 0x0008 -> 0x00000002" in read and "STATUS" in read and "TXE=1" in read
    assert "2 of 2 accesses" in err
    assert mmiotk(capsys, "trace", str(path), "--kind", "write")[1].count("\n") == 1


@pytest.mark.parametrize(("argv", "message"), [
    (["peek", "0x10000"], "beyond the end of"),
    (["peek", "0x2"], "not aligned to the 32-bit width"),
    (["poke", "0x0", "0x1ff", "-w", "8"], "does not fit in 8 bits"),
    (["dump", "0x1", "16"], "must be multiples of the 32-bit width"),
    (["peek", "--map", "/nonexistent/map.yaml", "0x0"], "map.yaml"),
    (["trace", "/nonexistent/t.jsonl"], "cannot read trace"),
])
def test_bad_input_is_one_line_naming_the_problem(mem: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
                                                  message: str) -> None:
    code, _, err = mmiotk(capsys, argv[0], "--mem", str(mem), *argv[1:]) if argv[0] != "trace" else \
        mmiotk(capsys, *argv)
    assert code == 1
    assert err.startswith(f"mmiotk {argv[0]}: ") and message in err and "Traceback" not in err


def test_a_missing_memory_file_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = mmiotk(capsys, "peek", "--mem", str(tmp_path / "nope"), "0")
    assert code == 1 and "cannot open" in err and "nope" in err


@pytest.mark.parametrize("bad", ["12", "u7", "x"])
def test_a_bad_width_is_a_usage_error(bad: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="width must be one of 8, 16, 32, 64"):
        cli.parse_width(bad)


@pytest.mark.parametrize(("text", "value"), [("0x10", 16), ("4096", 4096), ("4K", 4096), ("1M", 1 << 20),
                                             ("0b101", 5)])
def test_numbers_take_prefixes_and_size_suffixes(text: str, value: int) -> None:
    assert cli.parse_int(text) == value


def test_every_subcommand_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    parser = cli.build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    commands = list(sub.choices)
    assert {"peek", "poke", "dump", "trace", "demo"} <= set(commands)
    for name in commands:
        with pytest.raises(SystemExit) as exit_info:
            cli.main([name, "--help"])
        assert exit_info.value.code == 0
        assert "usage: mmiotk " + name in capsys.readouterr().out


def test_a_registered_command_is_added_and_runs(capsys: pytest.CaptureFixture[str]) -> None:
    def register(sub: argparse._SubParsersAction) -> None:
        p = sub.add_parser("hello", help="say hello")
        p.add_argument("--who", default="world")
        p.set_defaults(func=lambda args: print(f"hello {args.who}") or 3)

    assert cli.main(["hello", "--who", "bus"], extra=[register]) == 3
    assert capsys.readouterr().out == "hello bus\n"


def test_a_registered_command_replaces_the_core_one_of_the_same_name(capsys: pytest.CaptureFixture[str]) -> None:
    def register(sub: argparse._SubParsersAction) -> None:
        sub.add_parser("peek").set_defaults(func=lambda args: print("mine") or 0)

    assert cli.main(["peek"], extra=[register]) == 0
    assert capsys.readouterr().out == "mine\n"


def test_debug_shows_the_traceback(mem: Path) -> None:
    with pytest.raises(Exception, match="beyond the end"):
        cli.main(["--debug", "peek", "--mem", str(mem), "0x10000"])


def test_the_module_runs_as_a_program(mem: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "mmiotk.cli", "peek", "--mem", str(mem), "0x0"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "0x00000000: 0x03020100"
