"""One vring as the front end describes it: size, ring addresses (guest physical, translated), base index,
and the kick, call and err eventfds."""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

_EVENT = struct.Struct("<Q")


@dataclass
class Vring:
    index: int
    num: int = 0
    desc: int | None = None      # guest physical addresses (SET_VRING_ADDR, translated)
    avail: int | None = None
    used: int | None = None
    base: int = 0                # SET_VRING_BASE: the next avail index to process
    kick: int | None = None
    call: int | None = None
    err: int | None = None
    enabled: bool = False
    started: bool = False

    @property
    def ready(self) -> bool:
        """Enough is known to start the ring on the device."""
        return (self.enabled and self.kick is not None and self.num > 0 and self.desc is not None
                and self.avail is not None and self.used is not None)

    def replace_fd(self, which: str, fd: int | None) -> None:
        old = getattr(self, which)
        if old is not None:
            os.close(old)
        setattr(self, which, fd)

    def take_kick(self) -> int:
        """Consume the kick eventfd's count (0 when none was pending)."""
        assert self.kick is not None
        try:
            return int(_EVENT.unpack(os.read(self.kick, 8))[0])
        except BlockingIOError:
            return 0

    def signal(self, which: str = "call") -> None:
        """Add 1 to the call (or err) eventfd: the front end injects the guest's interrupt."""
        fd = getattr(self, which)
        if fd is not None:
            os.write(fd, _EVENT.pack(1))

    def close(self) -> None:
        for which in ("kick", "call", "err"):
            self.replace_fd(which, None)
