"""Python halves of the HDL bus masters in hdl/: one await per whole bus transaction.

Each master (hwsim_axil_master, hwsim_apb_master, hwsim_wb_master, hwsim_avmm_master) holds its own
command port: write the address, data and strobes, flip `cmd_tgl`; the HDL runs the whole transaction
with its clock (wait states, late answers) and flips `rsp_tgl` 1 ps after the clock edge at which the
answer is complete. Python waits for that single change, in the ordinary (writable) phase of the time step,
and reads the response from the master's registers. Signals are written with immediate GPI deposits,
nothing runs per clock. Pass the master instance: `HdlAxiLiteBus(dut.u_master)`. A bridged driver's
access (`read_bridged`/`write_bridged`) parks the driver's greenlet on the simulator's callback for
rsp_tgl, which resumes it directly (bridge.py); `read`/`write` are the same transaction as coroutines.

A slave that never answers (a hung interconnect, a stopped clock, a port handed to another master) would
leave that await pending for ever. A watchdog task, started with the first transaction of each cocotb test,
wakes every `timeout_ns / 4` of simulated time: a transaction still unanswered after `timeout_ns` raises
BusError ("no answer ...") and the bus is dead from then on (every later access raises at once), so a
driver sees a clear error within a bound, never a hang. The hot path pays two attribute tests for it.
"""

from __future__ import annotations

from typing import Any, ClassVar

import cocotb
from cocotb import simulator
from cocotb.triggers import Timer
from greenlet import getcurrent

from mmiotk.errors import BusError, MmioValueError

from .bridge import CAN_PARK, PARKED, DriverGreenlet, bridge_await, current_driver
from .buses import check_access, split_halves

_NO_DELAY = 3  # cocotb's GPI action for an immediate deposit (cocotb.handle.Immediate)
_VALUE_CHANGE = simulator.VALUE_CHANGE
_MASK = {1: 0xFF, 2: 0xFFFF, 4: 0xFFFF_FFFF, 8: 0xFFFF_FFFF_FFFF_FFFF}
DEFAULT_TIMEOUT_NS = 1_000_000  # 1 ms of simulated time: 100,000 clocks at 100 MHz, far above any wait state


