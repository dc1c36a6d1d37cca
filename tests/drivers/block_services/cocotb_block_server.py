"""The block FIFO server over virtio-blk on the RTL controller, inside one cocotb simulation.

The server runs without a thread of its own (`start(thread=False)`), driven from the bridge's driver
greenlet together with the driver's completions (`completions="poll"`): every register access is a bus
transaction of the simulated controller. Client processes (fifo_worker.py) talk to it over real sockets.
Environment: BLOCK_IMAGE (disk image), BLOCK_SOCKET (server socket), BLOCK_WORKER (the client script),
BLOCK_RESULT (where the clients' JSON results are written).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import cocotb

from drivers.block.protocol import flush
from drivers.block_services.server import BlockServer
from drivers.bus.platform import PlatformBus
from drivers.virtio.blk import VirtioBlkDriver
from hwsim.cosim import Bridge
from hwsim.media import BlockMedia
from hwsim.vblk.env import HOST_BASE, HOST_SIZE, REGS_BASE, REGS_SIZE, VblkEnv

CLIENTS = 2
BLOCKS = 8  # per client, per round
ROUNDS = 2
WALL_TIMEOUT = 240.0


def serve_clients(env: VblkEnv) -> list[dict[str, Any]]:
    board = {"name": "rtl", "memory": {"base": HOST_BASE, "size": HOST_SIZE},
             "devices": [{"name": "blk0", "compatible": "virtio,mmio", "reg": [[REGS_BASE, REGS_SIZE]],
                          "interrupts": [0]}]}
    bus = PlatformBus.from_board(board, env.space, memory=env.ram, irq_factory=lambda number: env.irq)
    bus.register_driver(VirtioBlkDriver, lambda: VirtioBlkDriver(completions="poll"))
    try:
        driver = bus.bind("blk0")
        assert isinstance(driver, VirtioBlkDriver) and driver.block is not None
        blk = driver.block
        server = BlockServer(blk, os.environ["BLOCK_SOCKET"]).start(thread=False)
        procs = [subprocess.Popen([sys.executable, os.environ["BLOCK_WORKER"], "verify", server.path, str(i),
                                   str(i * 2 * BLOCKS), str(BLOCKS), str(ROUNDS)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for i in range(CLIENTS)]
        try:
            deadline = time.monotonic() + WALL_TIMEOUT
            while any(p.poll() is None for p in procs):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"clients still running after {WALL_TIMEOUT} s")
                # Requests in: queued on the device (register writes = bus cycles). Completions out: wait on
                # the RTL interrupt, so simulated time runs, but only while requests are in flight: an idle
                # wait of 1 ms of simulated time is seconds of wall time, and a client's control request
                # must not wait behind it.
                busy = blk.vq.in_flight > 0
                server.poll(0 if busy else 0.001)
                blk.poll(0.001 if busy else 0)
            # The controller keeps written sectors in its write buffer (writeback): flush so the test can
            # check that both clients' blocks reached the image, whichever client finished last.
            flush(blk, timeout=WALL_TIMEOUT)
            results = []
            for proc in procs:
                out, err = proc.communicate(timeout=10)
                results.append(json.loads(out) if proc.returncode == 0 else {"ok": False, "stderr": err})
            results.append({"requests": server.stats.requests, "errors": server.stats.errors})
            return results
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(10)
            server.stop()
    finally:
        bus.close()


@cocotb.test(timeout_time=20_000, timeout_unit="ms")
async def client_processes_verify_their_data_through_the_rtl(dut: Any) -> None:
    """Two client processes write and verify their own blocks through the block FIFO server on the RTL
    controller: every client reports ok, and the server's counts go to BLOCK_RESULT."""
    env = await VblkEnv.create(dut, media=BlockMedia(os.environ["BLOCK_IMAGE"]))
    try:
        results = await Bridge().run(serve_clients, env)
    finally:
        env.close()
    with open(os.environ["BLOCK_RESULT"], "w", encoding="utf-8") as f:
        json.dump(results, f)
    assert all(r.get("ok") for r in results[:-1]), results
