"""The smallest io_uring the ublk server needs: io_uring_setup/io_uring_enter through libc's syscall(2),
the rings mmapped, SQEs written field by field, IORING_OP_URING_CMD with its 16-byte (or, in an SQE128
ring, 80-byte) command payload, and IORING_OP_READ for an eventfd that wakes the ring's waiter.

Why our own: the maintained binding on PyPI (`liburing`, 2026.3.30) has `io_uring_prep_uring_cmd` and
`io_uring_prep_uring_cmd128`, marked "coded but not tested" there, and no way to write an SQE's command
payload (`sqe->cmd`), which is where ublk's `ublksrv_ctrl_cmd` and `ublksrv_io_cmd` travel; so it cannot
issue a ublk command. See docs/ublk.md.

The ring indices are shared with the kernel. The kernel orders its own side; on ours, CPython performs the
SQE stores and the tail store as separate C stores in program order, which x86-64's TSO keeps in order
(`Ring` refuses other machines rather than run without the barriers they would need).
"""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import platform
import struct
from dataclasses import dataclass

SYS_IO_URING_SETUP = 425  # the same number on every architecture using the generic syscall table
SYS_IO_URING_ENTER = 426

IORING_SETUP_SQE128 = 1 << 10
IORING_FEAT_SINGLE_MMAP = 1 << 0
IORING_ENTER_GETEVENTS = 1 << 0
IORING_OFF_SQ_RING = 0
IORING_OFF_CQ_RING = 0x8000000
IORING_OFF_SQES = 0x10000000

IORING_OP_NOP = 0
IORING_OP_READ = 22
IORING_OP_URING_CMD = 46

SQE_SIZE = 64
CQE_SIZE = 16
CMD_OFFSET = 48  # offsetof(struct io_uring_sqe, cmd)

_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long


class _SqOffsets(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint32) for n in ("head", "tail", "ring_mask", "ring_entries", "flags", "dropped",
                                                "array", "resv1")] + [("user_addr", ctypes.c_uint64)]


class _CqOffsets(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint32) for n in ("head", "tail", "ring_mask", "ring_entries", "overflow", "cqes",
                                                "flags", "resv1")] + [("user_addr", ctypes.c_uint64)]


class IoUringParams(ctypes.Structure):
    """struct io_uring_params (120 bytes)."""

    _fields_ = [("sq_entries", ctypes.c_uint32), ("cq_entries", ctypes.c_uint32), ("flags", ctypes.c_uint32),
                ("sq_thread_cpu", ctypes.c_uint32), ("sq_thread_idle", ctypes.c_uint32),
                ("features", ctypes.c_uint32), ("wq_fd", ctypes.c_uint32), ("resv", ctypes.c_uint32 * 3),
                ("sq_off", _SqOffsets), ("cq_off", _CqOffsets)]


@dataclass(frozen=True)
class Cqe:
    user_data: int
    res: int
    flags: int


class IoUringError(OSError):
    """io_uring_setup or io_uring_enter failed (the errno and what was asked are in the message)."""


def _check_machine() -> None:
    if platform.machine() not in ("x86_64", "AMD64"):
        raise IoUringError(errno.ENOSYS, f"this io_uring layer relies on x86-64 store ordering; "
                                         f"{platform.machine()} needs barriers it does not have")


