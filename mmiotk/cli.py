"""The `mmiotk` command.

Core subcommands live here: `peek`, `poke` and `dump` (devmem-style access to /dev/mem or any file via
`--mem`, decoded with a register map via `--map`) and `trace` (show a recorded trace). Layers above mmiotk
add theirs through the entry-point group `mmiotk.commands` (`demo` from hwsim.integration, `serve` and `nbd`
from drivers.block_services): an entry names a callable `register(subparsers) -> None` that adds one
subparser and sets `func(args) -> int`. A registered command wins over a core one of the same name.
`regcheck` runs the register conformance suite on one target (mmiotk.regcheck_targets; more arrive through
the entry-point group `mmiotk.regcheck_targets`).

Errors a user can act on (a missing file, an address outside the file, a bad register map) print one line
naming what was wrong and exit 1; `--debug` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import os
import stat
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, TextIO

from .errors import MmioError

AddCommand = Callable[[argparse._SubParsersAction], None]
"""What an entry point of `mmiotk.commands` names: adds one subparser that sets `func(args) -> int`."""
WIDTHS = (8, 16, 32, 64)


# --- helpers ------------------------------------------------------------------------------------------
def parse_int(text: str) -> int:
    """0x1000, 4096, 0o17, 0b101, 1_000; K/M/G suffixes (powers of two) for sizes."""
    scale = 1
    if text[-1:].upper() in "KMG" and not text.lower().startswith("0x"):
        scale = 1 << (10 * ("KMG".index(text[-1].upper()) + 1))
        text = text[:-1]
    try:
        value = int(text, 0) * scale
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number (use 0x... for hex)") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative")
    return value


def parse_width(text: str) -> int:
    digits = text.lower().removeprefix("u")
    width = int(digits) if digits.isdigit() else -1
    if width not in WIDTHS:
        raise argparse.ArgumentTypeError(f"width must be one of {', '.join(map(str, WIDTHS))} (bits), "
                                         f"got {text!r}")
    return width


class Progress:
    """A one-line progress bar on stderr for long runs (only when stderr is a terminal, or when forced)."""

    def __init__(self, total: int, what: str, stream: TextIO | None = None, force: bool = False) -> None:
        self.total = max(total, 1)
        self.what = what
        self.stream = stream or sys.stderr
        self.enabled = force or self.stream.isatty()
        self.done = 0
        self._last = 0.0
        self._start = time.monotonic()

    def update(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if self.enabled and (now - self._last > 0.1 or self.done >= self.total):
            self._last = now
            frac = min(self.done / self.total, 1.0)
            bar = "#" * int(frac * 30)
            rate = self.done / max(now - self._start, 1e-9) / (1 << 20)
            self.stream.write(f"\r{self.what} [{bar:<30}] {frac:6.1%} {rate:8.1f} MiB/s")
            self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


class Memory:
    """[addr, addr + size) of /dev/mem (or another device node) through the core's DevMemSpace, so every
    access is one exact-width load or store; regular files (memory images, /dev/shm RAM files) are read
    and written with pread/pwrite, which needs no page-sized mapping beyond the end of a small file."""

    def __init__(self, path: str, addr: int, size: int) -> None:
        from . import CachePolicy, DevMemSpace, MmioResource
        from .space import page_span

        try:
            st = os.stat(path)
        except OSError as exc:
            raise MmioError(f"cannot open {path}: {exc.strerror}") from None
        if not os.access(path, os.R_OK | os.W_OK):
            hint = " (run as root for /dev/mem)" if path == "/dev/mem" else ""
            raise MmioError(f"no read-write access to {path}{hint}")
        self.path = path
        self.fd = -1
        if stat.S_ISREG(st.st_mode):
            if addr + size > st.st_size:
                raise MmioError(f"[{addr:#x}, {addr + size:#x}) is beyond the end of {path} "
                                f"({st.st_size:#x} bytes)")
            self.fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
            return
        start, span = page_span(addr, size)
        resource = MmioResource(DevMemSpace(path), start, span)
        self.buffer = resource.create_region(start, span, f"{path}@{start:#x}").map(CachePolicy.UNCACHED)
        self.start = start

    def read(self, addr: int, width: int) -> int:
        if self.fd >= 0:
            return int.from_bytes(os.pread(self.fd, width // 8, addr), "little")
        return int(getattr(self.buffer, f"read{width}")(addr - self.start))

    def write(self, addr: int, width: int, value: int) -> None:
        if self.fd >= 0:
            os.pwrite(self.fd, value.to_bytes(width // 8, "little"), addr)
            return
        getattr(self.buffer, f"write{width}")(addr - self.start, value)

    def read_block(self, addr: int, n: int, width: int) -> bytes:
        """n bytes at addr: one pread from a file, exact-width loads from a device."""
        if self.fd >= 0:
            return os.pread(self.fd, n, addr)
        step = width // 8
        return b"".join(self.read(a, width).to_bytes(step, "little") for a in range(addr, addr + n, step))

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def load_map(path: str | None) -> Any:
    if path is None:
        return None
    from . import regmap

    return regmap.load(path)


def decoded_suffix(regmap: Any, base: int | None, addr: int, width: int, value: int) -> str:
    """'  REG {FIELD=..}' for an access the map covers, else ''. `base` overrides where the map sits (the
    lowest block's base when the map has several)."""
    if regmap is None:
        return ""
    offset = addr - (base if base is not None else min(regmap.bases.values()))
    got = regmap.decode(offset, width, value) if offset >= 0 else None
    if got is None:
        return ""
    reg, fields = got
    body = " ".join(f"{k}={v.name if isinstance(v, enum.Enum) else v}" for k, v in fields.items())
    return f"  {reg} {{{body}}}" if body else f"  {reg}"


def _fmt(value: int, width: int) -> str:
    return f"{value:#0{width // 4 + 2}x}"


# --- peek / poke / dump ---------------------------------------------------------------------------------
def run_peek(args: argparse.Namespace) -> int:
    nbytes = args.width // 8
    if args.addr % nbytes:
        raise MmioError(f"address {args.addr:#x} is not aligned to the {args.width}-bit width")
    regmap = load_map(args.map)
    with Memory(args.mem, args.addr, nbytes * args.count) as mem:
        for i in range(args.count):
            addr = args.addr + i * nbytes
            value = mem.read(addr, args.width)
            print(f"{addr:#010x}: {_fmt(value, args.width)}"
                  f"{decoded_suffix(regmap, args.map_base, addr, args.width, value)}")
    return 0


def run_poke(args: argparse.Namespace) -> int:
    nbytes = args.width // 8
    if args.addr % nbytes:
        raise MmioError(f"address {args.addr:#x} is not aligned to the {args.width}-bit width")
    if args.value >= 1 << args.width:
        raise MmioError(f"value {args.value:#x} does not fit in {args.width} bits")
    regmap = load_map(args.map)
    with Memory(args.mem, args.addr, nbytes) as mem:
        mem.write(args.addr, args.width, args.value)
        after = mem.read(args.addr, args.width) if args.verify else None
    line = f"{args.addr:#010x} <- {_fmt(args.value, args.width)}"
    line += decoded_suffix(regmap, args.map_base, args.addr, args.width, args.value)
    if after is not None:
        line += f"   read back {_fmt(after, args.width)}"
    print(line)
    return 0 if after is None or after == args.value or not args.strict else 2


def _hexdump(addr: int, data: bytes, width: int, out: TextIO) -> None:
    nbytes = width // 8
    for row in range(0, len(data), 16):
        chunk = data[row:row + 16]
        words = [int.from_bytes(chunk[i:i + nbytes], "little") for i in range(0, len(chunk), nbytes)]
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        cols = " ".join(f"{w:0{width // 4}x}" for w in words)
        out.write(f"{addr + row:08x}  {cols:<{(16 // nbytes) * (width // 4 + 1)}} |{text}|\n")


def run_dump(args: argparse.Namespace) -> int:
    if args.length <= 0:
        raise MmioError("dump length must be positive")
    nbytes = args.width // 8
    if args.addr % nbytes or args.length % nbytes:
        raise MmioError(f"address {args.addr:#x} and length {args.length:#x} must be multiples of the "
                        f"{args.width}-bit width")
    mem = Memory(args.mem, args.addr, args.length)
    progress = Progress(args.length, "dump", force=args.progress)
    chunk = 1 << 16
    out_bin = open(args.output, "wb") if args.output else None  # noqa: SIM115 - closed below
    try:
        for pos in range(args.addr, args.addr + args.length, chunk):
            n = min(chunk, args.addr + args.length - pos)
            data = mem.read_block(pos, n, args.width)
            if out_bin is not None:
                out_bin.write(data)
            else:
                _hexdump(pos, data, args.width, sys.stdout)
            progress.update(n)
    finally:
        progress.close()
        mem.close()
        if out_bin is not None:
            out_bin.close()
    if args.output:
        print(f"wrote {args.length} bytes from {args.addr:#x} to {args.output}", file=sys.stderr)
    return 0


def _add_mem_options(parser: argparse.ArgumentParser, width_default: int = 32) -> None:
    parser.add_argument("--mem", default="/dev/mem", metavar="PATH",
                        help="memory to access: /dev/mem (default) or any file, e.g. a /dev/shm RAM file")
    parser.add_argument("-w", "--width", type=parse_width, default=width_default, metavar="BITS",
                        help=f"access width in bits: 8, 16, 32 or 64 (default {width_default})")
    parser.add_argument("--map", metavar="FILE", help="decode with a register map (.yaml .json .rdl .svd)")
    parser.add_argument("--map-base", type=parse_int, metavar="ADDR",
                        help="the address the map's block sits at (default: the base in the map)")


# --- trace ----------------------------------------------------------------------------------------------
def run_trace(args: argparse.Namespace) -> int:
    from .trace import Trace

    try:
        trace = Trace.load(args.file)
    except OSError as exc:
        raise MmioError(f"cannot read trace {args.file}: {exc.strerror}") from None
    regmap = load_map(args.map)
    accesses: Iterable[Any] = trace.accesses
    if args.kind:
        accesses = [a for a in accesses if a.kind.startswith(args.kind)]
    count = 0
    for access in accesses:
        if regmap is not None and not access.is_block and isinstance(access.value, int):
            got = regmap.decode(access.offset, access.width, access.value)
            if got is not None:
                access = dataclasses.replace(access, register=got[0], fields=got[1])
        print(f"{access.time_ns / 1e3:12.3f} us  {access.describe()}")
        count += 1
    print(f"# {count} of {len(trace)} accesses in {args.file}", file=sys.stderr)
    return 0


def run_regmap_codegen(args: argparse.Namespace) -> int:
    from .regmap import load
    from .regmap.codegen import to_python

    regmap = load(args.map, strict=not args.lenient)
    text = to_python(regmap)
    if args.output in (None, "-"):
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"# {args.output}: {len(regmap.blocks)} block(s), "
              f"{sum(len(b._specs) for b in regmap.blocks.values())} registers", file=sys.stderr)
    return 0


