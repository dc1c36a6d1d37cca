"""dmacopy under cocotb (Verilator): a user's DMA engine copying between DmaPool buffers through the AXI4
memory slave, and that slave's bursts of every type, length and size from a full AXI4 master."""

from __future__ import annotations

import cocotb
import numpy as np
import pytest
from cocotb.handle import Immediate
from cocotb.triggers import FallingEdge, RisingEdge

from hwsim.cosim.shm import ShmLib
from hwsim.dmacopy.driver import DmaCopy, DmaCopyError
from hwsim.dmacopy.env import DMA_BASE, DmacopyEnv
from mmiotk import RamSpace


def pattern(n: int, seed: int) -> np.ndarray:
    return ((np.arange(n, dtype=np.uint32) * 7 + seed * 13) & 0xFF).astype(np.uint8)


@cocotb.test()
async def copies_land_in_the_numpy_views(dut):
    env = await DmacopyEnv.create(dut)
    drv = await env.run(DmaCopy, env.regs, env.irq)
    for n, seed in ((8, 1), (128, 2), (4096, 3), (10_000, 4)):
        src = env.pool.alloc(n + 8, align=8)
        dst = env.pool.alloc(n + 8, align=8)
        src[:] = pattern(n + 8, seed)
        await env.run(drv.copy, dst, src, n)
        assert np.array_equal(dst[:n], src[:n]), n
        assert not dst[n:].any()                                 # nothing beyond LEN
    assert env.irq.events == 4 and env.errors == 0
    env.close()


@cocotb.test()
async def crossing_4k_and_back_pressure_and_latency(dut):
    env = await DmacopyEnv.create(dut)
    drv = await env.run(DmaCopy, env.regs, env.irq)
    src = env.pool.alloc(3 * 4096, align=4096)
    dst = env.pool.alloc(3 * 4096, align=4096)
    src[:] = pattern(3 * 4096, 9)
    dut.sys.mem.stall.value = Immediate(128)                         # READY/RVALID low half of the time
    dut.sys.mem.latency.value = Immediate(20)
    s, d = src[4000:4000 + 5000], dst[4088:4088 + 5000]          # bursts split at 4 KiB boundaries
    await env.run(drv.copy, d, s)
    assert np.array_equal(dst[4088:4088 + 5000], src[4000:9000])
    assert not dst[:4088].any() and not dst[4088 + 5000:].any()
    env.close()


@cocotb.test()
async def outside_the_pool_is_an_error_response_counted(dut):
    env = await DmacopyEnv.create(dut)
    drv = await env.run(DmaCopy, env.regs, env.irq)
    dst = env.pool.alloc(256, align=8)

    class Far:                                                  # a buffer beyond the pool
        nbytes = 256
        dma_addr = DMA_BASE + 0x0100_0000

    with pytest.raises(DmaCopyError, match="failed"):
        await env.run(drv.copy, dst, Far(), 256)
    assert env.errors == 16 and not dst.any()                   # one burst, 16 beats answered SLVERR; no write
    with pytest.raises(DmaCopyError):
        await env.run(drv.copy, dst, env.pool.alloc(16, align=8), 12)   # LEN not a multiple of 8
    assert env.errors == 16                                     # refused before any beat
    env.close()