class Ring:
    """One io_uring instance: `prep_*` fill the next SQE, `submit_and_wait` hands them over and waits."""

    def __init__(self, entries: int, *, sqe128: bool = False) -> None:
        _check_machine()
        params = IoUringParams()
        params.flags = IORING_SETUP_SQE128 if sqe128 else 0
        fd = _syscall(SYS_IO_URING_SETUP, ctypes.c_uint(entries), ctypes.byref(params))
        if fd < 0:
            err = ctypes.get_errno()
            raise IoUringError(err, f"io_uring_setup({entries} entries{', SQE128' if sqe128 else ''}): "
                                    f"{os.strerror(err)}")
        self.fd = int(fd)
        self.sqe_size = 2 * SQE_SIZE if sqe128 else SQE_SIZE
        self.entries = params.sq_entries
        sq, cq = params.sq_off, params.cq_off
        sq_len = sq.array + params.sq_entries * 4
        cq_len = cq.cqes + params.cq_entries * CQE_SIZE
        prot, flags = mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_SHARED | mmap.MAP_POPULATE
        try:
            if params.features & IORING_FEAT_SINGLE_MMAP:
                self._sq_map = mmap.mmap(self.fd, max(sq_len, cq_len), flags, prot, offset=IORING_OFF_SQ_RING)
                self._cq_map = self._sq_map
            else:
                self._sq_map = mmap.mmap(self.fd, sq_len, flags, prot, offset=IORING_OFF_SQ_RING)
                self._cq_map = mmap.mmap(self.fd, cq_len, flags, prot, offset=IORING_OFF_CQ_RING)
            self._sqes = mmap.mmap(self.fd, params.sq_entries * self.sqe_size, flags, prot, offset=IORING_OFF_SQES)
        except OSError:
            os.close(self.fd)
            raise
        u32 = ctypes.c_uint32
        self._sq_head = u32.from_buffer(self._sq_map, sq.head)
        self._sq_tail = u32.from_buffer(self._sq_map, sq.tail)
        self._sq_mask = u32.from_buffer(self._sq_map, sq.ring_mask).value
        self._sq_array = (u32 * params.sq_entries).from_buffer(self._sq_map, sq.array)
        self._cq_head = u32.from_buffer(self._cq_map, cq.head)
        self._cq_tail = u32.from_buffer(self._cq_map, cq.tail)
        self._cq_mask = u32.from_buffer(self._cq_map, cq.ring_mask).value
        self._cqes_off = cq.cqes
        self._pending = 0  # SQEs written but not yet handed to the kernel
        self._tail = self._sq_tail.value

    # --- submission ------------------------------------------------------------------------------------
    def _sqe(self, opcode: int, fd: int, user_data: int, *, off: int = 0, addr: int = 0, length: int = 0) -> int:
        """Zero the next free SQE and fill the common fields; its byte offset in the SQE array."""
        if (self._tail - self._sq_head.value) & 0xFFFF_FFFF >= self.entries:
            self.submit_and_wait(0)
            if (self._tail - self._sq_head.value) & 0xFFFF_FFFF >= self.entries:
                raise IoUringError(errno.EBUSY, f"io_uring submission queue full ({self.entries} entries)")
        index = self._tail & self._sq_mask
        at = index * self.sqe_size
        self._sqes[at:at + self.sqe_size] = bytes(self.sqe_size)
        struct.pack_into("<BBHiQQI", self._sqes, at, opcode, 0, 0, fd, off, addr, length)
        struct.pack_into("<Q", self._sqes, at + 32, user_data)
        self._sq_array[index] = index
        self._tail = (self._tail + 1) & 0xFFFF_FFFF
        self._sq_tail.value = self._tail  # after the SQE's stores (x86-64: stores stay in order)
        self._pending += 1
        return at

    def prep_uring_cmd(self, fd: int, cmd_op: int, payload: bytes, user_data: int) -> None:
        """IORING_OP_URING_CMD on `fd`: `cmd_op` in the SQE's off field, `payload` in its cmd area."""
        room = self.sqe_size - CMD_OFFSET
        if len(payload) > room:
            raise ValueError(f"uring_cmd payload of {len(payload)} bytes: this ring's SQEs hold {room} "
                             "(an SQE128 ring holds 80)")
        at = self._sqe(IORING_OP_URING_CMD, fd, user_data, off=cmd_op)
        self._sqes[at + CMD_OFFSET:at + CMD_OFFSET + len(payload)] = payload

    def prep_read(self, fd: int, addr: int, length: int, user_data: int, offset: int = 0) -> None:
        self._sqe(IORING_OP_READ, fd, user_data, off=offset, addr=addr, length=length)

    def prep_nop(self, user_data: int) -> None:
        self._sqe(IORING_OP_NOP, -1, user_data)

    def submit_and_wait(self, wait_nr: int = 1) -> int:
        """Hand over the written SQEs and wait until `wait_nr` completions are ready; SQEs submitted."""
        flags = IORING_ENTER_GETEVENTS if wait_nr else 0
        while True:
            n = _syscall(SYS_IO_URING_ENTER, ctypes.c_uint(self.fd), ctypes.c_uint(self._pending),
                         ctypes.c_uint(wait_nr), ctypes.c_uint(flags), None, ctypes.c_size_t(0))
            if n >= 0:
                self._pending -= min(self._pending, int(n))
                return int(n)
            err = ctypes.get_errno()
            if err == errno.EINTR:
                continue
            raise IoUringError(err, f"io_uring_enter(submit {self._pending}, wait {wait_nr}): {os.strerror(err)}")

    # --- completion ------------------------------------------------------------------------------------
    def completions(self) -> list[Cqe]:
        """Every CQE the kernel has posted, consumed."""
        head, tail = self._cq_head.value, self._cq_tail.value
        found = []
        while head != tail:
            at = self._cqes_off + (head & self._cq_mask) * CQE_SIZE
            user_data, res, flags = struct.unpack_from("<QiI", self._cq_map, at)
            found.append(Cqe(user_data, res, flags))
            head = (head + 1) & 0xFFFF_FFFF
        self._cq_head.value = head
        return found

    def close(self) -> None:
        """Close the ring: the kernel cancels what is still in flight on it."""
        if self.fd < 0:
            return
        # the ctypes views pin the mappings; drop them before closing the maps
        del self._sq_head, self._sq_tail, self._sq_array, self._cq_head, self._cq_tail
        self._sqes.close()
        if self._cq_map is not self._sq_map:
            self._cq_map.close()
        self._sq_map.close()
        os.close(self.fd)
        self.fd = -1

    def __enter__(self) -> Ring:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
