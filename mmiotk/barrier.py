"""CPU memory barriers, after Linux's per-architecture table.

Linux's readX()/writeX() order MMIO against other MMIO and against DMA memory. On x86 (TSO; uncached
memory is strongly ordered) they need no CPU fence at all, so mmiotk's ordered accessors are the relaxed
ones there. Weakly ordered architectures need a barrier after each ordered read (`io_ar`, Linux's
__io_ar: arm64 `dmb oshld`, riscv `fence i,ir`) and before each ordered write (`io_bw`: arm64 `dmb oshst`,
riscv `fence w,o`). `mb()/rmb()/wmb()` order everything, device memory included (x86 mfence/lfence/sfence,
arm64 `dsb sy/ld/st`, riscv `fence iorw,iorw / ir,ir / ow,ow`); `dma_mb()/dma_rmb()/dma_wmb()` order memory
shared with a device (arm64 `dmb osh/oshld/oshst`; on x86 the read and write ones are compiler barriers).

With the compiled core (see `native`) each of these is exactly that instruction, from mmiotk/csrc/mmio_io.h.
Without it, every barrier is C11 `atomic_thread_fence(memory_order_seq_cst)` from libatomic reached through
ctypes (mfence on x86, `dmb ish` on arm64; ~160 ns), or a lock acquire/release where libatomic is missing:
stronger than needed on x86, and on arm64 not the outer-shareable domain Linux uses for devices.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from collections.abc import Callable

from . import native
from .policy import TSO_ARCHES, normalize_arch

HOST_ARCH = normalize_arch()
# True where readX/writeX need a CPU fence around the access (not on x86).
ORDERED_ACCESS_NEEDS_FENCE = HOST_ARCH not in TSO_ARCHES

_SEQ_CST = 5


def _load_fence() -> tuple[Callable[[], None], str]:
    name = ctypes.util.find_library("atomic")
    if name:
        try:
            fn = ctypes.CDLL(name).atomic_thread_fence
        except (OSError, AttributeError):
            fn = None
        if fn is not None:
            fn.argtypes = [ctypes.c_int]
            fn.restype = None

            def fence() -> None:
                fn(_SEQ_CST)

            return fence, f"{name}:atomic_thread_fence(seq_cst)"
    lock = threading.Lock()

    def lock_fence() -> None:
        lock.acquire()
        lock.release()

    return lock_fence, "lock acquire/release"


mb: Callable[[], None]
rmb: Callable[[], None]
wmb: Callable[[], None]
dma_mb: Callable[[], None]
dma_rmb: Callable[[], None]
dma_wmb: Callable[[], None]
io_ar: Callable[[], None]
io_bw: Callable[[], None]

if native.core is not None:
    _core = native.core
    mb, rmb, wmb = _core.mb, _core.rmb, _core.wmb
    dma_mb, dma_rmb, dma_wmb = _core.dma_mb, _core.dma_rmb, _core.dma_wmb
    io_ar, io_bw = _core.io_ar, _core.io_bw
    FENCE_MECHANISM = f"compiled core: {_core.BARRIERS}"
else:
    _fence, FENCE_MECHANISM = _load_fence()
    mb = rmb = wmb = dma_mb = dma_rmb = dma_wmb = io_ar = io_bw = _fence
