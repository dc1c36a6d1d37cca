"""The simulator side of ublk over the RTL (runs inside Verilator under cocotb; started by ublk_rtl.serve_rtl).

The controller's media is the disk image; our VirtioBlkDriver binds to the RTL in the bridge's greenlet and
a PostedBlockDevice puts it behind a UblkServer in this same process (the kernel's /dev/ublkcN is this
machine's). The server's lifecycle runs on a control thread: start (the kernel's partition scan needs the
pump already running), the ready file with the device path, wait for the stop file, stop, the result file.
The greenlet pumps the device until that thread has ended.

Configured by the environment: UBLK_RTL_IMAGE, UBLK_RTL_READY, UBLK_RTL_STOP, UBLK_RTL_RESULT,
UBLK_RTL_DEPTH, UBLK_RTL_TIMEOUT (wall-clock seconds to wait for the stop file).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import cocotb

from drivers.block_services.ublk import UblkServer
from hwsim.integration.block_targets import bound_virtio_blk
from hwsim.integration.posted_block import PostedBlockDevice
from hwsim.media import BlockMedia
from hwsim.vblk.env import HOST_BASE, HOST_SIZE, REGS_BASE, REGS_SIZE, VblkEnv

STOP_POLL = 0.1  # seconds between looks for the stop file
BOARD = {"name": "vblk-rtl", "memory": {"base": HOST_BASE, "size": HOST_SIZE},
         "devices": [{"name": "blk0", "compatible": "virtio,mmio", "reg": [[REGS_BASE, REGS_SIZE]],
                      "interrupts": [0]}]}


def _write(path: str, record: dict[str, Any]) -> None:
    """Write `record` as JSON so a reader never sees half of it (rename is atomic)."""
    tmp = f"{path}.tmp"
    Path(tmp).write_text(json.dumps(record))
    os.replace(tmp, path)


def _control(device: PostedBlockDevice, outcome: dict[str, Any], abort: threading.Event) -> None:
    """Start the server, announce it, serve until the stop file appears (or `abort` is set: the pump
    failed; or the timeout), stop it."""
    ready, stop = os.environ["UBLK_RTL_READY"], Path(os.environ["UBLK_RTL_STOP"])
    deadline = time.monotonic() + float(os.environ.get("UBLK_RTL_TIMEOUT", "1200"))
    try:
        server = UblkServer(device, queue_depth=int(os.environ.get("UBLK_RTL_DEPTH", "16"))).start()
        outcome["server"] = server
        logging.info("serving %s", server.path)
        try:
            _write(ready, {"path": server.path, "dev_id": server.dev_id, "pid": os.getpid()})
            while not stop.exists() and not abort.is_set():
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no stop file {stop} within UBLK_RTL_TIMEOUT")
                time.sleep(STOP_POLL)
        finally:
            server.stop()
    except BaseException as exc:
        logging.exception("ublk over the RTL failed")
        outcome["error"] = exc
        if not Path(ready).exists():
            _write(ready, {"error": repr(exc)})


@cocotb.test()
async def serve_ublk(dut: Any) -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, force=True,
                        format="ublk-rtl %(relativeCreated)7.0f ms %(levelname)s: %(message)s")
    env = await VblkEnv.create(dut, media=BlockMedia(os.environ["UBLK_RTL_IMAGE"]))
    outcome: dict[str, Any] = {}

    def serve() -> PostedBlockDevice:
        # spin=0: the driver's poll waits on the interrupt (simulated time) at once; spinning on the used
        # ring in memory would advance nothing
        with bound_virtio_blk(BOARD, env.space, lambda number: env.irq, memory=env.ram, spin=0.0) as blk:
            device = PostedBlockDevice(blk)
            logging.info("driver bound: %s", device.info)
            abort = threading.Event()
            control = threading.Thread(target=_control, args=(device, outcome, abort), name="ublk-rtl-control",
                                       daemon=True)  # a wedged one must not keep the simulator from exiting
            control.start()
            try:
                device.pump(lambda: not control.is_alive())
            finally:
                abort.set()  # no-op after a normal stop; after a failing pump it stops the server
                device.close()
                control.join(60)
            return device

    try:
        device = await env.run(serve)
        server = outcome.get("server")
        record: dict[str, Any] = {"cycles": env.cycles, "posted": device.posted, "completed": device.completed,
                                  "counts": device.counts, "device_bytes_copied": device.bytes_copied,
                                  "error": repr(outcome["error"]) if "error" in outcome else None}
        if server is not None:
            record.update(stats=dataclasses.asdict(server.stats), bytes_copied=server.bytes_copied)
        _write(os.environ["UBLK_RTL_RESULT"], record)
        logging.info("done: %s", record)
    finally:
        env.close()
    if "error" in outcome:
        raise outcome["error"]
