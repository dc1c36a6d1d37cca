"""virtio-blk's wire format (virtio 1.2 §5.2; Linux's include/uapi/linux/virtio_blk.h): feature bits,
request types, status bytes, `struct virtio_blk_config`, and the structures a request carries.

Deliberate duplication: the virtio constants here are written out again, on purpose, in the device model
(hwsim/models/) and in the RTL test driver (tests/hwsim/vblk/vblk_driver.py), so that device and drivers
stay independent readings of the spec and a misreading in one is caught by the other.
"""

from __future__ import annotations

from ctypes import LittleEndianStructure, c_uint32, c_uint64

from mmiotk.registers import RO, Register, RegisterBlock

SECTOR = 512                  # the unit of `sector` in every request, whatever blk_size says


class BlkFeature:
    SIZE_MAX = 1
    SEG_MAX = 2
    RO = 5
    BLK_SIZE = 6
    FLUSH = 9
    TOPOLOGY = 10
    CONFIG_WCE = 11
    WRITE_ZEROES = 14


class ReqType:
    IN = 0
    OUT = 1
    FLUSH = 4
    WRITE_ZEROES = 13


class ReqStatus:
    OK = 0
    IOERR = 1
    UNSUPP = 2


class VirtioBlkConfig(RegisterBlock, name="virtio-blk config"):
    """struct virtio_blk_config (§5.2.4); 64-bit capacity as two 32-bit halves (§4.2.2.2)."""

    CAPACITY_LO = Register(0x00, access=RO)
    CAPACITY_HI = Register(0x04, access=RO)
    SIZE_MAX = Register(0x08, access=RO)
    SEG_MAX = Register(0x0C, access=RO)
    BLK_SIZE = Register(0x14, access=RO)
    PHYSICAL_BLOCK_EXP = Register(0x18, width=8, access=RO)
    ALIGNMENT_OFFSET = Register(0x19, width=8, access=RO)
    MIN_IO_SIZE = Register(0x1A, width=16, access=RO)
    OPT_IO_SIZE = Register(0x1C, access=RO)
    WRITEBACK = Register(0x20, width=8)
    MAX_WRITE_ZEROES_SECTORS = Register(0x30, access=RO)


class VirtioBlkOutHdr(LittleEndianStructure):
    """struct virtio_blk_outhdr (§5.2.6): the part of a request the device reads first."""

    _fields_ = [("type", c_uint32), ("reserved", c_uint32), ("sector", c_uint64)]


class VirtioBlkDiscardWriteZeroes(LittleEndianStructure):
    """struct virtio_blk_discard_write_zeroes (§5.2.6): the data of a WRITE_ZEROES request."""

    _fields_ = [("sector", c_uint64), ("num_sectors", c_uint32), ("flags", c_uint32)]
