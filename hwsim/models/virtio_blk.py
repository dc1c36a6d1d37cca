"""VirtioBlkModel: a behavioural virtio-blk device on the virtio-mmio transport — the reference the RTL
implements. Facts from virtio 1.2 (sections 2, 4.2, 5.2); where the spec leaves a choice, QEMU's choice.

Identity: MagicValue 0x74726976, Version 2 (1 with `legacy=True`: the legacy interface, virtio 1.2 4.2.4),
DeviceID 2, VendorID 0x4B544D4D ("MMTK"). One queue (index 0), QueueNumMax = `queue_size_max` (256); other
QueueSel values read QueueNumMax 0 and QueueReady 0.
Features offered: VERSION_1 (32, modern only), SEG_MAX (2), BLK_SIZE (6), plus FLUSH (9) if `flush`,
RING_INDIRECT_DESC (28) if `indirect`, RING_EVENT_IDX (29) if `event_idx`, CONFIG_WCE (11) if `config_wce`
(which needs `flush`: virtio 1.2 5.2.5.2), TOPOLOGY (10) if `topology`, WRITE_ZEROES (14) if `write_zeroes`,
RO (5) if read-only. Not offered: RING_RESET, SIZE_MAX, GEOMETRY, MQ, DISCARD.
Config (from 0x100): capacity u64 @0 (512-byte sectors), seg_max u32 @0xc, blk_size u32 @0x14 (the logical
block), physical_block_exp u8 @0x18 (physical block = blk_size << exp), alignment_offset u8 @0x19,
min_io_size u16 @0x1a, opt_io_size u32 @0x1c (topology, in logical blocks; 0 unless offered), writeback u8
@0x20, num_queues u16 @0x22 (= 1), max_write_zeroes_sectors u32 @0x30 and max_write_zeroes_seg u32 @0x34
(= 1) if WRITE_ZEROES; every other field of the 0x3c-byte virtio 1.2 layout reads 0.
`media_range=(offset, size)` (bytes) makes the device that part of its media: capacity is `size`, the
device's sector 0 is the media's byte `offset`.

Register access (`strict=True`, the default; `strict=False` in brackets — what the RTL does):
  * control registers (0x000-0x0ff) take only aligned 32-bit accesses; undefined offsets, other widths,
    reads of write-only and writes of read-only registers raise `AccessError` [ignored, reads return 0];
  * configuration fields take accesses of their own width, 64-bit fields two aligned 32-bit halves; an
    access spanning fields, past 0x3c, or writing any field but `writeback` raises [the bytes are read;
    the write is ignored]. `writeback` is writable once CONFIG_WCE is negotiated: non-zero = writeback;
  * Status writes above bit 7 raise [are masked off].
Reads of QueueReady/Status/InterruptStatus/ConfigGeneration return the current state; SHMLen*/SHMBase*
read 0xffffffff (no shared memory); QueueReset reads 0 and ignores writes.

Negotiation and status:
  * writing 0 to Status resets: status, features, selectors, queue settings (QueueNum back to the maximum),
    InterruptStatus (the line drops), the error; `writeback` back to its initial value. The write cache is
    kept (a reset is not a power cut);
  * Status bits are only ever set by a write (a write that would clear bits leaves them set);
    DEVICE_NEEDS_RESET (0x40) is the device's: writes neither set nor clear it;
  * setting FEATURES_OK checks the accepted features (every DriverFeatures word written): unoffered bits or
    VERSION_1 missing → FEATURES_OK is not latched (reads back 0) and `last_error` says why. Once latched,
    the features are fixed and DriverFeatures writes are ignored;
  * setting DRIVER_OK without FEATURES_OK → DEVICE_NEEDS_RESET;
  * once FEATURES_OK is set: if FLUSH was not negotiated, `writeback` becomes 0 (writethrough; this covers
    the spec's "CONFIG_WCE without FLUSH"). Entering writethrough (also via a `writeback` write of 0)
    first flushes the cache to the media. Writethrough (`writeback=False`) is the default, as in the
    device this one is after; a writethrough OUT completes only once its data is msync'd (5.2.6);
  * legacy: no FEATURES_OK (a write of it is dropped); the features are what the driver last wrote to
    DriverFeatures (word 0, masked by the offer) when it sets DRIVER_OK. The queue is set up by QueueNum,
    QueueAlign and GuestPageSize, then QueuePFN (non-zero enables, 0 disables: the legacy layout puts the
    avail ring right after the descriptors and the used ring on the next QueueAlign boundary).

Queue setup: queue registers (QueueNum, the three addresses) are ignored while QueueReady is 1 or another
queue is selected. QueueReady=1 enables the queue only if FEATURES_OK is set, QueueNum is a power of two in
1..QueueNumMax, descriptor table/avail/used are 16/2/4-byte aligned and each lies wholly in guest RAM;
otherwise QueueReady stays 0 and `last_error` says why. QueueReady=0 disables the queue (the settings
stay); enabling it again starts over at avail and used ring index 0.

Notification: a QueueNotify of 0 runs the queue if it is enabled, DRIVER_OK is set and neither
DEVICE_NEEDS_RESET nor FAILED is; any other QueueNotify is ignored. `deferred=True` only marks the queue:
it runs when its interrupt is waited on, InterruptStatus is read, or `run_queue()` is called (so a driver
that polls guest RAM alone never sees a completion — deliberately, to catch drivers assuming synchronous
completion). Running takes every available chain in order, completes each in the used ring (element, then
used.idx once for the batch) and, unless avail.flags has NO_INTERRUPT, sets InterruptStatus bit 0 and raises
the line. InterruptACK clears the bits written; the line is high while InterruptStatus != 0 (level).
With RING_EVENT_IDX negotiated (2.7.7, 2.7.10) avail.flags is ignored: the batch raises the interrupt only if
one of its elements went into the used ring entry avail->used_event names (vring_need_event(used_event,
new, old)); and once the avail ring is empty the device writes its next avail index to used->avail_event
(only when that changes), then looks at avail.idx once more before it stops.

Malformed chains: one policy for this model and the RTL controller, QEMU's. QEMU's virtqueue_pop
(hw/virtio/virtio.c) and virtio-blk's request parsing call virtio_error() — DEVICE_NEEDS_RESET, the queue
is not used again until reset — for every chain that breaks the virtqueue rules: a bad head or next index,
a loop, a zero-sized or unmappable buffer, readable after writable, a bad indirect table, a short header, a
missing status byte. Those are the queue errors below, in both. What the chain is well formed but the
request cannot use gets a status: IOERR for a bad range or block alignment, more data buffers than
seg_max, OUT on a read-only device (as QEMU); UNSUPP for other types. Where QEMU differs: it follows
INDIRECT even when RING_INDIRECT_DESC was not negotiated (we set DEVICE_NEEDS_RESET), and it reports the
whole device-writable length as the used len of a failed request (we report 1, the status byte only:
2.7.8 says len is what the device wrote). The RTL adds its own limit as request errors (IOERR): its
alignment contract (4-byte aligned buffers and indirect tables, see docs/cosim.md) and at most
2**DTAB_AW descriptors per request.

Queue errors — the chain cannot be walked or answered. The device completes the chains before it,
publishes them, then sets DEVICE_NEEDS_RESET, sets InterruptStatus bit 1 and raises the line if DRIVER_OK
(configuration change notification), and runs no queue until reset; the bad chain gets no used element.
`last_error` names the case:
  1. avail.idx more than QueueNum entries ahead of the device;
  2. a head index >= QueueNum, or a next index >= its table's size (QueueNum, or indirect entries);
  3. a chain longer than its table (a loop);
  4. INDIRECT when RING_INDIRECT_DESC was not negotiated, INDIRECT with NEXT, INDIRECT inside an
     indirect table, an indirect table whose length is 0 or not a multiple of 16 or that is not wholly in
     guest RAM (INDIRECT may end a chain of direct descriptors: virtio 1.2, 2.7.5.3.2);
  5. a descriptor of length 0, or a buffer not wholly in guest RAM (the descriptor table itself included);
  6. a device-readable descriptor after a device-writable one;
  7. fewer than 16 device-readable bytes (short header), or no device-writable byte (no status).

Request errors — the status byte (the last device-writable byte of the chain) says it, and the used
element's len is the number of bytes the device wrote (data, then the 1 status byte):
  * IN (0): data = all device-writable bytes but the status. IOERR if its length is not a multiple of 512
    or of blk_size, the sector is not a multiple of blk_size/512, sector + length/512 > capacity, or it
    has more than seg_max data buffers. Extra device-readable bytes after the header are ignored.
  * OUT (1): data = the device-readable bytes after the 16-byte header. IOERR on a read-only device, then
    the same checks as IN. Device-writable bytes before the status are ignored (len counts only the status).
    Writeback mode: the data goes into the write cache; writethrough: onto the media (and msync'd).
  * FLUSH (4): UNSUPP if FLUSH was not negotiated; otherwise the cache goes to the media, msync, OK.
  * GET_ID (8): the 20-byte id (`serial`, zero padded) into the data bytes, truncated to their length; OK.
  * WRITE_ZEROES (13, if offered): the readable bytes after the header are one 16-byte segment {u64 sector,
    u32 num_sectors, u32 flags}; IOERR if the header's sector is not 0 (5.2.6: unused, set to 0, for
    anything but IN and OUT), if there is not exactly one segment (max_write_zeroes_seg = 1), num_sectors
    is 0 or above max_write_zeroes_sectors (`write_zeroes_max`), flags has bits other than UNMAP, the range
    fails the IN/OUT checks, or the device is read-only; else the sectors read back as zeroes.
  * any other type (DISCARD, ...): UNSUPP. A zero-length IN/OUT passes the same checks
    (sector <= capacity, sector aligned to blk_size) and is then OK.
Nothing but the status byte is written for a failed request.

Power: `ModelSpace.close()` is an orderly power-down and flushes the write cache to the media (as QEMU
does on SIGTERM); `media.power_loss()` is the crash that loses it.
"""

