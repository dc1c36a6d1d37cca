"""The block FIFO: 4 KiB requests/s through BlockServer from a client process vs direct driver calls.

Run: .venv/bin/python benchmarks/bench_fifo.py [--seconds 0.3] [--rounds 10] [--no-virtio]

Devices: the RAM-disk (completes inside queue(): the protocol with no device cost, so the server's own
overhead shows) and virtio-blk on the behavioural model (interrupt-thread completions, as a server needs).
For each, the baseline is the same device driven directly in this process (queue() + completion, keeping
QD ops in flight, reusing them); the FIFO side is a separate client process sending 48-byte requests over
the server's SEQPACKET FIFO, packed straight from the protocol's struct, keeping QD requests outstanding
in two messages (it works on one batch of answers while the server works on the other). "round trips/s"
is QD1. Every request is a random 4 KiB read. Copies: the server's own (always 0) plus the driver's bounce
copies, per request, for client buffers that are memfds and for buffers in the device's DMA memory.
Many short rounds alternate direct and FIFO sides (one client process per depth and buffer kind serves
all its rounds, so a round starts no process); each side keeps its best. CPU time per request is measured too (this
process while it serves, the client process over its timed loop): wall-clock ratios swing with the load of
a shared machine, the CPU cost per request much less.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402
from timing import print_table  # noqa: E402

from drivers.block.protocol import BlockCommand, BlockDevice, BlockOp, BlockStatus, Vmo  # noqa: E402

IO = 4096
MiB = 1 << 20
DISK = 32 * MiB


def direct(dev: BlockDevice, depth: int, seconds: float, seed: int = 1) -> tuple[float, float]:
    """Random 4 KiB reads kept `depth` in flight by calling the driver directly: requests/s, and this
    process's CPU seconds per request (the device's own threads included)."""
    info = dev.query()
    per = IO // info.block_size
    slots = info.block_count // per
    rng = random.Random(seed)
    vmo = Vmo(np.zeros(depth * IO, dtype=np.uint8))
    ready: deque[BlockOp] = deque(BlockOp(BlockCommand.READ, per, 0, k * per, vmo) for k in range(depth))
    cond = threading.Condition()
    failed: list[BlockStatus] = []
    completed = [0]

    def completion(status: BlockStatus, op: BlockOp) -> None:
        if status is not BlockStatus.OK:
            failed.append(status)
        with cond:
            completed[0] += 1
            ready.append(op)
            cond.notify()

    cpu = time.process_time()
    start = time.perf_counter()
    end = start + seconds
    while True:
        with cond:
            while not ready:
                cond.wait(1.0)
            batch = list(ready)
            ready.clear()
            done = completed[0]
        if time.perf_counter() >= end:
            break
        for op in batch:
            op.offset_dev = rng.randrange(slots) * per
            dev.queue(op, completion)
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu
    deadline = time.perf_counter() + 10
    while len(ready) < depth - len(batch) and time.perf_counter() < deadline:  # let the tail finish
        time.sleep(0.001)
    if failed:
        raise RuntimeError(f"direct reads failed: {failed[:3]}")
    return done / elapsed, cpu / max(done, 1)


def client_main(path: str, depth: int, dma: bool) -> None:
    """The FIFO side, in its own process, connected once: for each line "SECONDS" on stdin it keeps `depth`
    reads in flight for that long, lets the last ones finish, and prints {"rate": requests/s, "cpu": CPU
    seconds per request}; it ends at end of input. Like the direct side, which reuses its BlockOps, it makes
    no object per request: it packs each 48-byte record with the protocol's own struct (`fifo.REQUEST`) and
    reads the answers with `fifo.RESPONSE`, as a C client would."""
    from drivers.block_services.client import BlockClient
    from drivers.block_services.fifo import REQUEST, RESPONSE, FifoOp

    with BlockClient(path) as blk:
        per = IO // blk.info.block_size
        slots = blk.info.block_count // per
        buf = blk.alloc_dma(depth * IO) if dma else blk.attach(depth * IO)
        rng = random.Random(2)
        pack, iter_unpack, randrange = REQUEST.pack, RESPONSE.iter_unpack, rng.randrange
        read, vmoid = int(FifoOp.READ), buf.vmoid

        def message(reqids: list[int]) -> bytes:  # reqid k reads into slot k - 1 of the buffer
            return b"".join([pack(read, 0, k, 0, vmoid, per, (k - 1) * per, randrange(slots) * per, 0)
                             for k in reqids])

        print("ready", flush=True)
        for line in sys.stdin:
            seconds = float(line)
            half = max(1, depth // 2)  # two messages in flight: this process works while the server does
            for first in range(0, depth, half):
                blk.send_raw(message(list(range(first + 1, min(depth, first + half) + 1))))
            done = 0
            cpu = time.process_time()
            start = time.perf_counter()
            end = start + seconds
            while True:
                answers = list(iter_unpack(blk.recv_raw()))  # (status, reqid, group, count)
                if any(status for status, _, _, _ in answers):
                    raise RuntimeError(f"FIFO reads failed: {answers[:3]}")
                done += len(answers)
                if time.perf_counter() >= end:
                    break
                blk.send_raw(message([reqid for _, reqid, _, _ in answers]))
            elapsed = time.perf_counter() - start
            cpu = time.process_time() - cpu
            outstanding = depth - len(answers)
            while outstanding > 0:
                outstanding -= len(blk.recv_raw()) // RESPONSE.size
            print(json.dumps({"rate": done / elapsed, "cpu": cpu / max(done, 1)}), flush=True)


class ClientProcess:
    """`client_main` in a child process, kept for every round of one depth and buffer kind."""

    def __init__(self, path: str, depth: int, dma: bool) -> None:
        self.proc = subprocess.Popen([sys.executable, __file__, "--client", path, "--depth", str(depth)]
                                     + (["--dma"] if dma else []), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self._line()  # "ready": connected, buffer attached

    def _line(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(10)
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise RuntimeError(f"client process failed: {err.strip()[-500:]}")
        return line

    def run(self, seconds: float) -> tuple[float, float]:
        """One timed window: the client's requests/s and CPU seconds per request."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{seconds}\n")
        self.proc.stdin.flush()
        result = json.loads(self._line())
        return float(result["rate"]), float(result["cpu"])

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