class HdlBus:
    """A master of hdl/ as a `SimBus`. Subclasses name the protocol and its error responses."""

    protocol: str = "bus"
    errors: ClassVar[dict[int, str]] = {}

    def __init__(self, master: Any, *, timeout_ns: int = DEFAULT_TIMEOUT_NS, park: bool = True) -> None:
        if isinstance(timeout_ns, bool) or not isinstance(timeout_ns, int) or timeout_ns < 4:
            raise ValueError(f"{master._path}: timeout_ns must be an integer of at least 4 ns, not {timeout_ns!r}")
        self.master = master
        self.timeout_ns = timeout_ns
        self.dead: str | None = None  # why the bus gave up (a transaction went unanswered)
        self._watch: Any = None
        self.parks = park and CAN_PARK   # a bridged access parks on the completion callback (bridge.py)
        self._addr = master.cmd_addr._handle
        self._addr_hi = master.cmd_addr_hi._handle
        self._wdata = master.cmd_wdata._handle
        self._wdata_hi = master.cmd_wdata_hi._handle
        self._wstrb = master.cmd_wstrb._handle
        self._tgl_h = master.cmd_tgl._handle
        self._rsp_tgl_h = master.rsp_tgl._handle
        self._rdata = master.rsp_rdata._handle
        self._rdata_hi = master.rsp_rdata_hi._handle
        self._resp = master.rsp_resp._handle
        self._done = master.rsp_tgl.value_change
        # how a parked access asks for the callback at rsp_tgl's next change (the transaction's end): the
        # simulator's own function, called with (handle, resume, VALUE_CHANGE), so no Python frame of ours
        self._register = simulator.register_value_change_callback
        self._tgl = int(master.cmd_tgl.value)
        self._hi = int(master.cmd_addr_hi.value)
        self._lo = -1     # cmd_addr and cmd_wstrb as last deposited by the bridged accesses (-1: unknown)
        self._strb = -1
        self.width = len(master.cmd_wstrb)
        if self.width not in (4, 8):
            raise ValueError(f"{master._path}: a {self.width * 8}-bit data bus (this runs 32 or 64)")
        self.transactions = 0
        self.error_responses = 0

    async def transact(self, addr: int, wdata: int, strobes: int) -> int:
        """One bus transaction on the word at `addr` (strobes 0: read). Returns the response code and
        leaves the read data in the master (see `rdata`)."""
        if self._watch is None or self.dead:
            self._guard("write" if strobes else "read", addr, self.width)
        hi = addr >> 32
        if hi != self._hi:
            self._addr_hi.set_signal_val_int(_NO_DELAY, hi)
            self._hi = hi
        self._lo = addr & 0xFFFF_FFFF
        self._addr.set_signal_val_int(_NO_DELAY, self._lo)
        if strobes:
            self._wdata.set_signal_val_int(_NO_DELAY, wdata & 0xFFFF_FFFF)
            if self.width == 8:
                self._wdata_hi.set_signal_val_int(_NO_DELAY, (wdata >> 32) & 0xFFFF_FFFF)
        self._strb = strobes
        self._wstrb.set_signal_val_int(_NO_DELAY, strobes)
        self._tgl ^= 1
        self._tgl_h.set_signal_val_int(_NO_DELAY, self._tgl)
        self.transactions += 1
        await self._done
        if self.dead:
            raise self._no_answer("write" if strobes else "read", addr, self.width)
        return self._resp.get_signal_val_long()

    def rdata(self) -> int:
        low = self._rdata.get_signal_val_long() & 0xFFFF_FFFF
        if self.width == 8:
            return low | (self._rdata_hi.get_signal_val_long() & 0xFFFF_FFFF) << 32
        return low

    def _fail(self, op: str, addr: int, nbytes: int, resp: int) -> BusError:
        self.error_responses += 1
        return BusError(self.protocol, op, addr, nbytes, self.errors[resp])

    async def read(self, addr: int, nbytes: int = 4) -> int:
        # The hot path of every simulated register read: kept in one coroutine, no helper calls.
        width = self.width
        if nbytes > width or addr & (nbytes - 1) or nbytes not in _MASK:
            return await self._read_split(addr, nbytes)
        if self._watch is None or self.dead:
            self._guard("read", addr, nbytes)
        shift = addr & (width - 1)
        word = addr - shift
        if word >> 32 != self._hi:
            self._hi = word >> 32
            self._addr_hi.set_signal_val_int(_NO_DELAY, self._hi)
        self._lo = word & 0xFFFF_FFFF
        self._addr.set_signal_val_int(_NO_DELAY, self._lo)
        self._strb = 0
        self._wstrb.set_signal_val_int(_NO_DELAY, 0)
        self._tgl ^= 1
        self._tgl_h.set_signal_val_int(_NO_DELAY, self._tgl)
        self.transactions += 1
        await self._done
        if self.dead:
            raise self._no_answer("read", addr, nbytes)
        resp = self._resp.get_signal_val_long()
        if resp and resp in self.errors:
            raise self._fail("read", addr, nbytes, resp)
        data = self._rdata.get_signal_val_long() & 0xFFFF_FFFF
        if width == 8:
            data |= (self._rdata_hi.get_signal_val_long() & 0xFFFF_FFFF) << 32
        return (data >> 8 * shift) & _MASK[nbytes]

    async def write(self, addr: int, nbytes: int, value: int) -> None:
        width = self.width
        if nbytes > width or addr & (nbytes - 1) or nbytes not in _MASK:
            await self._write_split(addr, nbytes, value)
            return
        if self._watch is None or self.dead:
            self._guard("write", addr, nbytes)
        shift = addr & (width - 1)
        word = addr - shift
        if word >> 32 != self._hi:
            self._hi = word >> 32
            self._addr_hi.set_signal_val_int(_NO_DELAY, self._hi)
        data = (value & _MASK[nbytes]) << 8 * shift
        self._lo = word & 0xFFFF_FFFF
        self._addr.set_signal_val_int(_NO_DELAY, self._lo)
        self._wdata.set_signal_val_int(_NO_DELAY, data & 0xFFFF_FFFF)
        if width == 8:
            self._wdata_hi.set_signal_val_int(_NO_DELAY, data >> 32)
        self._strb = ((1 << nbytes) - 1) << shift
        self._wstrb.set_signal_val_int(_NO_DELAY, self._strb)
        self._tgl ^= 1
        self._tgl_h.set_signal_val_int(_NO_DELAY, self._tgl)
        self.transactions += 1
        await self._done
        if self.dead:
            raise self._no_answer("write", addr, nbytes)
        resp = self._resp.get_signal_val_long()
        if resp and resp in self.errors:
            raise self._fail("write", addr, nbytes, resp)

    # The same two accesses for a driver under the bridge (SimSpace calls these when a bus has them): the
    # signals are deposited from the driver's greenlet and only the response trigger is awaited in the
    # cocotb task, which saves a coroutine per access. Unrolled like read/write above, on purpose.
    def read_bridged(self, addr: int, nbytes: int = 4) -> int:
        driver = getcurrent()
        if not isinstance(driver, DriverGreenlet):
            current_driver()  # raises: outside the bridge, refused before any signal moves
        width = self.width
        if nbytes > width or addr & (nbytes - 1) or nbytes not in _MASK:
            return bridge_await(self._read_split(addr, nbytes))
        if self._watch is None or self.dead:
            self._guard("read", addr, nbytes)
        shift = addr & (width - 1)
        word = addr - shift
        if word >> 32 != self._hi:
            self._hi = word >> 32
            self._addr_hi.set_signal_val_int(_NO_DELAY, self._hi)
        lo = word & 0xFFFF_FFFF
        if lo != self._lo:    # the command port holds what it was given: deposit only what changes
            self._lo = lo
            self._addr.set_signal_val_int(_NO_DELAY, lo)
        if self._strb:
            self._strb = 0
            self._wstrb.set_signal_val_int(_NO_DELAY, 0)
        self._tgl ^= 1
        self._tgl_h.set_signal_val_int(_NO_DELAY, self._tgl)
        self.transactions += 1
        if self.parks:  # park the driver on the completion callback, which resumes it (bridge.py)
            driver.callback = self._register(self._rsp_tgl_h, driver.resume, _VALUE_CHANGE)
            driver.parent.switch(PARKED)
        else:
            driver.parent.switch(self._done)
        if self.dead:
            raise self._no_answer("read", addr, nbytes)
        resp = self._resp.get_signal_val_long()
        if resp and resp in self.errors:
            raise self._fail("read", addr, nbytes, resp)
        data = self._rdata.get_signal_val_long() & 0xFFFF_FFFF
        if width == 8:
            data |= (self._rdata_hi.get_signal_val_long() & 0xFFFF_FFFF) << 32
        return (data >> 8 * shift) & _MASK[nbytes]

    def write_bridged(self, addr: int, nbytes: int, value: int) -> None:
        driver = getcurrent()
        if not isinstance(driver, DriverGreenlet):
            current_driver()
        width = self.width
        if nbytes > width or addr & (nbytes - 1) or nbytes not in _MASK:
            bridge_await(self._write_split(addr, nbytes, value))
            return
        self._check_write(addr, nbytes)
        if self._watch is None or self.dead:
            self._guard("write", addr, nbytes)
        shift = addr & (width - 1)
        word = addr - shift
        if word >> 32 != self._hi:
            self._hi = word >> 32
            self._addr_hi.set_signal_val_int(_NO_DELAY, self._hi)
        data = (value & _MASK[nbytes]) << 8 * shift
        lo = word & 0xFFFF_FFFF
        if lo != self._lo:
            self._lo = lo
            self._addr.set_signal_val_int(_NO_DELAY, lo)
        self._wdata.set_signal_val_int(_NO_DELAY, data & 0xFFFF_FFFF)
        if width == 8:
            self._wdata_hi.set_signal_val_int(_NO_DELAY, data >> 32)
        strb = ((1 << nbytes) - 1) << shift
        if strb != self._strb:
            self._strb = strb
            self._wstrb.set_signal_val_int(_NO_DELAY, strb)
        self._tgl ^= 1
        self._tgl_h.set_signal_val_int(_NO_DELAY, self._tgl)
        self.transactions += 1
        if self.parks:  # park the driver on the completion callback, which resumes it (bridge.py)
            driver.callback = self._register(self._rsp_tgl_h, driver.resume, _VALUE_CHANGE)
            driver.parent.switch(PARKED)
        else:
            driver.parent.switch(self._done)
        if self.dead:
            raise self._no_answer("write", addr, nbytes)
        resp = self._resp.get_signal_val_long()
        if resp and resp in self.errors:
            raise self._fail("write", addr, nbytes, resp)

    def _check_write(self, addr: int, nbytes: int) -> None:
        """Refuse a write this bus kind cannot carry (none here; APB3 refuses narrow ones)."""

    # --- the watchdog -------------------------------------------------------------------------------
    def _guard(self, op: str, addr: int, nbytes: int) -> None:
        """Before a transaction: refuse it on a dead bus; start this test's watchdog if none runs."""
        if self.dead:
            raise self._no_answer(op, addr, nbytes)
        self._watch = cocotb.start_soon(self._watchdog())

    def _no_answer(self, op: str, addr: int, nbytes: int) -> BusError:
        return BusError(self.protocol, op, addr, nbytes, str(self.dead))

    async def _watchdog(self) -> None:
        """Wake every timeout_ns / 4 of simulated time; give up on a transaction pending for timeout_ns."""
        period = self.timeout_ns // 4
        seen, quiet = -1, 0
        try:
            while not self.dead:
                await Timer(period, "ns")
                pending = self._rsp_tgl_h.get_signal_val_long() != self._tgl
                if pending and self.transactions == seen:
                    quiet += 1
                    if quiet >= 4:
                        self.dead = (f"no answer within {self.timeout_ns} ns of simulated time; the bus is "
                                     f"marked dead ({self.master._path})")
                        self._rsp_tgl_h.set_signal_val_int(_NO_DELAY, self._tgl)  # wakes the waiting access
                else:
                    seen, quiet = self.transactions, 0
        finally:
            self._watch = None  # cocotb cancels a test's tasks when it ends: the next access starts another

    async def _read_split(self, addr: int, nbytes: int) -> int:
        check_access(self.protocol, addr, nbytes)
        low = await self.read(addr, 4)
        return low | await self.read(addr + 4, 4) << 32

    async def _write_split(self, addr: int, nbytes: int, value: int) -> None:
        check_access(self.protocol, addr, nbytes)
        low, high = split_halves(value)
        await self.write(addr, 4, low)
        await self.write(addr + 4, 4, high)

    # the 32-bit forms of the first bus model (kept for benches that await the bus natively)
    async def read32(self, addr: int) -> int:
        return await self.read(addr, 4)

    async def write32(self, addr: int, data: int, strobes: int = 0xF) -> None:
        if not 0 < strobes <= 0xF:
            raise ValueError(f"write strobes {strobes:#x} must be 1..0xf")
        word = addr & ~(self.width - 1)
        shift = addr - word
        resp = await self.transact(word, (data & 0xFFFF_FFFF) << 8 * shift, strobes << shift)
        if resp in self.errors:
            raise self._fail("write", addr, 4, resp)


