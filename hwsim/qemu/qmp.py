"""A minimal QMP (QEMU Machine Protocol) client: JSON lines over a connected stream socket.

Used to find the interrupt controller's QOM path (`qom-list`), which qtest's `irq_intercept_in` needs, and
left open for tests that want to poke QEMU (`block_resize`, `query-block`). Asynchronous events are
skipped. Every read has a deadline.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Callable
from typing import Any

from .errors import QemuDiedError, QemuError, QemuTimeoutError


class QmpClient:
    """Send `execute` requests and return their `return` values; errors raise QemuError."""

    def __init__(self, sock: socket.socket, *, timeout: float = 10.0,
                 describe_death: Callable[[], str] | None = None) -> None:
        self._sock = sock
        self.timeout = timeout
        self._describe_death = describe_death or (lambda: "")
        self._buf = bytearray()
        self._closed = False
        greeting = self._read_message(time.monotonic() + timeout, "the QMP greeting")
        if "QMP" not in greeting:
            raise QemuError(f"QMP: expected a greeting, got {greeting!r}")
        self.version = greeting["QMP"].get("version", {}).get("qemu", {})
        self.execute("qmp_capabilities")

    def _read_message(self, deadline: float, what: str) -> dict[str, Any]:
        while True:
            nl = self._buf.find(b"\n")
            if nl >= 0:
                raw = bytes(self._buf[:nl]).strip()
                del self._buf[:nl + 1]
                if not raw:
                    continue
                try:
                    message = json.loads(raw)
                except ValueError:
                    raise QemuError(f"QMP: undecodable line {raw[:120]!r} while waiting for {what}") from None
                if not isinstance(message, dict):
                    raise QemuError(f"QMP: unexpected message {message!r} while waiting for {what}")
                return message
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise QemuTimeoutError(f"QMP: no answer to {what} within {self.timeout} s")
            self._sock.settimeout(remaining)
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError:
                continue
            except OSError as exc:
                chunk = b""
                what = f"{what} ({exc})"
            if not chunk:
                detail = self._describe_death()
                raise QemuDiedError(f"QEMU closed QMP while waiting for {what}" + (f": {detail}" if detail else ""))
            self._buf += chunk

    def execute(self, command: str, arguments: dict[str, Any] | None = None) -> Any:
        """Run one QMP command; its `return` value, or QemuError naming the command and QEMU's reason."""
        if self._closed:
            raise QemuError(f"QMP {command!r}: the QEMU target was closed")
        request: dict[str, Any] = {"execute": command}
        if arguments:
            request["arguments"] = arguments
        try:
            self._sock.sendall(json.dumps(request).encode() + b"\n")
        except OSError as exc:
            detail = self._describe_death()
            raise QemuDiedError(f"QMP {command!r}: {exc}" + (f": {detail}" if detail else "")) from None
        deadline = time.monotonic() + self.timeout
        while True:
            message = self._read_message(deadline, f"QMP {command!r}")
            if "return" in message:
                return message["return"]
            if "error" in message:
                error = message["error"]
                raise QemuError(f"QMP {command!r} failed: {error.get('class')}: {error.get('desc')}")
            # an asynchronous event: skip it

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._sock.close()
