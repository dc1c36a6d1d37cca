"""/dev/ublk-control: the ublk driver's control device, its commands sent as io_uring URING_CMDs in an SQE128
ring (a `ublksrv_ctrl_cmd` is 32 bytes; a plain SQE carries 16). `UblkServer` uses it for ADD_DEV,
SET_PARAMS, START_DEV, STOP_DEV and DEL_DEV_ASYNC; `delete_device` and `device_info` serve the rest."""

from __future__ import annotations

import ctypes
import errno
import os
import threading

from . import ublk_cmd as U
from .io_uring import Ring

CONTROL = "/dev/ublk-control"


class UblkError(OSError):
    """A ublk control command failed, or the kernel has no ublk (the command and errno are named)."""


class Control:
    """/dev/ublk-control and the SQE128 ring its commands travel on; one command at a time."""

    def __init__(self) -> None:
        try:
            self.fd = os.open(CONTROL, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            raise UblkError(errno.ENOENT, f"{CONTROL} does not exist: load the ublk_drv module "
                                          "(CONFIG_BLK_DEV_UBLK, Linux 6.0+)") from None
        self.ring = Ring(4, sqe128=True)
        self._lock = threading.Lock()

    def command(self, op: int, name: str, dev_id: int, *, buf: ctypes.Structure | None = None,
                data: int = 0) -> int:
        cmd = U.CtrlCmd(dev_id=dev_id & 0xFFFF_FFFF, queue_id=0xFFFF, data=data)
        if buf is not None:
            cmd.addr, cmd.len = ctypes.addressof(buf), ctypes.sizeof(buf)
        with self._lock:
            self.ring.prep_uring_cmd(self.fd, op, bytes(cmd), user_data=op)
            self.ring.submit_and_wait(1)
            (cqe,) = self.ring.completions()
        if cqe.res < 0:
            raise UblkError(-cqe.res, f"ublk {name} (device {dev_id}): {os.strerror(-cqe.res)}")
        return cqe.res

    def close(self) -> None:
        self.ring.close()
        os.close(self.fd)


def delete_device(dev_id: int) -> None:
    """STOP_DEV and DEL_DEV(_ASYNC) for device `dev_id`, e.g. one whose server was killed (its I/O already fails)."""
    control = Control()
    try:
        try:
            control.command(U.CMD_STOP_DEV, "STOP_DEV", dev_id)
        except UblkError as exc:
            if exc.errno != errno.ENODEV:
                raise
        control.command(U.CMD_DEL_DEV_ASYNC, "DEL_DEV_ASYNC", dev_id)
    finally:
        control.close()


def device_info(dev_id: int) -> U.CtrlDevInfo:
    """GET_DEV_INFO: the kernel's view of device `dev_id` (state, queues, depth, server pid)."""
    control = Control()
    try:
        info = U.CtrlDevInfo()
        control.command(U.CMD_GET_DEV_INFO, "GET_DEV_INFO", dev_id, buf=info)
        return info
    finally:
        control.close()