@contextmanager
def ramdisk() -> Iterator[BlockDevice]:
    from drivers.block.ramdisk import RamDisk

    disk = RamDisk(DISK, 512)
    try:
        yield disk
    finally:
        disk.unbind()


@contextmanager
def virtio_model(image: Path) -> Iterator[BlockDevice]:
    from hwsim.integration.block_targets import open_model

    with open_model(image, ram_size=64 * MiB) as blk:
        yield blk


def run_device(name: str, opener: AbstractContextManager[BlockDevice], sockdir: str, seconds: float,
               rounds: int, depths: list[int]) -> list[list[object]]:
    from drivers.block_services.server import BlockServer
    from drivers.block_services.session import device_bytes_copied

    rows = []
    with opener as dev:
        pool = getattr(dev, "pool", None)
        path = os.path.join(sockdir, f"{name}.sock")
        with BlockServer(dev, path, dma=pool) as server:
            kinds = [("memfd", False)] + ([("DMA", True)] if pool is not None else [])
            for depth in depths:
                best_direct, cpu_direct = 0.0, float("inf")
                best = dict.fromkeys(kinds, 0.0)
                copied = dict.fromkeys(kinds, 0.0)
                cpu_server = dict.fromkeys(kinds, float("inf"))
                cpu_client = dict.fromkeys(kinds, float("inf"))
                clients = {kind: ClientProcess(path, depth, kind[1]) for kind in kinds}
                try:
                    for _ in range(rounds):
                        rate, cpu = direct(dev, depth, seconds)
                        best_direct, cpu_direct = max(best_direct, rate), min(cpu_direct, cpu)
                        for kind, client in clients.items():
                            before_req, before_copy = server.stats.requests, device_bytes_copied(dev)
                            before_cpu = time.process_time()  # this process: the server and the device's threads
                            rate, cpu = client.run(seconds)
                            nreq = server.stats.requests - before_req
                            cpu_server[kind] = min(cpu_server[kind],
                                                   (time.process_time() - before_cpu) / max(nreq, 1))
                            best[kind], cpu_client[kind] = max(best[kind], rate), min(cpu_client[kind], cpu)
                            copied[kind] = max(copied[kind], (device_bytes_copied(dev) - before_copy
                                                              + server.stats.bytes_copied) / max(nreq, 1))
                finally:
                    for client in clients.values():
                        client.close()
                rows.append([name, depth, "direct driver calls", f"{best_direct:,.0f}",
                             f"{best_direct * IO / MiB:.1f}", "-", "1.00", f"{cpu_direct * 1e6:.1f}", "1.00"])
                for kind in kinds:
                    rate, total = best[kind], cpu_server[kind] + cpu_client[kind]
                    rows.append([name, depth, f"FIFO client process, {kind[0]} buffer", f"{rate:,.0f}",
                                 f"{rate * IO / MiB:.1f}", f"{copied[kind]:.0f}", f"{rate / best_direct:.2f}",
                                 f"{cpu_server[kind] * 1e6:.1f} + {cpu_client[kind] * 1e6:.1f}",
                                 f"{cpu_direct / total:.2f}"])
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=0.3, help="length of one round (default 0.3)")
    parser.add_argument("--rounds", type=int, default=10, help="rounds per depth and path (default 10)")
    parser.add_argument("--no-virtio", action="store_true", help="only the RAM-disk")
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--depth", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--dma", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client_main(args.client, args.depth, args.dma)
        return 0
    rows: list[list[object]] = []
    with tempfile.TemporaryDirectory(prefix="bfifo", dir="/tmp") as tmp:
        rows += run_device("ramdisk", ramdisk(), tmp, args.seconds, args.rounds, [1, 16])
        if not args.no_virtio:
            image = Path(tmp) / "disk.img"
            image.write_bytes(bytes(DISK))
            rows += run_device("virtio-blk model", virtio_model(image), tmp, args.seconds, args.rounds, [1, 16])
    print(f"4 KiB random reads, best of {args.rounds} rounds of {args.seconds} s; "
          "QD1 requests/s = round trips/s")
    print("CPU us/req: the serving process (server thread, device threads) + the client process, least of the "
          "rounds; CPU ratio: direct's CPU per request over the FIFO's, the speed ratio when one core runs both")
    print_table(["device", "QD", "path", "requests/s", "MiB/s", "bytes copied/req", "vs direct", "CPU us/req",
                 "CPU ratio"], rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
