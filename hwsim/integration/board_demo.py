"""`mmiotk demo`: boot a board description, bind drivers, print the address map and the bindings.

The board's registers live in a mock MMIO space (a RamSpace the demo fills in the way the hardware would
answer: virtio-mmio magic, version and device IDs, one block device in slot 31, as on QEMU's `virt`); RAM is a
second RamSpace, optionally a /dev/shm file as QEMU's guest RAM is. Then the platform bus binds the drivers in
`DEMO_DRIVERS`, an interrupt is raised and handled, and unbinding shows revocation.

To add a driver to the demo, put its class in `DEMO_DRIVERS` (earlier entries win when two match equally
well), or pass `drivers=` to `run_demo`; `populate_virtio_slot` fakes the registers of a device in a slot.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from typing import TextIO

from drivers.bus.platform import BOARDS_DIR, PlatformBus, load_board
from mmiotk import CachePolicy, MmioBuffer, RamSpace, RevokedError
from mmiotk.bus import Device, Driver, format_address_map
from mmiotk.dma import DmaBuffer
from mmiotk.irq import Interrupt, MockInterruptController
from mmiotk.space import PAGE_SIZE

DEFAULT_BOARD = BOARDS_DIR / "qemu-virt.yaml"

VIRTIO_MAGIC = 0x7472_6976  # "virt"
VIRTIO_VENDOR_QEMU = 0x554D_4551  # "QEMU"
VIRTIO_DEVICE_NAMES = {1: "net", 2: "block", 3: "console", 4: "entropy", 16: "gpu", 18: "input"}
# virtio-mmio register offsets (virtio 1.2, 4.2.2)
MAGIC, VERSION, DEVICE_ID, VENDOR_ID, INTERRUPT_STATUS, INTERRUPT_ACK = 0x000, 0x004, 0x008, 0x00C, 0x060, 0x064


class VirtioMmioIdent(Driver):
    """A tiny example driver: identifies the device behind a virtio-mmio transport.

    It refuses empty slots (DeviceID 0), as Linux's virtio_mmio probe does, so they stay unbound. For a
    device it keeps its registers, its interrupt and one DMA page, and handles interrupts on request.
    """

    compatible = ("virtio,mmio",)

    def bind(self, device: Device) -> None:
        regs = device.mmio(0).map(CachePolicy.UNCACHED_DEVICE)
        magic = regs.read32(MAGIC)
        if magic != VIRTIO_MAGIC:
            raise ValueError(f"bad magic {magic:#010x}: not a virtio-mmio transport")
        device_id = regs.read32(DEVICE_ID)
        if device_id == 0:
            raise ValueError("empty slot (DeviceID 0)")
        self.regs: MmioBuffer = regs
        self.version = regs.read32(VERSION)
        self.device_id = device_id
        self.vendor_id = regs.read32(VENDOR_ID)
        self.irq: Interrupt = device.irq(0)
        self.page: DmaBuffer = device.dma_pool().alloc(PAGE_SIZE, align=PAGE_SIZE, name="demo-page")

    def describe(self) -> str:
        kind = VIRTIO_DEVICE_NAMES.get(self.device_id, f"device {self.device_id}")
        return (f"virtio {kind} (DeviceID {self.device_id}), version {self.version}, vendor {self.vendor_id:#x}; "
                f"DMA page at {self.page.paddr:#x}")

    def handle_interrupt(self, timeout: float) -> int:
        """Wait for the interrupt, acknowledge it at the device and at the controller; returns the status bits."""
        with self.operation("interrupt"):
            self.irq.wait(timeout)
            status = self.regs.read32(INTERRUPT_STATUS)
            self.regs.write32(INTERRUPT_ACK, status)
            self.irq.ack()
            return status


DEMO_DRIVERS: list[type[Driver]] = [VirtioMmioIdent]


def populate_virtio_slot(space: RamSpace, paddr: int, device_id: int = 0, *, version: int = 2,
                         vendor_id: int = VIRTIO_VENDOR_QEMU) -> None:
    """Answer like a virtio-mmio transport at `paddr` (the mock's side of the bus)."""
    words = space.array[paddr - space.base:paddr - space.base + 0x10].view("<u4")
    words[:] = [VIRTIO_MAGIC, version, device_id, vendor_id]


def _span(bus_board_regs: Sequence[tuple[int, int]]) -> tuple[int, int]:
    lo = min(base for base, _ in bus_board_regs) & ~(PAGE_SIZE - 1)
    hi = max(base + size for base, size in bus_board_regs)
    return lo, (hi - lo + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)


def run_demo(board_path: str | os.PathLike[str] = DEFAULT_BOARD, *, shm: bool = False,
             drivers: Sequence[type[Driver]] | None = None, out: TextIO | None = None) -> int:
    out = out if out is not None else sys.stdout
    board, label = load_board(board_path)
    regs = [reg for node in board.devices for reg in node.reg]
    if not regs or board.memory is None:
        raise ValueError(f"board {label}: the demo needs devices with reg and a memory node")
    base, size = _span(regs)
    shm_dir = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
    ram_path = os.path.join(shm_dir, f"mmiotk-demo-ram-{os.getpid()}") if shm else None
    irqs = MockInterruptController()
    with RamSpace(size, base=base, name="mock-mmio", arch=board.arch) as mmio, \
            RamSpace(board.memory.size, base=board.memory.base, path=ram_path, name="ram", arch=board.arch) as ram:
        for node in board.devices:  # the mock hardware: empty virtio slots, a block device in the last one
            if "virtio,mmio" in node.compatible and node.reg:
                populate_virtio_slot(mmio, node.reg[0][0], 2 if node is board.devices[-1] else 0)
        bus = PlatformBus(board, mmio, memory=ram, irq_factory=irqs, label=label)
        print(f"board   {label}: {board.name}, arch {board.arch or 'host'}, {len(bus.devices)} devices", file=out)
        print(f"spaces  registers: {mmio.name} [{mmio.base:#x}, {mmio.base + mmio.size:#x}); "
              f"RAM: {ram.name} [{ram.base:#x}, {ram.base + ram.size:#x})"
              + (f" shared at {ram_path}" if ram_path else " (anonymous)"), file=out)
        for driver_class in DEMO_DRIVERS if drivers is None else drivers:
            bus.register_driver(driver_class)
        bound = bus.bind_all()

        print("\naddress map", file=out)
        print(format_address_map(bus.address_map()), file=out)
        print("\nbindings", file=out)
        _print_bindings(bus, out)

        idents = {name: d for name, d in bound.items() if isinstance(d, VirtioMmioIdent)}
        for name, ident in idents.items():
            number = bus.devices[name].irq_numbers[0]
            mmio.array[ident.regs.paddr - mmio.base + INTERRUPT_STATUS] = 1  # the device: "used buffer"
            irqs.trigger(number)
            status = ident.handle_interrupt(timeout=1.0)
            print(f"\ninterrupt {number} -> {name}: InterruptStatus {status:#x}, acknowledged", file=out)

        print("\nunbind", file=out)
        bus.close()
        for line in bus.log:
            if line.startswith("unbind"):
                print(f"  {line}", file=out)
        for name, ident in idents.items():
            try:
                ident.regs.read32(MAGIC)
                print(f"  {name}: old mapping still works (this is a bug)", file=out)
                return 1
            except RevokedError as exc:
                print(f"  {name}: old mapping -> RevokedError: {exc}", file=out)
    return 0


def _print_bindings(bus: PlatformBus, out: TextIO) -> None:
    refused: dict[str, list[str]] = {}
    for device in bus:
        if device.driver is not None:
            detail = device.driver.describe() if isinstance(device.driver, VirtioMmioIdent) else ""
            print(f"  {device.name:<10} -> {device.driver.name:<16} {detail}".rstrip(), file=out)
        elif device.bind_errors:
            refused.setdefault("; ".join(device.bind_errors), []).append(device.name)
        else:
            refused.setdefault("no matching driver", []).append(device.name)
    for reason, names in refused.items():
        shown = ", ".join(names) if len(names) <= 4 else f"{names[0]} .. {names[-1]} ({len(names)} devices)"
        print(f"  {shown}: unbound: {reason}", file=out)


def _run(args: argparse.Namespace) -> int:
    return run_demo(args.board, shm=args.shm)


def register(sub: argparse._SubParsersAction) -> None:
    """Entry point for the `mmiotk.commands` group: adds `mmiotk demo`."""
    parser = sub.add_parser("demo", help="boot a board description, bind drivers, print the address map")
    parser.add_argument("--board", default=str(DEFAULT_BOARD), help="board description, YAML or JSON "
                        f"(default: {DEFAULT_BOARD.name})")
    parser.add_argument("--shm", action="store_true", help="back RAM with a /dev/shm file, as QEMU's guest RAM is")
    parser.set_defaults(func=_run)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mmiotk")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    args = parser.parse_args(["demo", *(argv or [])])
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
