"""Bus models: how a `SimSpace` turns one access into one transaction on the RTL's bus.

A bus model implements two coroutines, `read32(addr)` and `write32(addr, data, strobes)`.
`HdlAxiLiteBus` drives an HDL transactor (one Python await per whole transaction); `AxiLiteMasterBus`
wraps cocotbext-axi's AxiLiteMaster (one await per clock inside the model).
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, Protocol

from cocotb.triggers import ReadOnly, RisingEdge

from mmiotk.errors import MmioError

_NO_DELAY = 3  # cocotb's GPI action for an immediate deposit (cocotb.handle.Immediate)


class BusError(MmioError):
    """The simulated bus answered SLVERR or DECERR."""


class SimBus(Protocol):
    """One 32-bit bus transaction per call."""

    def read32(self, addr: int) -> Coroutine[Any, Any, int]: ...

    def write32(self, addr: int, data: int, strobes: int) -> Coroutine[Any, Any, None]: ...


class HdlAxiLiteBus:
    """The HDL AXI4-Lite transactor of tb_harness: write the command, flip a bit, await the answer.

    Uses raw GPI handles with immediate writes: three or four signal accesses and one await per
    transaction (a second one only for a slave that answers later than the cycle after it accepts),
    nothing per clock.
    """

    def __init__(self, top: Any) -> None:
        self._addr = top.cmd_addr._handle
        self._wdata = top.cmd_wdata._handle
        self._wstrb = top.cmd_wstrb._handle
        self._tgl_h = top.cmd_tgl._handle
        self._rdata = top.rsp_rdata._handle
        self._resp = top.rsp_resp._handle
        self._valid = top.rsp_valid
        self._done = top.rsp_tgl.value_change
        self._tgl = int(top.cmd_tgl.value)
        self.transactions = 0

    async def _late_response(self) -> None:
        await RisingEdge(self._valid)
        await ReadOnly()  # let every register of that edge settle before reading the response

    async def read32(self, addr: int) -> int:
        self._addr.set_signal_val_int(_NO_DELAY, addr & 0xFFFF_FFFF)
        self._wstrb.set_signal_val_int(_NO_DELAY, 0)
        self._tgl ^= 1
        self._tgl_h.set_signal_val_int(_NO_DELAY, self._tgl)
        self.transactions += 1
        await self._done
        if self._valid._handle.get_signal_val_binstr() != "1":
            await self._late_response()
        if self._resp.get_signal_val_long():
            raise BusError(f"AXI4-Lite read at {addr:#x}: response {self._resp.get_signal_val_long():#x}")
        return self._rdata.get_signal_val_long() & 0xFFFF_FFFF

    async def write32(self, addr: int, data: int, strobes: int = 0xF) -> None:
        if not 0 < strobes <= 0xF:
            raise ValueError(f"write strobes {strobes:#x} must be 1..0xf")
        self._addr.set_signal_val_int(_NO_DELAY, addr & 0xFFFF_FFFF)
        self._wdata.set_signal_val_int(_NO_DELAY, data & 0xFFFF_FFFF)
        self._wstrb.set_signal_val_int(_NO_DELAY, strobes)
        self._tgl ^= 1
        self._tgl_h.set_signal_val_int(_NO_DELAY, self._tgl)
        self.transactions += 1
        await self._done
        if self._valid._handle.get_signal_val_binstr() != "1":
            await self._late_response()
        if self._resp.get_signal_val_long():
            raise BusError(f"AXI4-Lite write at {addr:#x}: response {self._resp.get_signal_val_long():#x}")


class AxiLiteMasterBus:
    """cocotbext-axi's AxiLiteMaster as a SimBus (the reference bus model; slower, protocol-checked)."""

    def __init__(self, master: Any, offset_mask: int = 0xFFF) -> None:
        self.master = master
        self._mask = offset_mask
        self.transactions = 0

    async def read32(self, addr: int) -> int:
        self.transactions += 1
        data = await self.master.read_dword(addr & self._mask & ~3)
        return int(data)

    async def write32(self, addr: int, data: int, strobes: int = 0xF) -> None:
        self.transactions += 1
        if strobes == 0xF:
            await self.master.write_dword(addr & self._mask & ~3, data)
            return
        lanes = [i for i in range(4) if strobes >> i & 1]
        first, last = lanes[0], lanes[-1]
        if lanes != list(range(first, last + 1)):
            raise ValueError(f"strobes {strobes:#x} are not contiguous")
        raw = (data & 0xFFFF_FFFF).to_bytes(4, "little")[first:last + 1]
        await self.master.write((addr & self._mask & ~3) + first, raw)