from __future__ import annotations

import os
import struct

from hwsim.media import SECTOR, BlockMedia
from mmiotk.errors import MmioValueError

from .virtio_mmio import ConfigField, VirtioMmioDevice, pack_config
from .virtio_mmio_regs import F_RING_EVENT_IDX, F_RING_INDIRECT_DESC, F_VERSION_1, FEATURES_OK
from .virtqueue import QueueFatal, Segment

# Deliberate duplication: the virtio constants here are written out again, on purpose, in the driver
# (drivers/virtio/) and in the RTL test driver (tests/hwsim/vblk/vblk_driver.py), so that device and
# drivers stay independent readings of the spec and a misreading in one is caught by the other.
F_SEG_MAX, F_RO, F_BLK_SIZE, F_FLUSH, F_TOPOLOGY, F_CONFIG_WCE = 2, 5, 6, 9, 10, 11
T_IN, T_OUT, T_FLUSH, T_GET_ID, T_WRITE_ZEROES = 0, 1, 4, 8, 13
F_WRITE_ZEROES = 14
WZ_F_UNMAP = 1
_WZ_SEGMENT = struct.Struct("<QII")
S_OK, S_IOERR, S_UNSUPP = 0, 1, 2
ID_BYTES = 20
_HEADER = struct.Struct("<IIQ")

