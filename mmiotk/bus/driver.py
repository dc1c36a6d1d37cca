"""Driver: what it binds to, and the lifecycle a bus drives (bind, unbind, release), after Fuchsia's DDK.

- `bind(device)`: take the capabilities (`device.mmio(i)`, `device.irq(i)`, `device.dma_pool()`), set up.
  Raising refuses the device; the bus revokes whatever was handed out and tries the next driver.
- `unbind()`: stop taking new work; let in-flight work finish (or fail with DeviceGoneError). The
  capabilities are still live. The default waits up to `unbind_timeout` for `operation()`s to drain.
- The bus then revokes every region and interrupt it handed out (late work fails with RevokedError), waits
  for stragglers, and calls
- `release()`: free what the driver holds (DMA buffers may still be freed here). Then the bus closes the
  device's DMA pool, freeing whatever was left.

`operation()` is the in-flight bookkeeping: wrap each request in it and new requests after unbind fail
with DeviceGoneError, and a request cut off by revocation fails with DeviceGoneError instead of a bare
RevokedError.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, ClassVar

from ..errors import RevokedError
from .errors import DeviceGoneError

if TYPE_CHECKING:
    from .device import Device

ANY_ID = None
"""A `device_id` of None in `Driver.ids` matches every device of that vendor."""


class Driver:
    """Subclass, declare `compatible` and/or `ids`, implement `bind` (and `unbind`/`release` as needed)."""

    compatible: ClassVar[tuple[str, ...]] = ()
    ids: ClassVar[tuple[tuple[int, int | None], ...]] = ()
    unbind_timeout: float = 1.0  # seconds unbind waits for in-flight work, before and after revocation

    def __init__(self) -> None:
        self.device: Device | None = None
        self._cond = threading.Condition()
        self._inflight = 0
        self._gone = False

    @property
    def name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        device = getattr(self, "device", None)
        where = device.name if device is not None else "unbound"
        return f"<{self.name} {where}{' gone' if getattr(self, '_gone', False) else ''}>"

    @classmethod
    def match(cls, device: Device) -> int | None:
        """How well this driver fits `device` (lower is better) or None.

        Compatible strings rank by their position in the device's list (most specific first, as in
        devicetree); an exact (vendor, device) id ranks 0, a vendor-wide one 1.
        """
        for rank, compatible in enumerate(device.compatible):
            if compatible in cls.compatible:
                return rank
        if device.vendor_id is not None:
            for vendor, dev in cls.ids:
                if vendor == device.vendor_id and dev == device.device_id:
                    return 0
            for vendor, dev in cls.ids:
                if vendor == device.vendor_id and dev is ANY_ID:
                    return 1
        return None

    # --- lifecycle ----------------------------------------------------------------------------------
    def bind(self, device: Device) -> None:
        raise NotImplementedError(f"{self.name} must implement bind(device)")

    def unbind(self) -> None:
        """Stop new work and wait (bounded) for in-flight work; override to also fail queued work."""
        self.quiesce(self.unbind_timeout)

    def release(self) -> None:
        """Free what the driver holds; every capability is revoked by now."""

    # --- in-flight bookkeeping ----------------------------------------------------------------------
    @property
    def gone(self) -> bool:
        return self._gone

    @property
    def inflight(self) -> int:
        return self._inflight

    def check_alive(self, what: str = "request") -> None:
        if self._gone:
            where = self.device.name if self.device is not None else "?"
            raise DeviceGoneError(f"{self.name}: {what} refused: device {where!r} is gone (unbound)")

    @contextmanager
    def operation(self, what: str = "request") -> Iterator[None]:
        """Count one request in flight; refuse it after unbind; turn revocation into DeviceGoneError."""
        with self._cond:
            self.check_alive(what)
            self._inflight += 1
        try:
            yield
        except DeviceGoneError:
            raise
        except RevokedError as exc:
            where = self.device.name if self.device is not None else "?"
            raise DeviceGoneError(f"{self.name}: {what} failed: device {where!r} went away mid-request "
                                  f"({exc})") from exc
        finally:
            with self._cond:
                self._inflight -= 1
                self._cond.notify_all()

    def quiesce(self, timeout: float) -> bool:
        """Refuse new work; wait up to `timeout` s for in-flight work. True when none is left."""
        with self._cond:
            self._gone = True
            return self._cond.wait_for(lambda: self._inflight == 0, timeout)
