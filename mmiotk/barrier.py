"""CPU memory barriers, after Linux's per-architecture table.

Linux's readX()/writeX() order MMIO against other MMIO and against DMA memory. On x86 (TSO; uncached
memory is strongly ordered) they need no CPU fence at all, so mmiotk's ordered accessors are the relaxed
ones there. Weakly ordered architectures (arm64, riscv) need a fence before each ordered write and after
each ordered read. Explicit mb()/rmb()/wmb() are real fences everywhere: on x86 they matter for
write-combining memory (Linux uses mfence/lfence/sfence).

The fence is C11 `atomic_thread_fence(memory_order_seq_cst)` from libatomic (mfence on x86, dmb ish on
arm64), reached through ctypes (~160 ns measured on the project machine). Where libatomic is missing, a
lock acquire/release (a locked read-modify-write, a full barrier on x86) stands in.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from collections.abc import Callable

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


full_fence, FENCE_MECHANISM = _load_fence()


def mb() -> None:
    """Full barrier: earlier loads and stores complete before later ones (Linux mb())."""
    full_fence()


def rmb() -> None:
    """Read barrier (Linux rmb()); implemented as a full fence."""
    full_fence()


def wmb() -> None:
    """Write barrier (Linux wmb()); a full fence also drains x86 write-combining buffers like sfence."""
    full_fence()