BLK_CONFIG = (
    ConfigField("capacity", 0x00, 8), ConfigField("size_max", 0x08, 4), ConfigField("seg_max", 0x0C, 4),
    ConfigField("cylinders", 0x10, 2), ConfigField("heads", 0x12, 1), ConfigField("sectors", 0x13, 1),
    ConfigField("blk_size", 0x14, 4), ConfigField("physical_block_exp", 0x18, 1),
    ConfigField("alignment_offset", 0x19, 1), ConfigField("min_io_size", 0x1A, 2),
    ConfigField("opt_io_size", 0x1C, 4), ConfigField("writeback", 0x20, 1, writable=True),
    ConfigField("unused0", 0x21, 1), ConfigField("num_queues", 0x22, 2),
    ConfigField("max_discard_sectors", 0x24, 4), ConfigField("max_discard_seg", 0x28, 4),
    ConfigField("discard_sector_alignment", 0x2C, 4), ConfigField("max_write_zeroes_sectors", 0x30, 4),
    ConfigField("max_write_zeroes_seg", 0x34, 4), ConfigField("write_zeroes_may_unmap", 0x38, 1),
    ConfigField("unused1_0", 0x39, 1), ConfigField("unused1_1", 0x3A, 1), ConfigField("unused1_2", 0x3B, 1),
)


