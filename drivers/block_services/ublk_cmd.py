"""The ublk user-space ABI: opcodes, flags and structs of Linux's include/uapi/linux/ublk_cmd.h (6.12).

Control commands go to /dev/ublk-control as IORING_OP_URING_CMD in an SQE128 ring, a `CtrlCmd` in the
SQE's command area; I/O commands go to /dev/ublkcN, an `IoCmd` per tag. The kernel describes each request
in an array of `IoDesc` the server maps read-only from /dev/ublkcN.
"""

from __future__ import annotations

import ctypes

# ioctl encoding (UBLK_F_CMD_IOCTL_ENCODE): _IOC(dir, 'u', nr, size)
_IOC_WRITE, _IOC_READ = 1, 2


def _ioc(direction: int, nr: int, size: int) -> int:
    return (direction << 30) | (size << 16) | (ord("u") << 8) | nr


class CtrlCmd(ctypes.LittleEndianStructure):
    """struct ublksrv_ctrl_cmd: shipped in sqe->cmd of a control command."""

    _fields_ = [("dev_id", ctypes.c_uint32), ("queue_id", ctypes.c_uint16), ("len", ctypes.c_uint16),
                ("addr", ctypes.c_uint64), ("data", ctypes.c_uint64), ("dev_path_len", ctypes.c_uint16),
                ("pad", ctypes.c_uint16), ("reserved", ctypes.c_uint32)]


class CtrlDevInfo(ctypes.LittleEndianStructure):
    """struct ublksrv_ctrl_dev_info: ADD_DEV's argument and GET_DEV_INFO's answer."""

    _fields_ = [("nr_hw_queues", ctypes.c_uint16), ("queue_depth", ctypes.c_uint16), ("state", ctypes.c_uint16),
                ("pad0", ctypes.c_uint16), ("max_io_buf_bytes", ctypes.c_uint32), ("dev_id", ctypes.c_uint32),
                ("ublksrv_pid", ctypes.c_int32), ("pad1", ctypes.c_uint32), ("flags", ctypes.c_uint64),
                ("ublksrv_flags", ctypes.c_uint64), ("owner_uid", ctypes.c_uint32), ("owner_gid", ctypes.c_uint32),
                ("reserved1", ctypes.c_uint64), ("reserved2", ctypes.c_uint64)]


class IoCmd(ctypes.LittleEndianStructure):
    """struct ublksrv_io_cmd: FETCH_REQ / COMMIT_AND_FETCH_REQ for one tag of one queue."""

    _fields_ = [("q_id", ctypes.c_uint16), ("tag", ctypes.c_uint16), ("result", ctypes.c_int32),
                ("addr", ctypes.c_uint64)]


class IoDesc(ctypes.LittleEndianStructure):
    """struct ublksrv_io_desc: op in bits 0-7 of op_flags, UBLK_IO_F_* above."""

    _fields_ = [("op_flags", ctypes.c_uint32), ("nr_sectors", ctypes.c_uint32), ("start_sector", ctypes.c_uint64),
                ("addr", ctypes.c_uint64)]


class ParamBasic(ctypes.LittleEndianStructure):
    _fields_ = [("attrs", ctypes.c_uint32), ("logical_bs_shift", ctypes.c_uint8),
                ("physical_bs_shift", ctypes.c_uint8), ("io_opt_shift", ctypes.c_uint8),
                ("io_min_shift", ctypes.c_uint8), ("max_sectors", ctypes.c_uint32), ("chunk_sectors", ctypes.c_uint32),
                ("dev_sectors", ctypes.c_uint64), ("virt_boundary_mask", ctypes.c_uint64)]


class ParamDiscard(ctypes.LittleEndianStructure):
    _fields_ = [("discard_alignment", ctypes.c_uint32), ("discard_granularity", ctypes.c_uint32),
                ("max_discard_sectors", ctypes.c_uint32), ("max_write_zeroes_sectors", ctypes.c_uint32),
                ("max_discard_segments", ctypes.c_uint16), ("reserved0", ctypes.c_uint16)]


