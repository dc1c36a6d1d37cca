"""cocotbext masters as `SimBus`es: the compatible path (protocol-checked, one await per clock inside).

Each adapter takes a master the caller built (cocotbext-axi `AxiLiteMaster`, cocotbext-apb `ApbMaster`,
cocotbext-wishbone `WishboneMaster`, cocotbext-avalon `AvalonMMMaster`) and turns every access into one
of its transactions at the full address: `base` is the SimSpace address of the slave's address 0, and an
address outside [base, base + 2**address_width) is refused before anything reaches the bus. Error
responses raise `BusError`, as on the fast path. Every transaction is bounded by `timeout_ns` of
simulated time (as the HDL masters are): a slave that never answers, or a master that never hands the
transaction back, raises BusError ("no answer ...") naming address and width, and the bus is dead from
then on (the master may still hold the stalled transaction, so a later answer would be taken for another
access's): every later access raises at once. No access hangs.

An HDL clock and cocotbext-axi under Verilator: the channel sinks of cocotbext-axi (R, B) park on an
event when they see no VALID at an edge, and a monitor on VALID's rising edge wakes them. Verilator
reports value changes after it has evaluated the whole time step, so when the slave raises RVALID at a
clock edge, the sink wakes at that edge but after its `RisingEdge(clk)` has already fired: it re-arms
for the next edge. Under Verilator a callback sees the values after the edge's non-blocking assignments,
and at that next edge the HDL has already taken the beat (RREADY was high), so RVALID reads 0 and the
sink waits forever. With a cocotb `Clock`, or when some coroutine awaits every edge, `RisingEdge(clk)` is
still armed when the sink wakes and it samples the beat at the edge it rose on. `ClockKeeper` is that
coroutine, run by `AxiLiteMasterBus` only while one of its transactions is in flight (nothing per clock
otherwise); `tests/hwsim/cosim/cocotb_buses.py::cocotbext_axi4lite_hdl_clock_needs_the_keeper` shows
the stall without it.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

import cocotb
from cocotb.triggers import ReadOnly, RisingEdge, Timer

from mmiotk.errors import BusError, MmioValueError

from .buses import check_access, lanes, split_halves
from .hdl_buses import DEFAULT_TIMEOUT_NS

T = TypeVar("T")

_MASK = {1: 0xFF, 2: 0xFFFF, 4: 0xFFFF_FFFF, 8: 0xFFFF_FFFF_FFFF_FFFF}


class ExtBus:
    """Address translation, access splitting and counters shared by the adapters."""

    protocol = "bus"

    def __init__(self, width: int, address_width: int, base: int = 0, timeout_ns: int = DEFAULT_TIMEOUT_NS) -> None:
        if isinstance(timeout_ns, bool) or not isinstance(timeout_ns, int) or timeout_ns < 1:
            raise ValueError(f"{self.protocol}: timeout_ns must be a positive integer, not {timeout_ns!r}")
        self.width = width
        self.address_width = address_width
        self.base = base
        self.timeout_ns = timeout_ns
        self.dead: str | None = None   # why the bus gave up (a transaction went unanswered)
        self._watch: Any = None
        self._pending: Any = None       # the transaction in flight (a cocotb Task)
        self._expired: Any = None       # the one the watchdog cancelled
        self.transactions = 0
        self.error_responses = 0

    async def _bounded(self, work: Coroutine[Any, Any, T], op: str, addr: int, nbytes: int) -> T:
        """`work` (one transaction of the master) as a task the watchdog cancels after timeout_ns."""
        if self.dead is not None:
            work.close()
            raise BusError(self.protocol, op, addr, nbytes, self.dead)
        if self._watch is None:
            self._watch = cocotb.start_soon(self._watchdog())
        task = cocotb.start_soon(work)
        self._pending = task
        try:
            return await task
        except TimeoutError as exc:   # the master's own bound (AvalonMasterBus's timeout_cycles)
            self.dead = f"no answer ({exc}); the bus is marked dead"
            raise BusError(self.protocol, op, addr, nbytes, self.dead) from None
        except BaseException:
            if self._expired is task:  # the watchdog gave up on it
                raise BusError(self.protocol, op, addr, nbytes, str(self.dead)) from None
            task.cancel()              # the caller was cancelled: so is its transaction
            raise
        finally:
            self._pending = None

    async def _watchdog(self) -> None:
        """Wake every timeout_ns / 4 of simulated time (nothing per clock); cancel a transaction pending
        for timeout_ns and mark the bus dead. (Not cocotb's with_timeout or First: a caller's task
        cancelled inside those ends in "Task was cancelled, but continued running".)"""
        period = max(1, self.timeout_ns // 4)
        seen: Any = None
        quiet = 0
        try:
            while self.dead is None:
                await Timer(period, "ns")
                pending = self._pending
                if pending is not None and pending is seen:
                    quiet += 1
                    if quiet >= 4:
                        self.dead = (f"no answer within {self.timeout_ns} ns of simulated time; the bus is "
                                     "marked dead")
                        self._expired = pending
                        pending.cancel()
                else:
                    seen, quiet = pending, 0
        finally:
            self._watch = None   # cocotb cancels a test's tasks when it ends: the next access starts another

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
        data = await self._bounded(self._read_word(word, addr, nbytes), "read", addr, nbytes)
        return (data >> 8 * shift) & _MASK[nbytes]

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
        await self._bounded(self._write_word(word, (value & _MASK[nbytes]) << 8 * shift, strobes, addr, nbytes),
                            "write", addr, nbytes)

    async def read32(self, addr: int) -> int:
        return await self.read(addr, 4)

    async def write32(self, addr: int, data: int, strobes: int = 0xF) -> None:
        """A 32-bit write under byte strobes (contiguous), for benches that await the bus natively."""
        first = (strobes & -strobes).bit_length() - 1
        count = bin(strobes).count("1")
        if strobes <= 0 or strobes > 0xF or strobes != ((1 << count) - 1) << first or count == 3:
            raise MmioValueError(f"write strobes {strobes:#x} are not one naturally aligned access")
        await self.write(addr + first, count, (data >> 8 * first) & _MASK[count])


class ClockKeeper:
    """Keeps `RisingEdge(clock)` armed while a cocotbext transaction is in flight (see the module doc)."""

    def __init__(self, clock: Any) -> None:
        self._edge = RisingEdge(clock)
        self._task: Any = None
        self.edges = 0

    async def _keep(self) -> None:
        edge = self._edge
        while True:
            await edge
            self.edges += 1

    def __enter__(self) -> ClockKeeper:
        self._task = cocotb.start_soon(self._keep())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None


class AxiLiteMasterBus(ExtBus):
    """cocotbext-axi's AxiLiteMaster (the reference AXI4-Lite master). `keep_clock=False` turns the
    ClockKeeper off (then an HDL clock under Verilator stalls the first read)."""

    protocol = "AXI4-Lite"

    def __init__(self, master: Any, base: int = 0, *, keep_clock: bool = True,
                 timeout_ns: int = DEFAULT_TIMEOUT_NS) -> None:
        super().__init__(len(master.write_if.w_channel.bus.wdata) // 8, master.write_if.address_width, base,
                         timeout_ns)
        self.master = master
        self.keep_clock = keep_clock
        self._clock = master.write_if.clock

    async def _read_word(self, local: int, addr: int, nbytes: int) -> int:
        if self.keep_clock:
            with ClockKeeper(self._clock):
                resp = await self.master.read(local, self.width)
        else:
            resp = await self.master.read(local, self.width)
        if int(resp.resp) >= 2:
            raise self._fail("read", addr, nbytes, resp.resp.name)
        return int.from_bytes(resp.data, "little")

    async def _write_word(self, local: int, data: int, strobes: int, addr: int, nbytes: int) -> None:
        first = (strobes & -strobes).bit_length() - 1
        raw = data.to_bytes(self.width, "little")[first:first + nbytes]
        if self.keep_clock:
            with ClockKeeper(self._clock):
                resp = await self.master.write(local + first, raw)
        else:
            resp = await self.master.write(local + first, raw)
        if int(resp.resp) >= 2:
            raise self._fail("write", addr, nbytes, resp.resp.name)


class ApbMasterBus(ExtBus):
    """cocotbext-apb's ApbMaster. Its own PSLVERR check raises inside its background task (which then
    dies and leaves the caller waiting), so it is switched off here and PSLVERR is sampled when the
    master hands the transfer back, still in the ACCESS phase."""

    protocol = "APB"

    def __init__(self, master: Any, base: int = 0, *, timeout_ns: int = DEFAULT_TIMEOUT_NS) -> None:
        super().__init__(master.wbytes, master.address_width, base, timeout_ns)
        if not master.pslverr_present:
            raise ValueError("ApbMasterBus needs the slave's PSLVERR on the bus to report errors")
        self.master = master
        master.pslverr_present = False
        self._pslverr = master.bus.pslverr
        self._strobes = master.pstrb_present

    async def _read_word(self, local: int, addr: int, nbytes: int) -> int:
        data = await self.master.read(local)
        if int(self._pslverr.value):
            raise self._fail("read", addr, nbytes, "PSLVERR")
        return int.from_bytes(data, "little") if isinstance(data, (bytes, bytearray)) else int(data)

    async def _write_word(self, local: int, data: int, strobes: int, addr: int, nbytes: int) -> None:
        if not self._strobes and strobes != (1 << self.width) - 1:
            raise MmioValueError(f"APB3 write of {nbytes} bytes at {addr:#x}: no PSTRB, only whole words")
        await self.master.write(local, data, strb=strobes)
        if int(self._pslverr.value):
            raise self._fail("write", addr, nbytes, "PSLVERR")


class WishboneMasterBus(ExtBus):
    """cocotbext-wishbone's WishboneMaster: one single-operation cycle per access."""

    protocol = "Wishbone"
    _codes = {2: "ERR_O", 3: "RTY_O"}

    def __init__(self, master: Any, base: int = 0, *, timeout_ns: int = DEFAULT_TIMEOUT_NS) -> None:
        super().__init__(master._width // 8, len(master.bus.adr), base, timeout_ns)
        self.master = master

    async def _cycle(self, local: int, data: int | None, sel: int, op: str, addr: int, nbytes: int) -> int:
        from cocotbext.wishbone.driver import WBOp

        (res,) = await self.master.send_cycle([WBOp(adr=local, dat=data, sel=sel)])
        if res.ack in self._codes:
            raise self._fail(op, addr, nbytes, self._codes[res.ack])
        return int(res.datrd) if data is None else 0

    async def _read_word(self, local: int, addr: int, nbytes: int) -> int:
        return await self._cycle(local, None, (1 << self.width) - 1, "read", addr, nbytes)

    async def _write_word(self, local: int, data: int, strobes: int, addr: int, nbytes: int) -> None:
        await self._cycle(local, data, strobes, "write", addr, nbytes)


class AvalonMasterBus(ExtBus):
    """cocotbext-avalon's AvalonMMMasterBFM drives the request (its `_start_access`/`_end_access`); the
    handshake is sampled here. The BFM returns data but not `response`, does not wait for
    `writeresponsevalid`, and samples `waitrequest` and `readdatavalid` in its RisingEdge callbacks: under
    Verilator those see the edge's registers already updated, so a registered waitrequest that drops at an
    edge reads as "accepted" one edge early (the BFM then withdraws the request before the slave takes it,
    and the slave never answers), and an answer raised for one cycle is seen at the wrong edge or not at
    all. So each step here is sampled in the ReadOnly phase before the edge, as the slave sees it, the same
    on Icarus and Verilator: accepted at the first edge before which waitrequest was low, answered at the
    first edge before which readdatavalid (writeresponsevalid) was high, from the accepting cycle on, with
    `response` and `readdata` taken at that moment. `word_address=True` presents word addresses, as an
    agent without an interconnect in front of it sees them. The wait gives up after 2 * `timeout_cycles`
    cycles (and the bus's `timeout_ns` bounds it too)."""

    protocol = "Avalon-MM"
    _codes = {1: "RESERVED response", 2: "SLVERR (SLAVEERROR)", 3: "DECODEERROR"}

    def __init__(self, master: Any, base: int = 0, *, word_address: bool = False, timeout_cycles: int = 1000,
                 timeout_ns: int = DEFAULT_TIMEOUT_NS):
        width = master.bus.data_width // 8
        self.shift = (width.bit_length() - 1) if word_address else 0
        super().__init__(width, master.bus.address_width + self.shift, base, timeout_ns)
        self.master = master
        self.timeout_cycles = timeout_cycles

    async def _transfer(self, local: int, data: int, strobes: int | None, write: bool) -> tuple[int, int]:
        """One access; returns (response, readdata) as sampled before the edge that answered it."""
        bfm, bus = self.master, self.master.bus
        wait = bus.waitrequest
        valid = bus.writeresponsevalid if write else bus.readdatavalid
        await bfm._start_access(local >> self.shift, data, strobes, write=int(write), read=int(not write))
        accepted = False
        try:
            for _ in range(2 * self.timeout_cycles):
                await ReadOnly()
                taken = not accepted and (wait is None or not int(wait.value))
                # an answer counts from the accepting cycle on (a slave may answer in the request's own cycle)
                answered = (accepted or taken) and (valid is None or bool(int(valid.value)))
                if answered:
                    resp = 0 if bus.response is None else int(bus.response.value)
                    value = bus.readdata.value if bus.readdata is not None else None
                    rdata = int(value) if value is not None and value.is_resolvable else 0
                await RisingEdge(bfm.clock)
                if taken:
                    accepted = True
                    bfm._end_access()
                if answered:
                    return resp, rdata
        finally:
            if not accepted:
                bfm._end_access()
        what = "an answer" if accepted else "waitrequest low"
        raise TimeoutError(f"{2 * self.timeout_cycles} clock cycles without {what}")

    async def _read_word(self, local: int, addr: int, nbytes: int) -> int:
        resp, data = await self._transfer(local, 0, None, False)
        if self.master.bus.readdatavalid is not None and resp in self._codes:
            raise self._fail("read", addr, nbytes, self._codes[resp])
        return data

    async def _write_word(self, local: int, data: int, strobes: int, addr: int, nbytes: int) -> None:
        resp, _ = await self._transfer(local, data, strobes, True)
        if self.master.bus.writeresponsevalid is not None and resp in self._codes:
            raise self._fail("write", addr, nbytes, self._codes[resp])
