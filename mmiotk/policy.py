"""Cache policies for mappings, and the per-architecture rules for which policy a region may take."""

from __future__ import annotations

import enum
import platform

from .errors import PolicyError


class CachePolicy(enum.IntEnum):
    """How a mapping is cached; values match Fuchsia's ZX_CACHE_POLICY_*.

    arm64 memory types: CACHED = Normal write-back, UNCACHED = Device-nGnRnE,
    UNCACHED_DEVICE = Device-nGnRE, WRITE_COMBINING = Normal non-cacheable.
    """

    CACHED = 0
    UNCACHED = 1
    UNCACHED_DEVICE = 2
    WRITE_COMBINING = 3


_ARCH_ALIASES = {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64", "i386": "x86", "i686": "x86"}
TSO_ARCHES = frozenset({"x86_64", "x86"})


def normalize_arch(name: str | None = None) -> str:
    """The architecture name mmiotk uses (`x86_64`, `aarch64`, ...); None means the host's."""
    raw = (name or platform.machine()).lower()
    return _ARCH_ALIASES.get(raw, raw)


def check_policy(policy: CachePolicy, arch: str, *, memory: bool, coherent: bool, prefetchable: bool,
                 what: str) -> None:
    """Raise PolicyError when `policy` is not allowed on `arch` for a range of these properties.

    `what` names the range in the message (e.g. "region 'uart0' at 0x9000000").
    Device registers (ranges not marked `memory`) are never cached unless marked coherent, and are
    write-combined only when prefetchable (reads have no side effects). On aarch64, device memory takes
    only the Device types (UNCACHED, UNCACHED_DEVICE), plus Normal-NC (WRITE_COMBINING) when prefetchable.
    Normal memory (DMA buffers, RAM) may take any policy; a CACHED mapping of non-coherent memory is
    legal but needs explicit cache maintenance.
    """
    policy = CachePolicy(policy)
    if memory:
        return
    where = f"{what} (device memory, arch {arch})"
    if policy is CachePolicy.CACHED:
        if arch == "aarch64":
            raise PolicyError(f"{where}: aarch64 device memory cannot be mapped CACHED; "
                              "use UNCACHED or UNCACHED_DEVICE")
        if not coherent:
            raise PolicyError(f"{where}: CACHED needs a region marked coherent")
    if policy is CachePolicy.WRITE_COMBINING and not prefetchable:
        raise PolicyError(f"{where}: WRITE_COMBINING needs a prefetchable region "
                          "(reads of these registers may have side effects)")
