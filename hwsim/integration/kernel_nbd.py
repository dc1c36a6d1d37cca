"""The Linux kernel's NBD client on the project's NBD export: any BlockDevice as /dev/nbdN inside the guest.

`kernel_nbd(device, workdir, "nbd0")` serves `device` with `NbdServer` on a unix socket in `workdir` (in this
process's threads) and has `nbd-client` do the handshake and hand the socket to the kernel (netlink); it
yields a `KernelNbd` once /dev/nbd0 has the export's size, and detaches (`nbd-client -d`) on the way out.
The kernel's client negotiates no structured replies: it is the export's plain, simple-reply client. Needs
root and the guest kernel's `nbd` module (loaded from its package, `hwsim.linux.guest.load_module`).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from drivers.block.protocol import BlockDevice
from drivers.block_services.nbd import NbdServer
from hwsim.linux.blockcheck import run
from hwsim.linux.errors import LinuxGuestError
from hwsim.linux.guest import load_module

ATTACH_TIMEOUT = 30.0  # seconds for /dev/nbdN to get its size, or to lose it after the detach


@dataclass
class KernelNbd:
    path: str  # /dev/nbdN
    server: NbdServer

    @property
    def size(self) -> int:
        return nbd_size(self.path)


def nbd_size(path: str) -> int:
    """The size in bytes the kernel gives /dev/nbdN (0 while nothing is attached)."""
    return int(Path("/sys/block", Path(path).name, "size").read_text()) * 512


def _wait(path: str, attached: bool) -> bool:
    deadline = time.monotonic() + ATTACH_TIMEOUT
    while (nbd_size(path) > 0) != attached:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@contextmanager
def kernel_nbd(device: BlockDevice, workdir: Path, nbd: str = "nbd0", *, io_timeout: int = 60,
               block_size: int = 512) -> Iterator[KernelNbd]:
    """`device` as /dev/`nbd` (see the module's docstring); `io_timeout`: the kernel's request timeout."""
    load_module("nbd")
    path = f"/dev/{nbd}"
    if nbd_size(path):
        raise LinuxGuestError(f"{path} is already attached to a server")
    socket_path = workdir / f"{nbd}.sock"
    with NbdServer(device, unix_path=socket_path, name="disk0") as server:
        run("nbd-client", "-N", "disk0", "-u", str(socket_path), path, "-t", str(io_timeout),
            "-b", str(block_size), timeout=ATTACH_TIMEOUT * 2)
        try:
            if not _wait(path, attached=True):
                raise LinuxGuestError(f"{path} did not get a size within {ATTACH_TIMEOUT} s of nbd-client")
            yield KernelNbd(path, server)
        finally:
            subprocess.run(["nbd-client", "-d", path], capture_output=True, timeout=ATTACH_TIMEOUT * 2,
                           check=False)
            if not _wait(path, attached=False):
                raise LinuxGuestError(f"{path} was still attached {ATTACH_TIMEOUT} s after nbd-client -d")
