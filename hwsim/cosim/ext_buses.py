"""cocotbext masters as `SimBus`es: the compatible path (protocol-checked, one await per clock inside).

Each adapter takes a master the caller built (cocotbext-axi `AxiLiteMaster`, cocotbext-apb `ApbMaster`,
cocotbext-wishbone `WishboneMaster`, cocotbext-avalon `AvalonMMMaster`) and turns every access into one
of its transactions at the full address: `base` is the SimSpace address of the slave's address 0, and an
address outside [base, base + 2**address_width) is refused before anything reaches the bus. Error
responses raise `BusError`, as on the fast path.

An HDL clock and cocotbext: cocotbext's masters run background coroutines that await clock edges
(`RisingEdge(clk)`), started with `cocotb.start_soon`. `ClockKeeper` documents and works around the way
they can stall; see its docstring.
"""

from __future__ import annotations

from typing import Any

from mmiotk.errors import BusError, MmioValueError

from .buses import check_access, lanes, split_halves

_MASK = {1: 0xFF, 2: 0xFFFF, 4: 0xFFFF_FFFF, 8: 0xFFFF_FFFF_FFFF_FFFF}


class ExtBus:
    """Address translation, access splitting and counters shared by the adapters."""

    protocol = "bus"

    def __init__(self, width: int, address_width: int, base: int = 0) -> None:
        self.width = width
        self.address_width = address_width
        self.base = base
        self.transactions = 0
        self.error_responses = 0

    def _local(self, addr: int, nbytes: int) -> int:
        check_access(self.protocol, addr, nbytes)
        local = addr - self.base
        if local < 0 or local + nbytes > 1 << self.address_width:
            raise MmioValueError(f"{self.protocol}: address {addr:#x} is outside the master's "
                                 f"{self.address_width}-bit window at {self.base:#x}")
        return local

    def _fail(self, op: str, addr: int, nbytes: int, response: str) -> BusError:
        self.error_responses += 1
        return BusError(self.protocol, op, addr, nbytes, response)

    async def _read_word(self, local: int, addr: int, nbytes: int) -> int:
        raise NotImplementedError

    async def _write_word(self, local: int, data: int, strobes: int, addr: int, nbytes: int) -> None:
        raise NotImplementedError

    async def read(self, addr: int, nbytes: int = 4) -> int:
        if nbytes > self.width:
            check_access(self.protocol, addr, nbytes)
            low = await self.read(addr, 4)
            return low | await self.read(addr + 4, 4) << 32
        local = self._local(addr, nbytes)
        word, shift, _ = lanes(local, nbytes, self.width)
        self.transactions += 1
        return (await self._read_word(word, addr, nbytes) >> 8 * shift) & _MASK[nbytes]

    async def write(self, addr: int, nbytes: int, value: int) -> None:
        if nbytes > self.width:
            check_access(self.protocol, addr, nbytes)
            low, high = split_halves(value)
            await self.write(addr, 4, low)
            await self.write(addr + 4, 4, high)
            return
        local = self._local(addr, nbytes)
        word, shift, strobes = lanes(local, nbytes, self.width)
        self.transactions += 1
        await self._write_word(word, (value & _MASK[nbytes]) << 8 * shift, strobes, addr, nbytes)

    async def read32(self, addr: int) -> int:
        return await self.read(addr, 4)

    async def write32(self, addr: int, data: int, strobes: int = 0xF) -> None:
        """A 32-bit write under byte strobes (contiguous), for benches that await the bus natively."""
        first = (strobes & -strobes).bit_length() - 1
        count = bin(strobes).count("1")
        if strobes <= 0 or strobes > 0xF or strobes != ((1 << count) - 1) << first or count == 3:
            raise MmioValueError(f"write strobes {strobes:#x} are not one naturally aligned access")
        await self.write(addr + first, count, (data >> 8 * first) & _MASK[count])


class AxiLiteMasterBus(ExtBus):
    """cocotbext-axi's AxiLiteMaster (the reference AXI4-Lite master)."""

    protocol = "AXI4-Lite"

    def __init__(self, master: Any, base: int = 0) -> None:
        super().__init__(len(master.write_if.w_channel.bus.wdata) // 8, master.write_if.address_width, base)
        self.master = master

    async def _read_word(self, local: int, addr: int, nbytes: int) -> int:
        resp = await self.master.read(local, self.width)
        if int(resp.resp) >= 2:
            raise self._fail("read", addr, nbytes, resp.resp.name)
        return int.from_bytes(resp.data, "little")

    async def _write_word(self, local: int, data: int, strobes: int, addr: int, nbytes: int) -> None:
        first = (strobes & -strobes).bit_length() - 1
        raw = data.to_bytes(self.width, "little")[first:first + nbytes]
        resp = await self.master.write(local + first, raw)
        if int(resp.resp) >= 2:
            raise self._fail("write", addr, nbytes, resp.resp.name)
