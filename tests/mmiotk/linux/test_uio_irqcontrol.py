"""UIO on a driver with irqcontrol: the kernel's tcm-user (target_core_user) backstore, a UIO device whose
"interrupt" is a SCSI command queued on its ring and whose irqcontrol (write(1) to /dev/uioN) makes the
kernel collect our completions. A tcm_loop SCSI host in front of it sends the commands (INQUIRY on each
scan); the test answers each with CHECK CONDITION, as a user-space backstore would for a LUN it refuses.

The ring layout is the UAPI's (linux/target_core_user.h): the mailbox has cmdr_off at 4, cmdr_size at 8,
cmd_head (kernel) at 12 and cmd_tail (ours) at 64; an entry is len_op (low 3 bits: 0 pad, 1 command),
cmd_id, flags, then the request (cdb_off at +24) or, written back, the response (scsi_status at +8,
sense at +16).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from hwsim.linux.guest import load_module
from hwsim.linux.machines import BACKENDS
from mmiotk import CachePolicy, MmioResource, UioSpace
from mmiotk.irq import IrqTimeoutError, uio_irq_factory

pytestmark = pytest.mark.linux_guest(BACKENDS)

CONFIGFS = Path("/sys/kernel/config")
TCMU_OP_MASK, TCMU_OP_CMD = 0x7, 1
CHECK_CONDITION = 0x02
SENSE_INVALID_OPCODE = bytes([0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x20, 0])
INQUIRY = 0x12


class Backstore:
    """Answers every command on the ring from a thread; records (events, opcode) per command."""

    def __init__(self, space: UioSpace) -> None:
        m = space.maps[0]
        self.ring = MmioResource(space, m.addr, m.size).create_region(m.addr, m.size, "tcmu",
                                                                      memory=True).map(CachePolicy.UNCACHED)
        self.irq = uio_irq_factory(space)(0)
        self.cmdr_off, self.cmdr_size = self.ring.read32(4), self.ring.read32(8)
        self.seen: list[tuple[int, int]] = []
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    events = self.irq.wait(0.2)
                except IrqTimeoutError:
                    continue
                head, tail = self.ring.read32(12), self.ring.read32(64)
                while tail != head:
                    entry = self.cmdr_off + tail
                    len_op = self.ring.read32(entry)
                    if len_op & TCMU_OP_MASK == TCMU_OP_CMD:
                        self.seen.append((events, self.ring.read8(self.ring.read64(entry + 24))))
                        self.ring.write8(entry + 8, CHECK_CONDITION)
                        for i, byte in enumerate(SENSE_INVALID_OPCODE):
                            self.ring.write8(entry + 16 + i, byte)
                    tail = (tail + (len_op & ~TCMU_OP_MASK)) % self.cmdr_size
                self.ring.write32(64, tail)
                self.irq.ack()  # irqcontrol: the kernel collects the completions now
        except BaseException as exc:
            self.errors.append(exc)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.irq.close()


@pytest.fixture
def tcmu() -> Iterator[tuple[Backstore, Path]]:
    load_module("target_core_user")
    load_module("tcm_loop")
    if not (CONFIGFS / "target").exists():
        os.system(f"mount -t configfs configfs {CONFIGFS}")
    device = CONFIGFS / "target" / "core" / "user_0" / "lab"
    device.mkdir(parents=True)
    (device / "control").write_text("dev_size=1048576")
    (device / "enable").write_text("1")
    uio = next(p.name for p in Path("/sys/class/uio").iterdir()
               if (p / "name").read_text().startswith("tcm-user/0/lab"))
    backstore = Backstore(UioSpace(uio))
    tpg = CONFIGFS / "target" / "loopback" / "naa.5001405000000001" / "tpgt_1"
    tpg.mkdir(parents=True)
    (tpg / "nexus").write_text("naa.5001405000000002")
    (tpg / "lun" / "lun_0").mkdir(parents=True)
    os.symlink(device, tpg / "lun" / "lun_0" / "lab")  # the SCSI host scans the LUN: an INQUIRY
    yield backstore, tpg
    backstore.stop()


def _scsi_host() -> Path:
    return next(h for h in Path("/sys/class/scsi_host").iterdir()
                if (h / "proc_name").read_text().strip() == "tcm_loopback")


def test_a_queued_command_wakes_the_wait_and_ack_writes_to_irqcontrol(tcmu: tuple[Backstore, Path]) -> None:
    backstore, _ = tcmu
    rescan = threading.Thread(target=lambda: (_scsi_host() / "scan").write_text("- - -"))
    for _ in range(100):
        if backstore.seen:
            break
        threading.Event().wait(0.05)
    assert backstore.seen and backstore.seen[0][1] == INQUIRY
    # A rescan waits for the first scan's INQUIRY to complete, which the kernel sees only through irqcontrol;
    # it then sends another INQUIRY and returns once we answered that one too.
    rescan.start()
    rescan.join(20)
    assert not rescan.is_alive()
    assert [op for _, op in backstore.seen].count(INQUIRY) >= 2
    assert not backstore.irq.through_config  # write(1) worked: no fallback to PCI config
    assert not backstore.errors