class HdlAxiLiteBus(HdlBus):
    """hwsim_axil_master (AXI4-Lite, 32- or 64-bit data, byte strobes)."""

    protocol = "AXI4-Lite"
    errors = {2: "SLVERR", 3: "DECERR"}


class HdlApbBus(HdlBus):
    """hwsim_apb_master (APB4 with PSTRB/PPROT; APB3 slaves ignore PSTRB and see full-word writes)."""

    protocol = "APB"
    errors = {1: "PSLVERR"}

    def __init__(self, master: Any, *, apb3: bool = False, timeout_ns: int = DEFAULT_TIMEOUT_NS,
                 park: bool = True) -> None:
        super().__init__(master, timeout_ns=timeout_ns, park=park)
        self.apb3 = apb3
        if apb3:
            self.protocol = "APB3"

    def _check_write(self, addr: int, nbytes: int) -> None:
        if self.apb3 and nbytes < self.width:
            raise MmioValueError(f"APB3 write of {nbytes} bytes at {addr:#x}: APB3 has no byte strobes, "
                                 f"only whole {self.width}-byte words")

    async def write(self, addr: int, nbytes: int, value: int) -> None:
        self._check_write(addr, nbytes)
        await super().write(addr, nbytes, value)


class HdlWishboneBus(HdlBus):
    """hwsim_wb_master (Wishbone B4, classic or pipelined by its PIPELINED parameter)."""

    protocol = "Wishbone"
    errors = {1: "ERR_O", 2: "RTY_O"}


class HdlAvalonBus(HdlBus):
    """hwsim_avmm_master (Avalon-MM with waitrequest, readdatavalid and writeresponsevalid)."""

    protocol = "Avalon-MM"
    errors = {1: "RESERVED response", 2: "SLVERR (SLAVEERROR)", 3: "DECODEERROR"}
