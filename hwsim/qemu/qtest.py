"""A client for QEMU's qtest line protocol over a connected stream socket.

The protocol (QEMU `system/qtest.c`; `softmmu/qtest.c` in 7.2) is one request line, one reply line:
`OK [value]`, `FAIL reason` or `ERR reason`. Values come back as `0x` + 16 hex digits whatever the access
width. QEMU also writes asynchronous `IRQ raise N` / `IRQ lower N` lines for intercepted interrupt inputs at
any time, including just before a reply: they are taken off the stream here and kept as per-line levels and
raise counts, so an interrupt that fires while a register access is in flight is never lost.

QEMU `g_assert`s (and dies) on malformed arguments, so every request is checked here before it is sent.
Every read of the socket has a deadline; a timeout, an interrupted exchange (Ctrl-C) or an EOF leaves the
stream out of step, so the client refuses further use after one, with the reason.
"""

from __future__ import annotations

import base64
import contextlib
import os
import select
import socket
import threading
import time
from collections.abc import Callable

from mmiotk.errors import MmioValueError

from .errors import QemuDiedError, QemuError, QemuTimeoutError

_READ = {1: b"readb", 2: b"readw", 4: b"readl", 8: b"readq"}
_WRITE = {1: b"writeb", 2: b"writew", 4: b"writel", 8: b"writeq"}
_MAX_ADDR = 1 << 64
_CHUNK = 1 << 20          # bytes per b64read/b64write line
_PUMP_SLICE = 0.02        # longest select() of an interrupt wait before it re-checks (no lock held)


