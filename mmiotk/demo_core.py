"""`mmiotk demo` at the core layer: regions, policies, accessors, the memory model, revocation."""

from __future__ import annotations

import argparse
import os
import tempfile

from . import CachePolicy, MmioResource, RamSpace, RevokedError


def run(args: argparse.Namespace) -> int:
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
    path = os.path.join(shm, f"mmiotk-demo-{os.getpid()}")
    with RamSpace(1 << 20, base=0x4000_0000, path=path, name="demo-ram") as ram:
        bus_resource = MmioResource(ram, 0x4000_0000, 1 << 20)
        regs = bus_resource.create_region(0x4000_0000, 0x200, "uart0")
        ring = bus_resource.create_region(0x4001_0000, 0x1000, "ring", memory=True, coherent=False)
        mmio = regs.map(CachePolicy.UNCACHED_DEVICE)
        print(f"space   {ram.name}: [{ram.base:#x}, {ram.base + ram.size:#x}) shared at {path}")
        print(f"map     {mmio!r} via {mmio.mechanism}")
        mmio.write32(0x10, 0x8000_0001)
        mmio.modify32(0x10, 0x1, 0x6)
        print(f"write32 0x10 <- 0x80000001; modify32(clear=0x1, set=0x6) -> {mmio.read32(0x10):#010x}")
        print(f"memory  the same bytes in ram.array: {bytes(ram.array[0x10:0x14]).hex()}")

        wc = ring.map(CachePolicy.WRITE_COMBINING)
        wc.write32(0, 0xCAFE)
        print(f"wc      write32 0 <- 0xcafe; memory holds {int(ram.array[0x10000]):#x} until wmb()")
        wc.wmb()
        print(f"wc      after wmb(): memory holds {int.from_bytes(bytes(ram.array[0x10000:0x10004]), 'little'):#x}")

        regs.revoke()
        try:
            mmio.read32(0)
        except RevokedError as exc:
            print(f"revoke  {exc}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("demo", help="a short tour of the core layer")
    parser.set_defaults(func=run)