REGCHECK_DISAGREES = 3
"""`mmiotk regcheck`'s exit status when the implementation disagrees with the map (1: the check could not run)."""


def run_regcheck(args: argparse.Namespace) -> int:
    import json

    from .regcheck_targets import RegcheckJob, RegcheckUsageError, check_target_options, chosen_target
    from .regmap import load

    try:
        check_target_options(args, args.regcheck_options)
        target = chosen_target(args, args.regcheck_targets)
        regmap = load(args.map, strict=not args.lenient)
        block = regmap.block_class(args.block)._block_name
        job = RegcheckJob(os.fspath(args.map), not args.lenient, regmap, block, args.base)
        result = target.run(args, job)
    except RegcheckUsageError as exc:
        args.regcheck_parser.error(str(exc))  # exits 2, after the usage line
    problems = result.mismatches
    registers = len(regmap.block_class(block)._specs)
    if args.format == "json":
        print(json.dumps({"map": job.map_path, "block": block, "target": result.target, "registers": registers,
                          "mismatches": [dataclasses.asdict(p) for p in problems]}, indent=1))
    else:
        for problem in problems:
            print(problem)
    print(f"# {block} on {result.target}: {registers} registers checked, {len(problems)} disagreement(s) "
          "with the map", file=sys.stderr)
    return REGCHECK_DISAGREES if problems else 0


