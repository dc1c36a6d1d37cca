"""Interrupt lines as drivers see them: wait with a timeout, acknowledge, mask, unmask.

Every backend (mock, UIO, RTL simulation, QEMU) implements `Interrupt`; a driver never knows which. A bus
gets its lines from an `IrqFactory` (`number -> Interrupt`) supplied by whoever knows the target, and hands
them to the drivers it binds.

Semantics every backend follows: a wait that times out raises `IrqTimeoutError` (nothing waits forever);
after an interrupt is delivered the line stays quiet until `ack()` (as with UIO and Fuchsia); after the bus
revokes an interrupt (unbind), every call raises `RevokedError`, and a wait already blocked wakes up and
raises it too.
"""

from __future__ import annotations

import errno
import math
import os
import select
import struct
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING

from .errors import MmioError, MmioValueError, RevokedError

if TYPE_CHECKING:
    from .pci import PciConfig
    from .uio import UioSpace


class IrqTimeoutError(MmioError, TimeoutError):
    """No interrupt arrived within the timeout."""


class Interrupt(ABC):
    """One interrupt line handed to a driver."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._revoked = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}{' revoked' if self._revoked else ''}>"

    def _check_live(self) -> None:
        if self._revoked:
            raise RevokedError(f"interrupt {self.name!r} was revoked")

    def wait(self, timeout: float) -> int:
        """Block until the line fires or `timeout` seconds pass; returns the number of events seen."""
        self._check_live()
        if (not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not math.isfinite(timeout)
                or timeout < 0):
            raise MmioValueError(f"interrupt {self.name!r}: wait needs a finite timeout >= 0 seconds, "
                                 f"got {timeout!r}")
        return self._wait(float(timeout))

    def ack(self) -> None:
        """Acknowledge at the interrupt controller, re-arming the line."""
        self._check_live()
        self._ack()

    def mask(self) -> None:
        self._check_live()
        self._mask()

    def unmask(self) -> None:
        self._check_live()
        self._unmask()

    def revoke(self) -> None:
        """Called by the bus on unbind: every later call raises RevokedError; blocked waits wake and raise."""
        if self._revoked:
            return
        self._revoked = True
        self._on_revoke()

    @property
    def revoked(self) -> bool:
        return self._revoked

    @abstractmethod
    def _wait(self, timeout: float) -> int: ...

    def _ack(self) -> None:
        return None

    @abstractmethod
    def _mask(self) -> None: ...

    @abstractmethod
    def _unmask(self) -> None: ...

    def _on_revoke(self) -> None:
        """Wake blocked waiters and release backend resources (override where there are any)."""
        return None


IrqFactory = Callable[[int], Interrupt]
"""What a bus calls to get the line for interrupt `number`; supplied by the space or target."""


class LevelInterrupt(Interrupt):
    """A level-triggered line seen through its `level` and a count of its `rises` (a model, QEMU).

    A delivered interrupt is in service until `ack()`; a line still high after `ack()` is delivered again at
    once; a masked line is never delivered. `wait` returns the rises since the previous delivery (at least
    1). Subclasses supply `level`, `rises` and `_wait` (their way of sleeping until `_ready()`, then
    `_deliver`); `level` and `rises` must already work when this __init__ runs.
    """

    def __init__(self, name: str, where: str = "") -> None:
        super().__init__(name)
        self._where = where
        self._masked = False
        self._in_service = False
        self._seen = self.rises

    @property
    @abstractmethod
    def level(self) -> int: ...

    @property
    @abstractmethod
    def rises(self) -> int: ...

    def _ready(self) -> bool:
        return self._revoked or (bool(self.level) and not self._masked and not self._in_service)

    def _deliver(self, delivered: bool, timeout: float) -> int:
        """After a wait for `_ready()`: the event count, or why there is none (revoked, timed out)."""
        if self._revoked:
            raise RevokedError(f"interrupt {self.name!r} was revoked while waiting")
        if not delivered:
            why = "low"
            if self.level and self._in_service:
                why = "high but in service: the previous interrupt was never acked"
            elif self.level and self._masked:
                why = "high but masked"
            raise IrqTimeoutError(f"interrupt {self.name!r}{self._where}: no interrupt within {timeout:g} s; "
                                  f"the line is {why}")
        rises = self.rises
        events, self._seen = max(1, rises - self._seen), rises
        self._in_service = True
        return events

    def _ack(self) -> None:
        self._in_service = False

    def _mask(self) -> None:
        self._masked = True

    def _unmask(self) -> None:
        self._masked = False


class MockInterrupt(Interrupt):
    """A line a test fires with `trigger()`, from any thread.

    Events are counted while masked or not yet acknowledged and delivered by the next wait that may see
    them, so a missing `ack()` or `unmask()` shows up as a timeout whose message says why.
    """

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self._cond = threading.Condition()
        self._pending = 0
        self._masked = False
        self._in_service = False
        self.triggered = 0
        self.delivered = 0
        self.acks = 0

    @property
    def masked(self) -> bool:
        return self._masked

    @property
    def pending(self) -> int:
        """Events raised but not yet returned by a wait."""
        return self._pending

    def trigger(self, count: int = 1) -> None:
        """Raise the line `count` times; on a revoked line the events go nowhere (nobody listens)."""
        if not isinstance(count, int) or count < 1:
            raise MmioValueError(f"interrupt {self.name!r}: trigger count must be a positive int, got {count!r}")
        with self._cond:
            self.triggered += count
            if self._revoked:
                return
            self._pending += count
            self._cond.notify_all()

    def _deliverable(self) -> bool:
        return self._revoked or (self._pending > 0 and not self._masked and not self._in_service)

    def _wait(self, timeout: float) -> int:
        with self._cond:
            self._cond.wait_for(self._deliverable, timeout)
            if self._revoked:
                raise RevokedError(f"interrupt {self.name!r} was revoked (device gone) while waiting")
            if not self._deliverable():
                why = ""
                if self._pending and self._in_service:
                    why = f"; {self._pending} event(s) pending behind an interrupt that was never acked"
                elif self._pending and self._masked:
                    why = f"; {self._pending} event(s) pending on a masked line"
                raise IrqTimeoutError(f"interrupt {self.name!r}: no interrupt within {timeout:g} s{why}")
            count, self._pending = self._pending, 0
            self._in_service = True
            self.delivered += count
            return count

    def _ack(self) -> None:
        with self._cond:
            self.acks += 1
            self._in_service = False
            self._cond.notify_all()

    def _mask(self) -> None:
        with self._cond:
            self._masked = True

    def _unmask(self) -> None:
        with self._cond:
            self._masked = False
            self._cond.notify_all()

    def _on_revoke(self) -> None:
        with self._cond:
            self._cond.notify_all()


class MockInterruptController:
    """An `IrqFactory` of mock lines that also lets a test raise line `number` by number, like a device would.

    It keeps the lines it handed out; `trigger(number)` fires every live one with that number (a bus that
    rebinds a device gets a fresh line; the revoked one is forgotten).
    """

    def __init__(self, prefix: str = "irq") -> None:
        self.prefix = prefix
        self._lock = threading.Lock()
        self._lines: dict[int, list[MockInterrupt]] = {}

    def __call__(self, number: int) -> MockInterrupt:
        if not isinstance(number, int) or number < 0:
            raise MmioValueError(f"interrupt number must be an int >= 0, got {number!r}")
        line = MockInterrupt(f"{self.prefix}{number}")
        with self._lock:
            live = [i for i in self._lines.get(number, []) if not i.revoked]
            self._lines[number] = [*live, line]
        return line

    def lines(self, number: int) -> list[MockInterrupt]:
        """The live interrupts handed out for `number`."""
        with self._lock:
            return [i for i in self._lines.get(number, []) if not i.revoked]

    def trigger(self, number: int, count: int = 1) -> int:
        """Fire line `number`; returns how many live interrupts saw it (0: nobody holds that line)."""
        live = self.lines(number)
        for line in live:
            line.trigger(count)
        return len(live)


_EVENT = struct.Struct("=i")  # UIO speaks native-endian 32-bit integers both ways


class UioInterrupt(Interrupt):
    """The interrupt of a UIO device: a blocking read of /dev/uioX returns the 32-bit event count; writing
    1 re-enables the interrupt (`ack`, `unmask`), writing 0 disables it (`mask`).

    Drivers without irqcontrol (uio_pci_generic) answer that write with ENOSYS: the kernel masks the line by
    setting INTx-disable in the PCI command register on each interrupt, and user space re-enables it by
    clearing that bit through sysfs `config` (as DPDK does). Given the device's `pci_config`, this class
    does so from the first ENOSYS on; without it the ENOSYS is an error saying what is missing.

    Give a `path` (opened here) or an `fd` (duplicated, so the caller keeps its own; a `path` given with it
    only names the file in messages); tests stand a FIFO or one end of a socketpair in for the device node.
    `wait` returns the events since the previous wait.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, fd: int | None = None,
                 name: str | None = None, pci_config: PciConfig | None = None) -> None:
        if path is None and fd is None:
            raise MmioValueError("UioInterrupt needs a path (e.g. /dev/uio0) or an fd open on one")
        where = os.fspath(path) if path is not None else f"fd {fd}"
        super().__init__(name or where)
        self.path = where
        if fd is None:
            assert path is not None
            try:
                self._fd = os.open(path, os.O_RDWR | os.O_CLOEXEC | os.O_NONBLOCK)
            except OSError as exc:
                raise MmioError(f"interrupt {self.name!r}: cannot open {where}: {exc.strerror}") from None
        else:
            self._fd = os.dup(fd)
        self._wake_r, self._wake_w = os.pipe()
        self._lock = threading.Lock()
        self._fds_lock = threading.Lock()
        self._closed = False
        self.last_count: int | None = None
        self.pci_config = pci_config
        self.through_config = False  # set at the first ENOSYS: the driver has no irqcontrol

    def _wait(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        if not self._lock.acquire(timeout=timeout):
            raise IrqTimeoutError(f"interrupt {self.name!r}: another thread held the line for {timeout:g} s")
        try:
            return self._read_event(deadline, timeout)
        finally:
            self._lock.release()
            if self._revoked:
                self._close_fds()

    def _read_event(self, deadline: float, timeout: float) -> int:
        if self._closed:
            raise RevokedError(f"interrupt {self.name!r} was revoked")
        poller = select.poll()
        poller.register(self._fd, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        data = b""
        while True:
            remaining = deadline - time.monotonic()
            if remaining < 0:
                raise IrqTimeoutError(f"interrupt {self.name!r}: no interrupt on {self.path} within {timeout:g} s")
            events = dict(poller.poll(math.ceil(remaining * 1000)))
            if self._revoked or self._wake_r in events:
                raise RevokedError(f"interrupt {self.name!r} was revoked (device gone) while waiting")
            flags = events.get(self._fd, 0)
            if not flags:
                continue
            if not flags & select.POLLIN:
                raise MmioError(f"interrupt {self.name!r}: {self.path} reports an error (poll flags {flags:#x})")
            try:
                chunk = os.read(self._fd, _EVENT.size - len(data))
            except BlockingIOError:
                continue
            except OSError as exc:
                raise MmioError(f"interrupt {self.name!r}: reading {self.path} failed: {exc.strerror}") from None
            if not chunk:
                raise MmioError(f"interrupt {self.name!r}: {self.path} was closed (end of file)")
            data += chunk
            if len(data) == _EVENT.size:
                count = _EVENT.unpack(data)[0]
                seen = count - self.last_count if self.last_count is not None else 1
                self.last_count = count
                return seen if seen > 0 else 1

    def _control(self, value: int, what: str) -> None:
        if self.through_config:
            assert self.pci_config is not None
            self.pci_config.set_intx_disabled(not value)
            return
        try:
            written = os.write(self._fd, _EVENT.pack(value))
        except OSError as exc:
            if exc.errno == errno.ENOSYS:
                if self.pci_config is None:
                    raise MmioError(f"interrupt {self.name!r}: {what}: the UIO driver has no irqcontrol (write to "
                                    f"{self.path} is ENOSYS) and no PCI config space was given to clear "
                                    "INTx-disable through (UioInterrupt(..., pci_config=space.pci_config))"
                                    ) from None
                self.through_config = True
                self._control(value, what)
                return
            raise MmioError(f"interrupt {self.name!r}: {what} (writing {value} to {self.path}) failed: "
                            f"{exc.strerror}") from None
        if written != _EVENT.size:
            raise MmioError(f"interrupt {self.name!r}: {what}: short write of {written} bytes to {self.path}")

    def _ack(self) -> None:
        self._control(1, "ack")

    def _mask(self) -> None:
        self._control(0, "mask")

    def _unmask(self) -> None:
        self._control(1, "unmask")

    def _on_revoke(self) -> None:
        with self._fds_lock:
            if not self._closed:
                os.write(self._wake_w, b"x")
        if self._lock.acquire(blocking=False):  # nobody waiting: close now; else the waiter closes on its way out
            try:
                self._close_fds()
            finally:
                self._lock.release()

    def _close_fds(self) -> None:
        with self._fds_lock:
            if self._closed:
                return
            self._closed = True
            for fd in (self._fd, self._wake_r, self._wake_w):
                os.close(fd)

    def close(self) -> None:
        """Revoke and release the file descriptors."""
        self.revoke()


def uio_irq_factory(space: UioSpace) -> IrqFactory:
    """A UIO device has one interrupt, whatever number the board gives it."""

    def factory(number: int) -> Interrupt:
        return UioInterrupt(space.irq_path, fd=space.fileno(), name=f"{space.device}.irq{number}",
                            pci_config=space.pci_config)

    return factory


def irq_factory_for(space: object) -> IrqFactory:
    """The interrupts a target offers with its space: its own `irq_factory` (simulation, QEMU), UIO's
    device node, or else mock lines a test triggers."""
    offered = getattr(space, "irq_factory", None)
    if callable(offered):
        return offered
    from .uio import UioSpace

    if isinstance(space, UioSpace):
        return uio_irq_factory(space)
    return MockInterruptController()


__all__ = ["Interrupt", "IrqFactory", "IrqTimeoutError", "MockInterrupt", "MockInterruptController",
           "UioInterrupt", "irq_factory_for", "uio_irq_factory"]
