"""The kernel's two user-space block paths on one RAM-disk, inside one Linux guest: ublk (UblkServer, USER_COPY)
vs the kernel's NBD client (nbd-client on NbdServer over a unix socket).

Run: .venv/bin/python benchmarks/bench_kernelblock.py [--seconds 10] [--rounds 2]

Boots Debian's 6.12 kernel under QEMU (hwsim.linux, TCG here) and runs itself inside with `--in-guest`:
ublk_drv and nbd loaded, one 64 MiB RamDisk of 4 KiB blocks, served at the same time as /dev/ublkbN and
(NbdServer, attached by nbd-client through `hwsim.integration.kernel_nbd`) as /dev/nbd0, both servers in the
benchmark process's threads. fio 4 KiB random reads, O_DIRECT, libaio at queue depths 1 and 16,
`--seconds` each, rounds interleaved, best IOPS of each. The last column is what the ublk server itself
copied per request (user copy: the kernel moves the data straight into the tag buffer the device reads and
writes).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from timing import print_table  # noqa: E402

MiB = 1 << 20
DEPTHS = (1, 16)
SIZE = 64 * MiB
BLOCK = 4096


def fio_randread(dev: str, depth: int, seconds: float) -> tuple[float, float]:
    """IOPS and mean completion latency (µs) of 4 KiB random reads at `depth`."""
    cmd = ["fio", "--name=randread", f"--filename={dev}", "--rw=randread", "--bs=4k", f"--iodepth={depth}",
           "--ioengine=libaio", "--direct=1", f"--runtime={seconds:g}", "--time_based", "--ramp_time=1",
           "--norandommap", "--randrepeat=0", "--output-format=json"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {done.stderr.strip() or done.stdout[-500:]}")
    read = json.loads(done.stdout[done.stdout.index("{"):])["jobs"][0]["read"]
    return float(read["iops"]), float(read["clat_ns"]["mean"]) / 1000


def in_guest(seconds: float, rounds: int) -> int:
    from drivers.block.protocol import BlockFlag
    from drivers.block.ramdisk import RamDisk
    from drivers.block_services.ublk import UblkServer
    from hwsim.integration.kernel_nbd import kernel_nbd
    from hwsim.linux.guest import load_module

    load_module("ublk_drv")
    disk = RamDisk(SIZE, BLOCK, BlockFlag.TRIM_SUPPORT | BlockFlag.FUA_SUPPORT)
    disk.data[:] = 0xA5  # reads return data, not a page the kernel might shortcut
    best: dict[tuple[str, int], tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bkb") as tmp, UblkServer(disk, queue_depth=64) as ublk, \
            kernel_nbd(disk, Path(tmp), "nbd0", block_size=BLOCK) as nbd:
        paths = {"ublk": ublk.path, "kernel NBD": nbd.path}
        requests_before = ublk.stats.requests
        for _ in range(rounds):
            for depth in DEPTHS:
                for name, dev in paths.items():
                    iops, lat = fio_randread(dev, depth, seconds)
                    if iops > best.get((name, depth), (0.0, 0.0))[0]:
                        best[(name, depth)] = (iops, lat)
        served = ublk.stats.requests - requests_before
        copied = ublk.bytes_copied
    rows = []
    for depth in DEPTHS:
        for name in ("ublk", "kernel NBD"):
            iops, lat = best[(name, depth)]
            ratio = iops / best[("kernel NBD", depth)][0]
            rows.append([name, depth, f"{iops:.0f}", f"{lat:.0f}", f"{ratio:.2f}",
                         f"{copied / max(served, 1):.0f}" if name == "ublk" else "-"])
    print(f"fio 4 KiB random reads on one {SIZE // MiB} MiB RamDisk inside a Linux {os.uname().release} guest, "
          f"best of {rounds} x {seconds:g} s (ratio vs kernel NBD at the same depth)")
    print_table(["path", "QD", "IOPS", "mean lat us", "vs NBD", "server bytes copied/req"], rows)
    q1 = best[("ublk", 1)][0] / best[("kernel NBD", 1)][0]
    q16 = best[("ublk", 16)][0] / best[("kernel NBD", 16)][0]
    print(f"ublk vs kernel NBD: QD1 {q1:.2f}x, QD16 {q16:.2f}x; ublk server bytes copied per request: "
          f"{copied / max(served, 1):.0f} ({served} requests)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="fio run time per measurement")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--in-guest", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.in_guest:
        return in_guest(args.seconds, args.rounds)
    from hwsim.linux import Machine, run_in_guest

    machine = Machine("kernelblock")
    command = shlex.join([sys.executable, str(Path(__file__).resolve()), "--in-guest",
                          "--seconds", str(args.seconds), "--rounds", str(args.rounds)])
    with tempfile.TemporaryDirectory(prefix="bench-kernelblock-") as tmp:
        out = Path(tmp) / "out.txt"
        run = run_in_guest(machine, f"{command} > {shlex.quote(str(out))} 2>&1", Path(tmp),
                           timeout=300 + 8 * args.rounds * (args.seconds + 5), cwd=HERE.parent)
        text = out.read_text() if out.exists() else ""
    if run.exit_status != 0:
        print(text or "\n".join(run.console.splitlines()[-40:]))
        print(f"the guest's benchmark exited {run.exit_status}", file=sys.stderr)
        return 1
    print(text, end="")
    print(f"(guest: init after {run.boot_seconds:.1f} s, accel {run.accel})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