# --- the parser -------------------------------------------------------------------------------------------
def _core_commands(sub: argparse._SubParsersAction, taken: set[str]) -> None:
    if "peek" not in taken:
        p = sub.add_parser("peek", help="read registers or memory (like devmem)",
                           description="Read COUNT values of WIDTH bits at ADDR and print them, decoded with "
                                       "--map when given.")
        p.add_argument("addr", type=parse_int, metavar="ADDR", help="physical address (file offset with --mem)")
        p.add_argument("count", type=parse_int, nargs="?", default=1, metavar="COUNT", help="values (default 1)")
        _add_mem_options(p)
        p.set_defaults(func=run_peek)
    if "poke" not in taken:
        p = sub.add_parser("poke", help="write a register or memory word (like devmem)",
                           description="Write VALUE (WIDTH bits) at ADDR.")
        p.add_argument("addr", type=parse_int, metavar="ADDR")
        p.add_argument("value", type=parse_int, metavar="VALUE")
        _add_mem_options(p)
        p.add_argument("--verify", action="store_true", help="read the value back and show it")
        p.add_argument("--strict", action="store_true", help="with --verify: exit 2 when it differs")
        p.set_defaults(func=run_poke)
    if "dump" not in taken:
        p = sub.add_parser("dump", help="hexdump (or save) a range of memory",
                           description="Dump LENGTH bytes at ADDR as a hexdump, or raw into --output.")
        p.add_argument("addr", type=parse_int, metavar="ADDR")
        p.add_argument("length", type=parse_int, metavar="LENGTH", help="bytes (K/M/G suffixes work)")
        _add_mem_options(p)
        p.add_argument("-o", "--output", metavar="FILE", help="write the raw bytes to FILE")
        p.add_argument("--progress", action="store_true", help="show progress even when stderr is not a tty")
        p.set_defaults(func=run_dump)
    if "regmap" not in taken:
        p = sub.add_parser("regmap", help="register-map tools (codegen)",
                           description="Tools over register maps (.yaml .json .rdl .svd .svd.gz .xml).")
        rsub = p.add_subparsers(dest="regmap_command", metavar="TOOL")
        rsub.required = True
        c = rsub.add_parser("codegen", help="write a typed Python module of RegisterBlock classes",
                            description="Write MAP as a Python module of RegisterBlock classes (mypy and ruff "
                                        "clean), so drivers get completion and type checking.")
        c.add_argument("map", metavar="MAP")
        c.add_argument("-o", "--output", metavar="FILE", help="the module to write (default: stdout)")
        c.add_argument("--lenient", action="store_true", help="repair vendor mistakes with warnings")
        c.set_defaults(func=run_regmap_codegen)
    if "regcheck" not in taken:
        from .regcheck_targets import add_target_options, targets

        available = targets()
        p = sub.add_parser("regcheck", help="check an implementation against its register map",
                           description="Run the conformance suite generated from MAP (reset values, RW readback, "
                                       "RO unchanged, W1C/W1S/toggle, RC/RS) on the block in one target: the "
                                       "map's fake (default), /dev/mem or a memory file, a UIO map, a PCI BAR, "
                                       "or a registered target (QEMU, RTL). Prints each register where map and "
                                       f"implementation disagree and exits {REGCHECK_DISAGREES}; 0 when they "
                                       "agree, 1 when the check could not run, 2 on a usage error (such as "
                                       "a target's option without the target: --bar without --pci).")
        p.add_argument("map", metavar="MAP")
        p.add_argument("--block", help="the block to check (when the map has several)")
        p.add_argument("--base", type=parse_int, metavar="ADDR",
                       help="where the block is: its address (--mem, --qemu, --rtl; default: the map's base) or "
                            "its offset in the UIO map or BAR (--uio, --pci; default 0)")
        p.add_argument("--lenient", action="store_true", help="repair vendor mistakes with warnings")
        p.add_argument("--format", choices=("text", "json"), default="text",
                       help="text: one line per disagreement (default); json: one document on stdout")
        options = add_target_options(p, available)
        p.set_defaults(func=run_regcheck, regcheck_targets=available, regcheck_options=options, regcheck_parser=p)
    if "trace" not in taken:
        p = sub.add_parser("trace", help="show a recorded register trace (.jsonl)",
                           description="Print a trace saved with Trace.save(), one access per line, decoded "
                                       "with --map when given.")
        p.add_argument("file", metavar="FILE")
        p.add_argument("--map", metavar="FILE", help="decode with a register map")
        p.add_argument("--kind", choices=["read", "write"], help="only reads or only writes")
        p.set_defaults(func=run_trace)


def build_parser(extra: Sequence[AddCommand] = ()) -> argparse.ArgumentParser:
    """The full parser: registered commands, `extra` registrations (tests), then the core's."""
    parser = argparse.ArgumentParser(prog="mmiotk", description="Register access and MMIO drivers, written once.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    seen: set[str] = set()
    for ep in sorted(entry_points(group="mmiotk.commands"), key=lambda e: e.name):
        if ep.name in seen:
            continue
        seen.add(ep.name)
        ep.load()(sub)
    for register in extra:  # skipped when the entry points already registered the same command
        probe = argparse.ArgumentParser().add_subparsers()
        register(probe)
        if not set(probe.choices) & set(sub.choices):
            register(sub)
    _core_commands(sub, set(sub.choices))
    return parser


def main(argv: Sequence[str] | None = None, extra: Sequence[AddCommand] = ()) -> int:
    parser = build_parser(extra)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except (MmioError, OSError, ValueError, TimeoutError) as exc:
        if args.debug:
            raise
        print(f"mmiotk {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