class VirtioBlkModel(VirtioMmioDevice):
    """The device; see the module docstring for its behaviour in every case.

    Storage is `media`, or a `BlockMedia` over `image` (a file), or `size` bytes of memory (16 MiB);
    `media_range` = (offset, size) in bytes exposes part of it. `writeback` is the cache mode after reset
    (writethrough by default); `strict`, `deferred` and `legacy` are described above.
    """

    device_id = 2
    config_layout = BLK_CONFIG

    def __init__(self, media: BlockMedia | None = None, *, image: str | os.PathLike[str] | None = None,
                 size: int | None = None, readonly: bool = False, blk_size: int = 512, seg_max: int = 126,
                 writeback: bool = False, flush: bool = True, config_wce: bool = True, indirect: bool = True,
                 event_idx: bool = True,
                 topology: bool = True, physical_block_exp: int = 0, alignment_offset: int = 0,
                 min_io_size: int = 1, opt_io_size: int = 0, media_range: tuple[int, int] | None = None,
                 write_zeroes: bool = True, write_zeroes_max: int = 1 << 16,
                 serial: bytes = b"mmiotk-virtio-blk", queue_size_max: int = 256, strict: bool = True,
                 deferred: bool = False, legacy: bool = False, name: str = "virtio-blk-model") -> None:
        if media is None:
            media = BlockMedia(image, readonly=readonly) if image is not None else \
                BlockMedia(size=16 << 20 if size is None else size, readonly=readonly)
        elif image is not None or size is not None:
            raise MmioValueError("VirtioBlkModel takes media, or image, or size — not several")
        if not isinstance(blk_size, int) or not SECTOR <= blk_size <= 65536 or blk_size & (blk_size - 1):
            raise MmioValueError(f"blk_size must be a power of two in 512..65536, got {blk_size!r}")
        offset, length = (0, media.size) if media_range is None else media_range
        if offset < 0 or length <= 0 or offset % SECTOR or offset + length > media.size:
            raise MmioValueError(f"media_range {media_range!r} is not a non-empty, 512-byte aligned part of the "
                                 f"{media.size}-byte media")
        if length % blk_size:
            raise MmioValueError(f"media of {length} bytes is not a whole number of {blk_size}-byte blocks")
        if config_wce and not flush:
            raise MmioValueError("config_wce needs flush: a device offering VIRTIO_BLK_F_CONFIG_WCE must offer "
                                 "VIRTIO_BLK_F_FLUSH (virtio 1.2, 5.2.5.2)")
        for field, value, bits in (("physical_block_exp", physical_block_exp, 8),
                                   ("alignment_offset", alignment_offset, 8), ("min_io_size", min_io_size, 16),
                                   ("opt_io_size", opt_io_size, 32)):
            if not isinstance(value, int) or not 0 <= value < 1 << bits:
                raise MmioValueError(f"{field} must be an int in 0..{(1 << bits) - 1}, got {value!r}")
        if not isinstance(seg_max, int) or seg_max < 1:
            raise MmioValueError(f"seg_max must be a positive int, got {seg_max!r}")
        if not isinstance(serial, bytes) or len(serial) > ID_BYTES:
            raise MmioValueError(f"serial must be at most {ID_BYTES} bytes, got {serial!r}")
        self.media = media
        self.base_sector = offset // SECTOR
        self.sectors = length // SECTOR
        self.readonly = readonly or media.readonly
        self.blk_size = blk_size
        self.seg_max = seg_max
        self.initial_writeback = writeback
        self.flush = flush
        self.config_wce = config_wce
        self.topology = topology
        self.write_zeroes = write_zeroes
        self.write_zeroes_max = write_zeroes_max
        self.topology_values = {"physical_block_exp": physical_block_exp, "alignment_offset": alignment_offset,
                                "min_io_size": min_io_size, "opt_io_size": opt_io_size}
        self.indirect = indirect
        self.event_idx = event_idx
        self.serial = serial.ljust(ID_BYTES, b"\0")
        self.wce = 1 if writeback else 0
        self.requests = {T_IN: 0, T_OUT: 0, T_FLUSH: 0, T_GET_ID: 0, T_WRITE_ZEROES: 0}
        super().__init__(queue_size_max=queue_size_max, strict=strict, deferred=deferred, legacy=legacy,
                         name=name)

    # --- transport hooks -----------------------------------------------------------------------------
    def offered_features(self) -> int:
        bits = 1 << F_VERSION_1 | 1 << F_SEG_MAX | 1 << F_BLK_SIZE
        if self.flush:
            bits |= 1 << F_FLUSH
        if self.topology:
            bits |= 1 << F_TOPOLOGY
        if self.write_zeroes:
            bits |= 1 << F_WRITE_ZEROES
        if self.indirect:
            bits |= 1 << F_RING_INDIRECT_DESC
        if self.event_idx:
            bits |= 1 << F_RING_EVENT_IDX
        if self.config_wce:
            bits |= 1 << F_CONFIG_WCE
        if self.readonly:
            bits |= 1 << F_RO
        return bits

    def config_bytes(self) -> bytes:
        values = {"capacity": self.sectors, "seg_max": self.seg_max, "blk_size": self.blk_size,
                  "writeback": self.wce, "num_queues": 1}
        if self.topology:
            values.update(self.topology_values)
        if self.write_zeroes:
            values.update({"max_write_zeroes_sectors": self.write_zeroes_max, "max_write_zeroes_seg": 1})
        return pack_config(BLK_CONFIG, values)

    def config_writable(self, field: ConfigField) -> bool:
        fixed = bool(self.status & FEATURES_OK) or self.legacy
        return field.name == "writeback" and fixed and self.has_feature(F_CONFIG_WCE)

    def config_store(self, field: ConfigField, value: int) -> None:
        self._set_wce(1 if value else 0)

    def on_reset(self) -> None:
        self.wce = 1 if self.initial_writeback else 0

    def on_features_ok(self) -> None:
        if not self.has_feature(F_FLUSH):
            self._set_wce(0)

    def shutdown(self) -> None:
        """An orderly power-down writes the cache back, as QEMU does when it exits on SIGTERM."""
        with self.lock:
            if not self.media.closed:
                self.media.flush()

    def _set_wce(self, wce: int) -> None:
        if not wce:
            self.media.flush()                 # writethrough holds nothing in the cache
        self.wce = wce

    @property
    def writeback_active(self) -> bool:
        return self.wce == 1

    # --- requests ------------------------------------------------------------------------------------
    def handle(self, segments: list[Segment]) -> int:
        mem = self.memory
        assert mem is not None
        readable = [s for s in segments if not s.writable]
        writable = [s for s in segments if s.writable]
        r_len = sum(s.length for s in readable)
        w_len = sum(s.length for s in writable)
        if r_len < _HEADER.size:
            raise QueueFatal(f"request header is {r_len} bytes, {_HEADER.size} needed")
        if w_len < 1:
            raise QueueFatal("request has no device-writable byte for its status")
        kind, _reserved, sector = _HEADER.unpack(self._gather(readable, 0, _HEADER.size))
        last = writable[-1]
        status_addr = last.addr + last.length - 1
        written = 0
        if kind == T_IN:
            status, written = self._read(sector, writable, w_len - 1)
        elif kind == T_OUT:
            status = self._write(sector, readable, r_len - _HEADER.size)
        elif kind == T_FLUSH:
            status = S_OK if self.has_feature(F_FLUSH) else S_UNSUPP
            if status == S_OK:
                self.media.flush()
        elif kind == T_WRITE_ZEROES and self.has_feature(F_WRITE_ZEROES):
            status = self._write_zeroes(sector, readable, r_len - _HEADER.size)
        elif kind == T_GET_ID:
            written = min(ID_BYTES, w_len - 1)
            self._scatter(writable, self.serial[:written])
            status = S_OK
        else:
            status = S_UNSUPP
        if kind in self.requests:
            self.requests[kind] += 1
        mem.write(status_addr, bytes((status,)))
        return written + 1

    def _range_ok(self, sector: int, length: int, pieces: int) -> bool:
        per_block = self.blk_size // SECTOR
        return (length % self.blk_size == 0 and sector % per_block == 0 and pieces <= self.seg_max
                and sector + length // SECTOR <= self.sectors)

    def _read(self, sector: int, writable: list[Segment], length: int) -> tuple[int, int]:
        pieces = _pieces(writable, 0, length)
        if not self._range_ok(sector, length, len(pieces)):
            return S_IOERR, 0
        mem = self.memory
        assert mem is not None
        sector += self.base_sector
        if len(pieces) == 1:
            self.media.read_into(sector, mem.read(*pieces[0]))
        elif pieces:
            data = memoryview(bytearray(length))
            self.media.read_into(sector, data)
            pos = 0
            for addr, n in pieces:
                mem.write(addr, data[pos:pos + n])
                pos += n
        return S_OK, length

    def _write(self, sector: int, readable: list[Segment], length: int) -> int:
        pieces = _pieces(readable, _HEADER.size, length)
        if self.readonly or not self._range_ok(sector, length, len(pieces)):
            return S_IOERR
        mem = self.memory
        assert mem is not None
        if len(pieces) == 1:
            data = mem.read(*pieces[0])
        else:
            data = memoryview(b"".join(bytes(mem.read(addr, n)) for addr, n in pieces))
        if length:
            self.media.write(self.base_sector + sector, data, writeback=self.writeback_active)
        return S_OK

    def _write_zeroes(self, header_sector: int, readable: list[Segment], length: int) -> int:
        if header_sector != 0 or length != _WZ_SEGMENT.size or self.readonly:
            return S_IOERR
        sector, count, flags = _WZ_SEGMENT.unpack(self._gather(readable, _HEADER.size, _WZ_SEGMENT.size))
        if not 0 < count <= self.write_zeroes_max or flags & ~WZ_F_UNMAP \
                or not self._range_ok(sector, count * SECTOR, 1):
            return S_IOERR
        self.media.write(self.base_sector + sector, memoryview(bytes(count * SECTOR)),
                         writeback=self.writeback_active)
        return S_OK

    def _gather(self, segments: list[Segment], start: int, length: int) -> bytes:
        mem = self.memory
        assert mem is not None
        return b"".join(bytes(mem.read(addr, n)) for addr, n in _pieces(segments, start, length))

    def _scatter(self, segments: list[Segment], data: bytes) -> None:
        mem = self.memory
        assert mem is not None
        pos = 0
        for addr, n in _pieces(segments, 0, len(data)):
            mem.write(addr, data[pos:pos + n])
            pos += n


def _pieces(segments: list[Segment], start: int, length: int) -> list[tuple[int, int]]:
    """The (address, length) pieces of bytes [start, start + length) of the segments' byte stream."""
    out = []
    pos = 0
    end = start + length
    for seg in segments:
        lo, hi = max(start, pos), min(end, pos + seg.length)
        if lo < hi:
            out.append((seg.addr + lo - pos, hi - lo))
        pos += seg.length
        if pos >= end:
            break
    return out