class Params(ctypes.LittleEndianStructure):
    """The head of struct ublk_params: len, types, basic, discard (SET_PARAMS takes a shorter len)."""

    _fields_ = [("len", ctypes.c_uint32), ("types", ctypes.c_uint32), ("basic", ParamBasic),
                ("discard", ParamDiscard)]


CMD_GET_DEV_INFO = _ioc(_IOC_READ, 0x02, ctypes.sizeof(CtrlCmd))
CMD_ADD_DEV = _ioc(_IOC_READ | _IOC_WRITE, 0x04, ctypes.sizeof(CtrlCmd))
CMD_DEL_DEV = _ioc(_IOC_READ | _IOC_WRITE, 0x05, ctypes.sizeof(CtrlCmd))
CMD_START_DEV = _ioc(_IOC_READ | _IOC_WRITE, 0x06, ctypes.sizeof(CtrlCmd))
CMD_STOP_DEV = _ioc(_IOC_READ | _IOC_WRITE, 0x07, ctypes.sizeof(CtrlCmd))
CMD_SET_PARAMS = _ioc(_IOC_READ | _IOC_WRITE, 0x08, ctypes.sizeof(CtrlCmd))
CMD_GET_FEATURES = _ioc(_IOC_READ, 0x13, ctypes.sizeof(CtrlCmd))
CMD_DEL_DEV_ASYNC = _ioc(_IOC_READ, 0x14, ctypes.sizeof(CtrlCmd))  # 6.9+: does not wait for openers

IO_FETCH_REQ = _ioc(_IOC_READ | _IOC_WRITE, 0x20, ctypes.sizeof(IoCmd))
IO_COMMIT_AND_FETCH_REQ = _ioc(_IOC_READ | _IOC_WRITE, 0x21, ctypes.sizeof(IoCmd))

IO_RES_OK = 0
IO_RES_ABORT = -19  # -ENODEV: the queue is going away, do not fetch again

UBLKSRV_CMD_BUF_OFFSET = 0
UBLKSRV_IO_BUF_OFFSET = 0x80000000
MAX_QUEUE_DEPTH = 4096
IO_BUF_BITS = 25  # one request's data: at most 32 MiB
TAG_OFF = IO_BUF_BITS
QID_OFF = TAG_OFF + 16

F_SUPPORT_ZERO_COPY = 1 << 0
F_URING_CMD_COMP_IN_TASK = 1 << 1
F_NEED_GET_DATA = 1 << 2
F_USER_RECOVERY = 1 << 3
F_CMD_IOCTL_ENCODE = 1 << 6
F_USER_COPY = 1 << 7

IO_OP_READ = 0
IO_OP_WRITE = 1
IO_OP_FLUSH = 2
IO_OP_DISCARD = 3
IO_OP_WRITE_SAME = 4
IO_OP_WRITE_ZEROES = 5
IO_F_FUA = 1 << 13

ATTR_READ_ONLY = 1 << 0
ATTR_VOLATILE_CACHE = 1 << 2
ATTR_FUA = 1 << 3

PARAM_TYPE_BASIC = 1 << 0
PARAM_TYPE_DISCARD = 1 << 1

S_DEV_DEAD = 0
S_DEV_LIVE = 1

SECTOR_SHIFT = 9  # ublk counts every offset and length in 512-byte sectors


def user_copy_offset(q_id: int, tag: int) -> int:
    """Where pread/pwrite on /dev/ublkcN reach the data of request `tag` of queue `q_id` (UBLK_F_USER_COPY)."""
    return UBLKSRV_IO_BUF_OFFSET + (q_id << QID_OFF) + (tag << TAG_OFF)


def io_desc_offset(q_id: int) -> int:
    """The mmap offset of queue `q_id`'s IoDesc array on /dev/ublkcN."""
    return UBLKSRV_CMD_BUF_OFFSET + q_id * MAX_QUEUE_DEPTH * ctypes.sizeof(IoDesc)