class PinAxi4:
    """A minimal full-AXI4 master on the ext_axi_* pins, one burst at a time. It decides handshakes at the
    falling edge (the values the next rising edge will see), so it reads the same under Verilator, whose
    rising-edge callbacks see that edge's registers already updated, as under Icarus."""

    def __init__(self, dut) -> None:
        self.dut, self.clk = dut, dut.clk

    async def _handshake(self, valid, ready) -> None:
        valid.value = 1
        while True:
            await FallingEdge(self.clk)
            if int(ready.value):
                break
        await RisingEdge(self.clk)
        valid.value = 0

    async def write(self, addr: int, beats: list[tuple[int, int]], burst: int = 1, size: int = 3) -> int:
        d = self.dut
        d.ext_axi_awaddr.value, d.ext_axi_awlen.value = addr, len(beats) - 1
        d.ext_axi_awsize.value, d.ext_axi_awburst.value = size, burst
        await self._handshake(d.ext_axi_awvalid, d.ext_axi_awready)
        for i, (data, strb) in enumerate(beats):
            d.ext_axi_wdata.value, d.ext_axi_wstrb.value, d.ext_axi_wlast.value = data, strb, int(i == len(beats) - 1)
            await self._handshake(d.ext_axi_wvalid, d.ext_axi_wready)
        d.ext_axi_bready.value = 1
        while True:
            await FallingEdge(self.clk)
            if int(d.ext_axi_bvalid.value):
                resp = int(d.ext_axi_bresp.value)
                await RisingEdge(self.clk)
                d.ext_axi_bready.value = 0
                return resp

    async def read(self, addr: int, beats: int, burst: int = 1, size: int = 3) -> list[tuple[int, int]]:
        d = self.dut
        d.ext_axi_araddr.value, d.ext_axi_arlen.value = addr, beats - 1
        d.ext_axi_arsize.value, d.ext_axi_arburst.value = size, burst
        await self._handshake(d.ext_axi_arvalid, d.ext_axi_arready)
        d.ext_axi_rready.value = 1
        out: list[tuple[int, int]] = []
        while len(out) < beats:
            await FallingEdge(self.clk)
            if int(d.ext_axi_rvalid.value):
                out.append((int(d.ext_axi_rdata.value), int(d.ext_axi_rresp.value)))
                assert int(d.ext_axi_rlast.value) == (len(out) == beats)
        await RisingEdge(self.clk)
        d.ext_axi_rready.value = 0
        return out


def words(data: bytes) -> list[tuple[int, int]]:
    return [(int.from_bytes(data[i:i + 8], "little"), 0xFF) for i in range(0, len(data), 8)]


@cocotb.test()
async def axi4_bursts_of_every_type_length_and_size(dut):
    """The memory slave under a full AXI4 master: INCR of 1..256 beats, FIXED, WRAP, narrow, errors."""
    env = await DmacopyEnv.create(dut)
    ram = RamSpace(0x10000, base=0x1_0000_0000, name="axi-ram")
    env.shm.attach(3, ram.array, 0x1_0000_0000)
    m, base = PinAxi4(dut), 0x1_0000_0000
    dut.mem2.stall.value = Immediate(64)
    for beats in (1, 2, 7, 16, 255, 256):
        data = bytes(pattern(beats * 8, beats))
        assert await m.write(base + 0x1000, words(data)) == 0
        assert bytes(ram.array[0x1000:0x1000 + beats * 8]) == data
        assert await m.read(base + 0x1000, beats) == [(w, 0) for w, _ in words(data)]
    fixed = [(0x1111_1111_1111_1111 * k, 0xFF) for k in (1, 2, 3, 4)]
    assert await m.write(base + 0x100, fixed, burst=0) == 0
    assert int.from_bytes(bytes(ram.array[0x100:0x108]), "little") == 0x4444_4444_4444_4444
    assert not ram.array[0x108:0x120].any()
    ram.array[0x200:0x240] = pattern(0x40, 5)
    expect = [int.from_bytes(bytes(ram.array[a:a + 8]), "little") for a in (0x210, 0x218, 0x200, 0x208)]
    assert await m.read(base + 0x210, 4, burst=2) == [(w, 0) for w in expect]   # wraps at 0x220
    ram.array[0x300:0x308] = 0
    narrow = [(0xAA << 8, 0x02), (0xBB << 16, 0x04), (0xCC << 24, 0x08)]          # 1-byte beats at 0x301
    assert await m.write(base + 0x301, narrow, size=0) == 0
    assert bytes(ram.array[0x300:0x305]) == b"\x00\xaa\xbb\xcc\x00"
    errors = env.shm.stat(3, ShmLib.ERRORS)
    assert await m.write(base + 0x10000 - 8, words(b"\x01" * 16)) == 2                # second beat outside
    assert bytes(ram.array[-8:]) == b"\x01" * 8 and env.shm.stat(3, ShmLib.ERRORS) == errors + 1
    assert [r for _, r in await m.read(base + 0x20000, 2)] == [2, 2]
    env.shm.detach(3)
    ram.close()
    env.close()
