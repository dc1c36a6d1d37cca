"""The project's virtio-blk driver over VFIO against the guest kernel's own virtio_blk, in one Linux guest.

Run: .venv/bin/python benchmarks/bench_linux.py [--seconds 5] [--rounds 2]

One boot of machine `BENCH` (q35, Intel vIOMMU, two identical 64 MiB virtio-blk-pci disks behind it). Inside
the guest, for each queue depth (1, 16) and round: fio's O_DIRECT 4 KiB random reads of the kernel's disk
(/dev/vdX on the first device, libaio at that iodepth), then the same reads through `LinuxPciBus` +
`VirtioBlkDriver` on the second device (vfio-pci, DMA through IOVAs, polled completions, buffers in the
device's DMA pool, `depth` requests kept in flight). Each side keeps its best round. Under TCG both sides pay
for emulation: the ratio is what matters, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from timing import print_table  # noqa: E402

IO = 4096
DEPTHS = (1, 16)


def kernel_disk(address: str) -> str:
    """/dev/vdX of the kernel's virtio_blk on the function at `address` (waits up to 30 s for the probe)."""
    deadline = time.monotonic() + 30
    pattern = f"/sys/bus/pci/devices/{address}"
    while True:
        found = sorted(Path(pattern).glob("virtio*/block/vd*"))
        if found:
            return f"/dev/{found[0].name}"
        if time.monotonic() > deadline:
            raise RuntimeError(f"the kernel's virtio_blk made no disk of {address} within 30 s")
        time.sleep(0.1)


def fio_iops(disk: str, depth: int, seconds: float) -> float:
    """fio's O_DIRECT 4 KiB random reads of `disk` at `depth` (libaio): requests/s."""
    args = ["fio", "--name=bench", f"--filename={disk}", "--direct=1", "--rw=randread", f"--bs={IO}",
            "--ioengine=libaio", f"--iodepth={depth}", f"--runtime={seconds}", "--time_based", "--norandommap",
            "--randrepeat=0", "--output-format=json"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 120, check=True)
    return float(json.loads(done.stdout)["jobs"][0]["read"]["iops"])


def driver_iops(blk: object, depth: int, seconds: float) -> float:
    """The same reads through the project's driver: `depth` in flight, polled: requests/s."""
    from drivers.block.protocol import BlockCommand, BlockOp, BlockStatus, Vmo

    info = blk.query()  # type: ignore[attr-defined]
    per = IO // info.block_size
    slots = info.block_count // per
    buf = blk.pool.alloc(depth * IO, align=IO)  # type: ignore[attr-defined]
    vmo = Vmo(buf, buf.dma_addr)
    rng = random.Random(1)
    ready = [BlockOp(BlockCommand.READ, per, 0, k * per, vmo) for k in range(depth)]
    failed: list[BlockStatus] = []
    completed = 0

    def completion(status: BlockStatus, op: BlockOp) -> None:
        nonlocal completed
        if status is not BlockStatus.OK:
            failed.append(status)
        completed += 1
        ready.append(op)

    start = time.perf_counter()
    end = start + seconds
    while True:
        with blk.batch():  # type: ignore[attr-defined]
            while ready:
                op = ready.pop()
                op.offset_dev = rng.randrange(slots) * per
                blk.queue(op, completion)  # type: ignore[attr-defined]
        if time.perf_counter() >= end:
            break
        blk.poll(10.0)  # type: ignore[attr-defined]
    while len(ready) < depth:
        blk.poll(10.0)  # type: ignore[attr-defined]
    elapsed = time.perf_counter() - start
    if failed:
        raise RuntimeError(f"{len(failed)} reads failed: {set(failed)}")
    buf.free()
    return completed / elapsed


def in_guest(out: Path, seconds: float, rounds: int) -> None:
    from drivers.bus.pci_linux import LinuxPciBus
    from drivers.virtio.blk import VirtioBlkDriver
    from hwsim.linux.guest import load_module
    from hwsim.linux.machines import BENCH, pci_disk_address

    for module in ("virtio_blk", "vfio-pci", "vfio_iommu_type1"):
        load_module(module)
    disk = kernel_disk(pci_disk_address(BENCH, "kernel"))
    bus = LinuxPciBus(backend="vfio", unbind_kernel_driver=True)
    bus.scan()
    bus.register_driver(VirtioBlkDriver, lambda: VirtioBlkDriver(completions="poll"))
    driver = bus.bind(pci_disk_address(BENCH, "mmiotk"))
    assert isinstance(driver, VirtioBlkDriver) and driver.block is not None
    results: dict[str, dict[int, float]] = {"kernel": {}, "mmiotk": {}}
    try:
        for depth in DEPTHS:
            for _ in range(rounds):
                kernel = fio_iops(disk, depth, seconds)
                ours = driver_iops(driver.block, depth, seconds)
                results["kernel"][depth] = max(results["kernel"].get(depth, 0.0), kernel)
                results["mmiotk"][depth] = max(results["mmiotk"].get(depth, 0.0), ours)
    finally:
        bus.close()
    out.write_text(json.dumps(results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per side and depth; best is kept")
    parser.add_argument("--guest", type=Path, help=argparse.SUPPRESS)  # inside the guest: write results here
    args = parser.parse_args()
    if args.guest is not None:
        in_guest(args.guest, args.seconds, args.rounds)
        return
    from hwsim.linux import run_in_guest
    from hwsim.linux.machines import BENCH

    with tempfile.TemporaryDirectory(prefix="bench-linux-") as tmp:
        share = Path(tmp)
        out = share / "results.json"
        command = shlex.join([sys.executable, os.fspath(Path(__file__).resolve()), "--guest", str(out),
                              "--seconds", str(args.seconds), "--rounds", str(args.rounds)])
        run = run_in_guest(BENCH, command, share, timeout=600 + 4 * args.rounds * args.seconds * len(DEPTHS),
                           env={"PYTHONDONTWRITEBYTECODE": "1"}, cwd=HERE.parent)
        if run.exit_status != 0 or not out.exists():
            tail = "\n".join(run.console.splitlines()[-40:])
            raise SystemExit(f"the guest benchmark failed (exit {run.exit_status}):\n{tail}")
        results = {side: {int(k): v for k, v in per.items()} for side, per in json.loads(out.read_text()).items()}
    print(f"4 KiB random reads in one guest ({run.accel}), best of {args.rounds} rounds of {args.seconds:g} s; "
          f"boot {run.boot_seconds:.1f} s, whole run {run.total_seconds:.1f} s")
    rows = [[f"QD{d}", f"{results['kernel'][d]:,.0f}", f"{results['mmiotk'][d]:,.0f}",
             f"{results['mmiotk'][d] / results['kernel'][d]:.0%}"] for d in DEPTHS]
    print_table(["depth", "kernel virtio_blk (fio, O_DIRECT) req/s", "mmiotk over VFIO req/s", "mmiotk / kernel"],
                rows)
    qd16 = results["mmiotk"][16] / results["kernel"][16]
    print(f"linux: QD1 {results['mmiotk'][1] / results['kernel'][1]:.0%}, QD16 {qd16:.0%} of the kernel's "
          f"virtio_blk (target >= 25% at QD16: {'met' if qd16 >= 0.25 else 'MISSED'})")
    if qd16 < 0.25:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