class QtestClient:
    """Register and memory access through qtest. Thread-safe: one exchange at a time.

    `describe_death()` returns why the peer is gone (exit status, stderr tail) for error messages. `spin`
    (seconds) busy-polls the socket for each reply that long before sleeping in `recv` (see QemuOptions).
    """

    def __init__(self, sock: socket.socket, *, timeout: float = 10.0, spin: float = 0.0,
                 describe_death: Callable[[], str] | None = None) -> None:
        if timeout <= 0:
            raise MmioValueError(f"qtest timeout must be > 0 seconds, got {timeout!r}")
        if not 0 <= spin <= timeout:
            raise MmioValueError(f"qtest spin must be 0..{timeout} seconds, got {spin!r}")
        self._sock = sock
        self.timeout = timeout
        self.spin = spin
        self._describe_death = describe_death or (lambda: "")
        self._buf = bytearray()
        self._lock = threading.Lock()
        self._broken: str | None = None
        self.irq_levels: dict[int, int] = {}
        self.irq_raises: dict[int, int] = {}

    # --- plumbing -----------------------------------------------------------------------------------
    def _fail_if_broken(self) -> None:
        if self._broken is not None:
            raise QemuError(f"qtest connection is unusable: {self._broken}")

    def _died(self, what: str) -> QemuDiedError:
        self._broken = f"QEMU went away during {what}"
        detail = self._describe_death()
        return QemuDiedError(f"QEMU went away during {what}" + (f": {detail}" if detail else ""))

    def _read_line(self, deadline: float, what: str) -> bytes | None:
        """The next line without its newline, or None when `deadline` passes first."""
        spin_until = time.monotonic() + self.spin if self.spin else 0.0
        while True:
            nl = self._buf.find(b"\n")
            if nl >= 0:
                line = bytes(self._buf[:nl])
                del self._buf[:nl + 1]
                return line
            if spin_until and self._spin_recv(spin_until, what):
                continue
            spin_until = 0.0
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self._sock.settimeout(remaining)
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError:
                return None
            except OSError as exc:
                raise self._died(f"{what} ({exc})") from None
            if not chunk:
                raise self._died(what)
            self._buf += chunk

    def _spin_recv(self, until: float, what: str) -> bool:
        """Busy-poll the socket until something arrives (True, appended) or `until` passes (False)."""
        recv, clock, relax, spins = self._sock.recv, time.monotonic, os.sched_yield, 0
        while clock() < until:
            try:
                chunk = recv(65536, socket.MSG_DONTWAIT)
            except BlockingIOError:
                spins += 1
                if not spins & 7:
                    relax()  # QEMU's thread may be waiting for this CPU (see VirtioDevice._poll)
                continue
            except OSError as exc:
                raise self._died(f"{what} ({exc})") from None
            if not chunk:
                raise self._died(what)
            self._buf += chunk
            return True
        return False

    def _take_async(self, line: bytes) -> bool:
        """Record an `IRQ raise/lower N` line; False when `line` is not one."""
        if not line.startswith(b"IRQ "):
            return False
        parts = line.split()
        if len(parts) != 3 or parts[1] not in (b"raise", b"lower") or not parts[2].isdigit():
            self._broken = f"malformed asynchronous line {line!r}"
            raise QemuError(f"qtest: {self._broken}")
        n = int(parts[2])
        if parts[1] == b"raise":
            self.irq_levels[n] = 1
            self.irq_raises[n] = self.irq_raises.get(n, 0) + 1
        else:
            self.irq_levels[n] = 0
        return True

    def _exchange(self, request: bytes) -> bytes:
        """Send one request line; return the reply after `OK` (stripped). FAIL/ERR raise QemuError."""
        with self._lock:
            self._fail_if_broken()
            what = repr(request.decode(errors="replace")[:80])
            try:
                try:
                    self._sock.sendall(request + b"\n")
                except OSError as exc:
                    raise self._died(f"{what} ({exc})") from None
                deadline = time.monotonic() + self.timeout
                while True:
                    line = self._read_line(deadline, what)
                    if line is None:
                        self._broken = f"no reply to {what} within {self.timeout} s"
                        detail = self._describe_death()
                        raise QemuTimeoutError(f"qtest: {self._broken}" + (f"; {detail}" if detail else ""))
                    if not self._take_async(line):
                        break
            except BaseException:
                if self._broken is None:
                    self._broken = f"exchange {what} was interrupted"
                raise
        if line == b"OK" or line.startswith(b"OK "):
            return line[3:]
        raise QemuError(f"qtest {what} failed: {line.decode(errors='replace')}")

    # --- requests -----------------------------------------------------------------------------------
    @staticmethod
    def _check_addr(addr: int, n: int = 1) -> None:
        if not isinstance(addr, int) or not 0 <= addr or addr + n > _MAX_ADDR:
            raise MmioValueError(f"qtest address {addr!r} (+{n}) is outside the 64-bit address space")

    def command(self, line: str) -> str:
        """Send a raw request such as `endianness`; returns the text after `OK`."""
        if not line or "\n" in line or not line.isprintable():
            raise MmioValueError(f"qtest request must be one printable line, got {line!r}")
        return self._exchange(line.encode()).decode()

    def read(self, addr: int, width: int) -> int:
        """One `readb/w/l/q`: exactly one access of `width` bytes."""
        op = _READ.get(width)
        if op is None:
            raise MmioValueError(f"qtest read width must be 1, 2, 4 or 8 bytes, got {width!r}")
        self._check_addr(addr, width)
        reply = self._exchange(b"%s 0x%x" % (op, addr))
        try:
            return int(reply, 16)
        except ValueError:
            raise QemuError(f"qtest read at {addr:#x}: unexpected reply {reply!r}") from None

    def write(self, addr: int, width: int, value: int) -> None:
        """One `writeb/w/l/q`: exactly one access of `width` bytes."""
        op = _WRITE.get(width)
        if op is None:
            raise MmioValueError(f"qtest write width must be 1, 2, 4 or 8 bytes, got {width!r}")
        self._check_addr(addr, width)
        if not isinstance(value, int) or not 0 <= value < 1 << (8 * width):
            raise MmioValueError(f"qtest write at {addr:#x}: value {value!r} does not fit in {8 * width} bits")
        self._exchange(b"%s 0x%x 0x%x" % (op, addr, value))

    def read_checked(self, addr: int, width: int) -> int:
        """`read` for a caller that has checked width and address already (a mapped window's accessors)."""
        reply = self._exchange(b"%s 0x%x" % (_READ[width], addr))
        try:
            return int(reply, 16)
        except ValueError:
            raise QemuError(f"qtest read at {addr:#x}: unexpected reply {reply!r}") from None

    def write_checked(self, addr: int, width: int, value: int) -> None:
        """`write` for a caller that has checked width, address and value already (a mapped window's
        accessors): the doorbell path, without a second round of the same checks."""
        self._exchange(b"%s 0x%x 0x%x" % (_WRITE[width], addr, value))

    def read_bytes(self, addr: int, n: int) -> bytes:
        """`n` bytes through QEMU's view of memory (`b64read`), in 1 MiB lines."""
        if not isinstance(n, int) or n < 0:
            raise MmioValueError(f"qtest read_bytes: length must be an int >= 0, got {n!r}")
        self._check_addr(addr, max(n, 1))
        out = bytearray()
        for start in range(0, n, _CHUNK):
            size = min(_CHUNK, n - start)
            reply = self._exchange(b"b64read 0x%x 0x%x" % (addr + start, size))
            data = base64.b64decode(reply)
            if len(data) != size:
                raise QemuError(f"qtest b64read at {addr + start:#x}: got {len(data)} bytes, asked {size}")
            out += data
        return bytes(out)

    def read_hex(self, addr: int, n: int) -> bytes:
        """`n` bytes through the hex `read` request (the other encoding QEMU offers)."""
        if not isinstance(n, int) or not 0 < n <= _CHUNK:
            raise MmioValueError(f"qtest read_hex: length must be 1..{_CHUNK}, got {n!r}")
        self._check_addr(addr, n)
        reply = self._exchange(b"read 0x%x 0x%x" % (addr, n))
        if not reply.startswith(b"0x") or len(reply) != 2 + 2 * n:
            raise QemuError(f"qtest read at {addr:#x}: unexpected reply {reply[:40]!r}")
        return bytes.fromhex(reply[2:].decode())

    def write_bytes(self, addr: int, data: bytes | bytearray | memoryview) -> None:
        """Write `data` through QEMU's view of memory (`b64write`), in 1 MiB lines."""
        view = memoryview(data).cast("B")
        self._check_addr(addr, max(len(view), 1))
        for start in range(0, len(view), _CHUNK):
            part = view[start:start + _CHUNK]
            self._exchange(b"b64write 0x%x 0x%x %s" % (addr + start, len(part), base64.b64encode(part)))

    # --- interrupts ---------------------------------------------------------------------------------
    def intercept_irqs(self, qom_path: str) -> None:
        """Route the gpio inputs of the device at `qom_path` (the interrupt controller) to this stream."""
        if not qom_path.startswith("/") or any(c.isspace() for c in qom_path):
            raise MmioValueError(f"qtest irq_intercept_in needs an absolute QOM path, got {qom_path!r}")
        self.command(f"irq_intercept_in {qom_path}")

    def wait_irq(self, line: int, deadline: float, ready: Callable[[], bool]) -> bool:
        """Read asynchronous lines until `ready()` holds or `deadline` (monotonic) passes.

        The socket is watched with select() WITHOUT the lock, so other threads' register accesses (the
        doorbell that causes the interrupt, say) never wait behind a waiter; the lock is taken only to parse
        what has already arrived. Any thread that reads an `IRQ` line updates the shared levels.
        """
        what = f"wait for IRQ {line}"
        while True:
            with self._lock:
                self._fail_if_broken()
                self._pump_arrived(what)
                if ready():
                    return True
            now = time.monotonic()
            if now >= deadline:
                return False
            try:
                select.select([self._sock], [], [], min(deadline - now, _PUMP_SLICE))
            except (OSError, ValueError) as exc:
                raise self._died(f"{what} ({exc})") from None

    def _pump_arrived(self, what: str) -> None:
        """Parse every asynchronous line that has arrived, without blocking. Caller holds the lock and no
        request is outstanding, so every complete line must be an `IRQ` line."""
        while True:
            nl = self._buf.find(b"\n")
            if nl < 0:
                readable, _, _ = select.select([self._sock], [], [], 0)
                if not readable:
                    return
                self._sock.settimeout(self.timeout)
                try:
                    chunk = self._sock.recv(65536)
                except OSError as exc:
                    raise self._died(f"{what} ({exc})") from None
                if not chunk:
                    raise self._died(what)
                self._buf += chunk
                continue
            got = bytes(self._buf[:nl])
            del self._buf[:nl + 1]
            if not self._take_async(got):
                self._broken = f"unexpected line {got!r} while no request was outstanding"
                raise QemuError(f"qtest: {self._broken}")

    def close(self) -> None:
        """Close the socket; later requests raise QemuError. Safe to call twice."""
        if self._broken is None:
            self._broken = "the QEMU target was closed"
        with contextlib.suppress(OSError):
            self._sock.close()
