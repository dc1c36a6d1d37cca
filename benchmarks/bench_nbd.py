"""NBD export throughput with nbdcopy: mmiotk's NbdServer vs nbdkit and qemu-nbd serving the same data.

Run: .venv/bin/python benchmarks/bench_nbd.py [--size 128M] [--rounds 2] [--connections 4]

Exports of one size: a RAM disk (mmiotk RamDisk vs `nbdkit memory`) and a raw file in /dev/shm (mmiotk
FileDisk vs `nbdkit file` and `qemu-nbd -f raw`, all on the same file). nbdcopy first writes each whole
from a /dev/shm source file, then reads it whole into `null:` (its default request size, multi-conn as
the server advertises); wall time of the nbdcopy process, rounds interleaved across servers, best of each.
Servers run on unix sockets; mmiotk's in this process's threads. Missing baseline tools print n/a.
The last column counts what mmiotk's server itself copies per request in user space: nothing (payloads
are received straight into the array the device reads, and sent from the array the device filled).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from timing import print_table  # noqa: E402

from drivers.block_services.cli import parse_size  # noqa: E402

MiB = 1 << 20
Server = Callable[[], AbstractContextManager[str]]  # yields an NBD URI


@contextmanager
def mmiotk_server(make_device: Callable[[], object], sock: str) -> Iterator[str]:
    from drivers.block_services.nbd import NbdServer

    device = make_device()
    try:
        with NbdServer(device, unix_path=sock, name="") as server:  # type: ignore[arg-type]
            yield server.uri
    finally:
        close = getattr(device, "close", None) or getattr(device, "unbind", None)
        if close is not None:
            close()


@contextmanager
def external_server(cmd: list[str], sock: str, uri: str) -> Iterator[str]:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(sock):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{cmd[0]} did not start: {proc.stderr.read() if proc.stderr else ''}")
            time.sleep(0.02)
        yield uri
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
        if os.path.exists(sock):
            os.unlink(sock)


def nbdcopy(src: str, dst: str, connections: int | None) -> float:
    cmd = ["nbdcopy", src, dst] + ([f"--connections={connections}"] if connections else [])
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {proc.stderr.strip()}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=parse_size, default=128 * MiB)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, help="nbdcopy --connections (default: its own choice)")
    args = parser.parse_args()
    if shutil.which("nbdcopy") is None:
        print("nbdcopy is missing: apt-get install libnbd-bin")
        return 1
    size = args.size
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory(prefix="bnbd", dir=shm) as tmp:
        image, source = os.path.join(tmp, "disk.img"), os.path.join(tmp, "src.img")
        with open(source, "wb") as f:
            chunk = os.urandom(MiB)
            for _ in range(size // MiB):
                f.write(chunk)
        shutil.copyfile(source, image)
        sock = os.path.join(tmp, "nbd.sock")
        unix = f"nbd+unix:///?socket={sock}"

        def ram() -> object:
            from drivers.block.ramdisk import RamDisk
            return RamDisk(size, 512)

        def filedisk() -> object:
            from drivers.block.filedisk import FileDisk
            return FileDisk(image)

        servers: dict[str, tuple[str, Server | None]] = {
            "mmiotk RamDisk": ("RAM", lambda: mmiotk_server(ram, sock)),
            "nbdkit memory": ("RAM", (lambda: external_server(["nbdkit", "-f", "-U", sock, "memory", str(size)],
                                                              sock, unix)) if shutil.which("nbdkit") else None),
            "mmiotk FileDisk": ("file", lambda: mmiotk_server(filedisk, sock)),
            "nbdkit file": ("file", (lambda: external_server(["nbdkit", "-f", "-U", sock, "file", image], sock,
                                                             unix)) if shutil.which("nbdkit") else None),
            "qemu-nbd": ("file", (lambda: external_server(["qemu-nbd", "-t", "--shared=16", "-f", "raw", "-k", sock,
                                                           image], sock, unix)) if shutil.which("qemu-nbd") else None),
        }
        best: dict[tuple[str, str], float] = {}
        for _ in range(args.rounds):
            for name, (_, make) in servers.items():
                if make is None:
                    continue
                with make() as uri:
                    for op, (src, dst) in {"write": (source, uri), "read": (uri, "null:")}.items():
                        rate = size / MiB / nbdcopy(src, dst, args.connections)
                        best[(name, op)] = max(best.get((name, op), 0.0), rate)
        rows = []
        for name, (kind, _) in servers.items():
            base = "nbdkit memory" if kind == "RAM" else "qemu-nbd"
            cells: list[object] = [name, kind]
            for op in ("read", "write"):
                rate = best.get((name, op))
                ref = best.get((base, op))
                cells.append(f"{rate:.0f}" if rate else "n/a")
                cells.append(f"{rate / ref:.2f}" if rate and ref else "-")
            cells.append("0" if name.startswith("mmiotk") else "-")
            rows.append(cells)
    print(f"nbdcopy of a {size // MiB} MiB export, MiB/s, best of {args.rounds} rounds (ratios vs nbdkit memory "
          "for RAM, vs qemu-nbd for the file)")
    print_table(["server", "backing", "read MiB/s", "read vs base", "write MiB/s", "write vs base",
                 "server copies/req"], rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
