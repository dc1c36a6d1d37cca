"""The `mmiotk` command. Subcommands come from the entry-point group `mmiotk.commands`, so layers above
mmiotk (drivers, hwsim) add theirs without mmiotk importing them.

An entry point names a callable `register(subparsers) -> None` that adds one subparser and sets
`func(args) -> int` on it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points

from .errors import MmioError


def _core_commands(sub: argparse._SubParsersAction) -> None:
    from . import demo_core

    demo_core.register(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mmiotk", description="Register access and MMIO drivers, written once.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    seen: set[str] = set()
    for ep in sorted(entry_points(group="mmiotk.commands"), key=lambda e: e.name):
        if ep.name in seen:
            continue
        seen.add(ep.name)
        ep.load()(sub)
    if "demo" not in sub.choices:
        _core_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except MmioError as exc:
        print(f"mmiotk {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
