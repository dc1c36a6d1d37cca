"""The cocotb side of the RTL back end (runs inside the simulator): reset the controller, listen on the
vhost-user socket, and serve one front end with the RTL as the device until it disconnects.

Configured by the environment rtl_main sets: VHOST_SOCKET, VHOST_READY (a file written with this process's
PID once the socket listens: that PID is the one to kill), VHOST_SECTORS.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import cocotb

from hwsim.media import BlockMedia
from hwsim.vblk.env import VblkEnv

from .backend import VhostUserBackend, listen
from .rtl_target import RtlTarget


@cocotb.test()
async def serve_vhost_user(dut: Any) -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="vhost-user %(levelname)s: %(message)s",
                        force=True)
    path, ready = os.environ["VHOST_SOCKET"], os.environ["VHOST_READY"]
    media = BlockMedia(size=int(os.environ["VHOST_SECTORS"]) * 512)
    env = await VblkEnv.create(dut, media=media)
    listener = listen(path)
    with open(ready, "w") as out:
        out.write(f"{os.getpid()}\n")

    def serve() -> None:
        backend = VhostUserBackend(RtlTarget(env), path)
        backend.serve(listener)
        logging.info("RTL: %d kicks, %d calls, %d cycles", backend.kicks, backend.calls, env.cycles)

    try:
        await env.run(serve)
    finally:
        listener.close()
        env.close()
