"""Where `mmiotk regcheck` runs its suite: the targets, the core's and the registered ones.

A target adds its options to the command and, when they are given, runs `check_block` on the block where it
lives and returns the disagreements. The core's targets reach the block through an MmioBuffer in this process:
the map's own fake device (the default: is the map consistent, and does the fake implement it?), /dev/mem or
a memory file (`--mem`), one map of a UIO device (`--uio`), a PCI BAR through sysfs (`--pci`). Layers above
mmiotk add theirs through the entry-point group `mmiotk.regcheck_targets` (QEMU's device models through
qtest from hwsim.qemu, RTL under cocotb from hwsim.cosim): an entry names a class whose instances have the
methods of `RegcheckTarget`, so the core never imports them.

The first option a target adds chooses it; the others belong to it (`--bar` to `--pci`, `--top` to `--rtl`).
One of those given without its target is a usage error (`check_target_options`), not silently ignored: the
parser leaves them out of the namespace unless given, and fills in their defaults once checked.
"""

from __future__ import annotations

import argparse
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Protocol

from .devmem import DevMemSpace
from .errors import MmioError
from .fake import FakeDevice
from .pci import PciSysfsSpace
from .policy import CachePolicy
from .region import MmioResource
from .regmap import RegisterMap
from .regmap.regcheck import Mismatch, check_block
from .space import AddressSpace
from .uio import UioSpace


@dataclass(frozen=True)
class RegcheckJob:
    """What to check: `block` of the map at `map_path` (loaded as `regmap`, strict or not) at `base` (None:
    the target's default: the map's base for an address, 0 for an offset into a UIO map or a BAR)."""

    map_path: str
    strict: bool
    regmap: RegisterMap
    block: str
    base: int | None

    @property
    def block_class(self) -> Any:
        return self.regmap.block_class(self.block)

    @property
    def size(self) -> int:
        """Bytes the block spans (at least one 64-bit word)."""
        return max(int(self.block_class._size), 8)

    def address(self) -> int:
        """`base`, or where the map puts the block."""
        return self.base if self.base is not None else self.regmap.bases[self.block]


@dataclass(frozen=True)
class RegcheckResult:
    target: str            # where the suite ran, for the report ("/dev/mem @ 0x...", "qemu virt @ 0x...")
    mismatches: list[Mismatch]


class RegcheckUsageError(MmioError):
    """Options that do not go together (an option given without its target, a target without what it
    needs): `mmiotk regcheck` reports it as a usage error (exit status 2)."""


class RegcheckTarget(Protocol):
    """A target of `mmiotk regcheck` (the core's, or a class named by a `mmiotk.regcheck_targets` entry)."""

    def add_arguments(self, group: argparse._ArgumentGroup) -> None:
        """Add this target's options: the first chooses the target, the others are valid only with it."""

    def chosen(self, args: argparse.Namespace) -> bool:
        """Whether the options given choose this target."""

    def run(self, args: argparse.Namespace, job: RegcheckJob) -> RegcheckResult:
        """Run the suite on the block where the options say it is."""


def check_in(space: AddressSpace, job: RegcheckJob, address: int, where: str) -> RegcheckResult:
    """The suite on the block mapped at `address` of `space` (uncached, device memory)."""
    size = job.size
    buffer = MmioResource(space, address, size).create_region(address, size, job.block).map(
        CachePolicy.UNCACHED_DEVICE)
    return RegcheckResult(f"{where} @ {address:#x}", check_block(job.block_class(buffer)))


class FakeTarget:
    """The map's own FakeDevice: the default target."""

    def add_arguments(self, group: argparse._ArgumentGroup) -> None:
        group.add_argument("--fake", action="store_true",
                           help="the map's own fake device (the default when no target is given)")

    def chosen(self, args: argparse.Namespace) -> bool:
        return bool(args.fake)

    def run(self, args: argparse.Namespace, job: RegcheckJob) -> RegcheckResult:
        fake = FakeDevice(job.regmap, block=job.block)
        return RegcheckResult(f"fake {job.block}", check_block(fake.bind()))


class MemTarget:
    """/dev/mem (or another device node), or a memory file: `base` is the physical address or file offset."""

    def add_arguments(self, group: argparse._ArgumentGroup) -> None:
        group.add_argument("--mem", metavar="PATH",
                           help="/dev/mem at the block's physical address, or a memory file at that offset")

    def chosen(self, args: argparse.Namespace) -> bool:
        return args.mem is not None

    def run(self, args: argparse.Namespace, job: RegcheckJob) -> RegcheckResult:
        try:
            st = os.stat(args.mem)
        except OSError as exc:
            raise MmioError(f"cannot open {args.mem}: {exc.strerror}") from None
        address = job.address()
        if stat.S_ISREG(st.st_mode) and address + job.size > st.st_size:   # a mapping past the end: SIGBUS
            raise MmioError(f"block {job.block} [{address:#x}, {address + job.size:#x}) is beyond the end of "
                            f"{args.mem} ({st.st_size:#x} bytes)")
        return check_in(DevMemSpace(args.mem), job, address, args.mem)


