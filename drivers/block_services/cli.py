"""`mmiotk nbd` and `mmiotk serve`: export a block device over NBD, serve it over the block FIFO, or (`serve
--ublk`) put it under the Linux kernel's block layer as /dev/ublkbN.

Both register through the `mmiotk.commands` entry-point group (see mmiotk.cli). The served device is one
of `--ramdisk SIZE`, `--image FILE`, or a target registered in the `mmiotk.block_targets` entry-point
group: each entry `NAME = module:open_target` adds `--NAME IMAGE`, where `open_target(image, read_only)`
returns a context manager yielding a BlockDevice (how hwsim offers virtio-blk on its model, RTL or QEMU
without this module importing hwsim).
"""

from __future__ import annotations

import argparse
import contextlib
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Any

from drivers.block.protocol import BlockDevice, BlockFlag

_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
TargetOpener = Callable[..., contextlib.AbstractContextManager[BlockDevice]]


def parse_size(text: str) -> int:
    """'64M', '64MiB', '1g', '4096' -> bytes."""
    m = re.fullmatch(r"\s*(\d+)\s*([kmgtKMGT]?)(?:i?[bB])?\s*", text)
    if not m or int(m.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size: use bytes or a K/M/G/T suffix, e.g. 64M")
    return int(m.group(1)) * _UNITS[m.group(2).lower()]


def block_targets() -> dict[str, Any]:
    """Registered device targets (entry-point group `mmiotk.block_targets`), by option name."""
    return {ep.name: ep for ep in entry_points(group="mmiotk.block_targets")}


def add_device_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("served device (choose one)")
    choice = group.add_mutually_exclusive_group(required=True)
    choice.add_argument("--ramdisk", metavar="SIZE", type=parse_size, help="a RAM disk of SIZE bytes (64M, 1G)")
    choice.add_argument("--image", metavar="FILE", help="a raw disk image file (or a block device node)")
    for name in sorted(block_targets()):
        choice.add_argument(f"--{name}", metavar="IMAGE", dest=f"target_{name.replace('-', '_')}",
                            help=f"virtio-blk on the {name} target, backed by raw IMAGE")
    group.add_argument("--block-size", type=int, default=512, metavar="N", help="block size (default 512)")
    group.add_argument("--create", metavar="SIZE", type=parse_size,
                       help="with --image: create or extend the file to SIZE bytes first")
    group.add_argument("--read-only", action="store_true", help="refuse writes")


@contextlib.contextmanager
def open_device(args: argparse.Namespace) -> Iterator[BlockDevice]:
    """The device the options name; closed on exit."""
    if args.create is not None and args.image is None:
        raise ValueError("--create SIZE goes with --image FILE")
    if args.ramdisk is not None:
        from drivers.block.ramdisk import RamDisk

        # TRIM always works on a RAM-disk (it zeroes) and a completed write is as durable as RAM gets (FUA)
        flags = BlockFlag.READONLY if args.read_only else BlockFlag.TRIM_SUPPORT | BlockFlag.FUA_SUPPORT
        size = args.ramdisk
        if size % args.block_size:
            raise ValueError(f"--ramdisk {size}: not a multiple of the {args.block_size}-byte block size")
        ram = RamDisk(size, args.block_size, flags)
        try:
            yield ram
        finally:
            ram.unbind()
        return
    if args.image is not None:
        from drivers.block.filedisk import FileDisk

        with FileDisk(args.image, args.block_size, read_only=args.read_only, size=args.create) as disk:
            yield disk
        return
    for name, ep in block_targets().items():
        image = getattr(args, f"target_{name.replace('-', '_')}", None)
        if image is not None:
            opener: TargetOpener = ep.load()
            with opener(image, read_only=args.read_only) as device:
                yield device
            return
    raise ValueError("choose a device: --ramdisk SIZE, --image FILE" +
                     "".join(f", --{n} IMAGE" for n in sorted(block_targets())))


@contextlib.contextmanager
def _stop_event(duration: float | None) -> Iterator[threading.Event]:
    """An event set by SIGINT/SIGTERM or after `duration` seconds; the previous handlers come back after."""
    event = threading.Event()

    def handler(signum: int, _frame: object) -> None:
        event.set()

    saved = []
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            saved.append((sig, signal.signal(sig, handler)))
    timer = threading.Timer(duration, event.set) if duration is not None else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    try:
        yield event
    finally:
        if timer is not None:
            timer.cancel()
        for sig, previous in saved:
            signal.signal(sig, previous)


def _describe(device: BlockDevice) -> str:
    info = device.query()
    return f"{info.block_count} blocks of {info.block_size} bytes ({info.size} bytes)"


# --- mmiotk nbd -----------------------------------------------------------------------------------------
def run_nbd(args: argparse.Namespace) -> int:
    from .nbd import NbdServer

    tcp = None
    if args.tcp is not None:
        host, _, port = args.tcp.rpartition(":")
        if not port.isdigit():
            raise ValueError(f"--tcp {args.tcp!r}: expected [HOST:]PORT, e.g. 127.0.0.1:10809")
        tcp = (host.strip("[]") or "127.0.0.1", int(port))
    with open_device(args) as device:
        server = NbdServer(device, unix_path=args.socket, tcp=tcp, name=args.name,
                           description=args.description, read_only=args.read_only)
        server.start()
        with _stop_event(args.duration) as stop:
            print(f"serving {_describe(device)} as NBD export {args.name!r}", file=sys.stderr)
            print(server.uri, flush=True)
            if tcp is not None and tcp[0] not in ("127.0.0.1", "::1", "localhost"):
                print("warning: NBD has no authentication; anyone who can reach this address can write "
                      "the device", file=sys.stderr)
            print(f"try: qemu-img info '{server.uri}'   (Ctrl-C stops)", file=sys.stderr)
            server.serve_until(stop)
        s = server.stats
        print(f"stopped: {s.connections} connections, {s.requests} requests, {s.bytes_read} bytes read, "
              f"{s.bytes_written} bytes written, {s.errors} errors", file=sys.stderr)
    return 0


def register_nbd(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("nbd", help="export a block device over NBD (qemu-img, nbdcopy, fio)",
                            description="Serve a block device over the NBD protocol until Ctrl-C. Prints the "
                                        "export's URI on stdout.")
    add_device_options(parser)
    where = parser.add_argument_group("listen on (choose one)").add_mutually_exclusive_group(required=True)
    where.add_argument("--socket", metavar="PATH", help="a unix socket path")
    where.add_argument("--tcp", metavar="[HOST:]PORT", help="a TCP address (default host 127.0.0.1)")
    parser.add_argument("--name", default="mmiotk", help="export name (default mmiotk; '' always works too)")
    parser.add_argument("--description", default="", help="export description shown by NBD_OPT_LIST")
    parser.add_argument("--duration", type=float, metavar="SECONDS", help="stop after SECONDS")
    parser.set_defaults(func=run_nbd)


# --- mmiotk serve ---------------------------------------------------------------------------------------
def run_serve(args: argparse.Namespace) -> int:
    if args.ublk:
        return _run_ublk(args)
    from .server import BlockServer

    with open_device(args) as device:
        pool = getattr(device, "pool", None) if args.dma else None
        if args.dma and pool is None:
            raise ValueError("--dma: this device has no DMA pool to share (virtio-blk targets have one; a "
                             "RAM disk or image file needs none: it is already zero-copy)")
        server = BlockServer(device, args.socket, dma=pool)
        server.start()
        with _stop_event(args.duration) as stop:
            print(f"serving {_describe(device)} over the block FIFO", file=sys.stderr)
            print(args.socket, flush=True)
            server.serve_until(stop)
        s = server.stats
        print(f"stopped: {s.sessions} clients, {s.requests} requests, {s.bytes_read} bytes read, "
              f"{s.bytes_written} bytes written, {s.bytes_copied} bytes copied", file=sys.stderr)
    return 0


def _run_ublk(args: argparse.Namespace) -> int:
    from .ublk import UblkServer

    if args.dma:
        raise ValueError("--dma goes with --socket: ublk always uses the device's DMA memory when it has some")
    with open_device(args) as device:
        server = UblkServer(device, queue_depth=args.queue_depth, dev_id=args.dev_id, read_only=args.read_only)
        with _stop_event(args.duration) as stop:
            server.start()
            print(f"serving {_describe(device)} as {server.path} (ublk, user copy)", file=sys.stderr)
            print(server.path, flush=True)
            server.serve_until(stop, drain=args.drain)
        s = server.stats
        print(f"stopped: {s.requests} requests, {s.bytes_read} bytes read, {s.bytes_written} bytes written, "
              f"{s.errors} errors ({s.aborted} failed by the stop), {server.bytes_copied} bytes copied",
              file=sys.stderr)
    return 0


def register_serve(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("serve", help="serve a block device over the block FIFO, or to the kernel over ublk",
                            description="Serve a block device over the block FIFO protocol (shared buffers, "
                                        "48-byte requests) at a unix socket, or to the Linux kernel as "
                                        "/dev/ublkbN (--ublk), until Ctrl-C.")
    add_device_options(parser)
    where = parser.add_argument_group("serve to (choose one)").add_mutually_exclusive_group(required=True)
    where.add_argument("--socket", metavar="PATH", help="the block FIFO server's unix socket path")
    where.add_argument("--ublk", action="store_true",
                       help="the kernel's block layer as /dev/ublkbN (needs root and the ublk_drv module)")
    parser.add_argument("--queue-depth", type=int, default=64, metavar="N",
                        help="with --ublk: requests in flight, 1..64 (default 64)")
    parser.add_argument("--dev-id", type=int, default=-1, metavar="N",
                        help="with --ublk: the N of /dev/ublkbN (default: the kernel picks)")
    parser.add_argument("--drain", action="store_true",
                        help="with --ublk: on stop, let requests in flight complete instead of failing them")
    parser.add_argument("--dma", action="store_true",
                        help="let clients allocate buffers in the device's DMA memory (zero-copy; such clients "
                             "can see all of that memory: trusted clients only)")
    parser.add_argument("--duration", type=float, metavar="SECONDS", help="stop after SECONDS")
    parser.set_defaults(func=run_serve)