class UioTarget:
    """Map N of /dev/uioX: `base` is the block's offset in the map."""

    def add_arguments(self, group: argparse._ArgumentGroup) -> None:
        group.add_argument("--uio", metavar="DEV", help="a UIO device (uio0 or /dev/uio0); see --uio-map")
        group.add_argument("--uio-map", type=int, default=0, metavar="N", help="with --uio: its map N (default 0)")

    def chosen(self, args: argparse.Namespace) -> bool:
        return args.uio is not None

    def run(self, args: argparse.Namespace, job: RegcheckJob) -> RegcheckResult:
        device = os.path.basename(args.uio)
        space = UioSpace(device, sysfs_root=args.sysfs_root, dev_root=args.dev_root)
        try:
            found = [m for m in space.maps if m.index == args.uio_map]
            if not found:
                raise MmioError(f"{device}: no map{args.uio_map} (maps: "
                                f"{', '.join(f'map{m.index}' for m in space.maps)})")
            return check_in(space, job, found[0].addr + (job.base or 0), f"{device} map{args.uio_map}")
        finally:
            space.close()


class PciTarget:
    """A memory BAR of a PCI function through sysfs resourceN: `base` is the block's offset in the BAR."""

    def add_arguments(self, group: argparse._ArgumentGroup) -> None:
        group.add_argument("--pci", metavar="BDF", help="a PCI function (0000:00:03.0); see --bar")
        group.add_argument("--bar", type=int, default=0, metavar="N", help="with --pci: its memory BAR N (default 0)")

    def chosen(self, args: argparse.Namespace) -> bool:
        return args.pci is not None

    def run(self, args: argparse.Namespace, job: RegcheckJob) -> RegcheckResult:
        space = PciSysfsSpace(args.pci, sysfs_root=args.sysfs_root)
        bar = space.bar(args.bar)
        return check_in(space, job, bar.start + (job.base or 0), f"pci {args.pci} BAR {args.bar}")


CORE_TARGETS: tuple[type, ...] = (FakeTarget, MemTarget, UioTarget, PciTarget)


def targets() -> list[RegcheckTarget]:
    """The core's targets, then the registered ones (entry-point group `mmiotk.regcheck_targets`)."""
    found: list[RegcheckTarget] = [cls() for cls in CORE_TARGETS]
    for ep in sorted(entry_points(group="mmiotk.regcheck_targets"), key=lambda e: e.name):
        found.append(ep.load()())
    return found


@dataclass(frozen=True)
class TargetOptions:
    """A target's options as the parser holds them: the one that chooses it, and those that need it (with the
    defaults the parser leaves out, so that `check_target_options` can tell a given option from a default)."""

    target: RegcheckTarget
    chooser: str                                  # e.g. "--pci"
    options: tuple[tuple[argparse.Action, Any], ...]  # (action, its default)


def add_target_options(parser: argparse.ArgumentParser, available: Sequence[RegcheckTarget]
                       ) -> list[TargetOptions]:
    """Every target's options in one group; what `check_target_options` needs to check them."""
    group = parser.add_argument_group("target (one of; default --fake)")
    table = []
    for target in available:
        before = len(parser._actions)
        target.add_arguments(group)
        added = parser._actions[before:]
        if not added:
            raise TypeError(f"regcheck target {type(target).__name__} added no option to choose it")
        options = []
        for action in added[1:]:
            options.append((action, action.default))
            action.default = argparse.SUPPRESS  # in the namespace only when given
        table.append(TargetOptions(target, added[0].option_strings[-1], tuple(options)))
    group.add_argument("--sysfs-root", default="/sys", metavar="DIR", help=argparse.SUPPRESS)
    group.add_argument("--dev-root", default="/dev", metavar="DIR", help=argparse.SUPPRESS)
    return table


def check_target_options(args: argparse.Namespace, table: Sequence[TargetOptions]) -> None:
    """Fill in the defaults of the target options not given; RegcheckUsageError for one given without its
    target (naming both)."""
    given = {id(entry): [action for action, _ in entry.options if hasattr(args, action.dest)] for entry in table}
    for entry in table:  # every default first: a target's chosen() may look at any of its options
        for action, default in entry.options:
            if not hasattr(args, action.dest):
                setattr(args, action.dest, _default_value(action, default))
    stray = [f"{action.option_strings[-1]} is an option of {entry.chooser}, which was not given" for entry in table
             if given[id(entry)] and not entry.target.chosen(args) for action in given[id(entry)]]
    if stray:
        raise RegcheckUsageError("; ".join(stray))


def _default_value(action: argparse.Action, default: Any) -> Any:
    """What argparse would have stored for a default: a string default goes through the option's type."""
    if isinstance(default, str) and action.type is not None and callable(action.type):
        return action.type(default)
    return default


def chosen_target(args: argparse.Namespace, available: Sequence[RegcheckTarget]) -> RegcheckTarget:
    """The one target the options choose (the fake when none), or a usage error naming the clash."""
    chosen = [t for t in available if t.chosen(args)]
    if len(chosen) > 1:
        raise MmioError("choose one target, not " + " and ".join(type(t).__name__.removesuffix("Target").lower()
                                                                  for t in chosen))
    return chosen[0] if chosen else available[0]
