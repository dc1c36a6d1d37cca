"""DevMemSpace: physical memory through /dev/mem (or any file standing in for it in tests).

Uncached policies open the file with O_SYNC, which is how Linux hands out an uncached mapping of
/dev/mem; CACHED opens without it. /dev/mem offers no write-combining mapping, so WRITE_COMBINING falls
back to uncached (stronger ordering, always correct) and says so in `buffer.mechanism`.

A refusal (EPERM under CONFIG_STRICT_DEVMEM / IO_STRICT_DEVMEM) raises `DevMemRefusedError` saying why,
from /proc/iomem: System RAM (reserve memory at boot), or a range a driver claimed (which, and how to unbind).
"""

from __future__ import annotations

import errno
import mmap
import os

from .errors import MmioError
from .iomem import explain_devmem_refusal
from .policy import CachePolicy
from .space import AddressSpace, MemoryWindow, Window, page_span


class DevMemRefusedError(MmioError, PermissionError):
    """The kernel refused to map a physical range through /dev/mem; the message names the cause and the fix."""


class DevMemSpace(AddressSpace):
    """Physical addresses are file offsets of `path`; `iomem` and `sysfs_root` explain refusals."""

    def __init__(self, path: str | os.PathLike[str] = "/dev/mem", *, base: int = 0, size: int = 1 << 48,
                 arch: str | None = None, iomem: str | os.PathLike[str] = "/proc/iomem",
                 sysfs_root: str | os.PathLike[str] = "/sys") -> None:
        super().__init__(base, size, name=os.fspath(path), arch=arch)
        self.path = os.fspath(path)
        self.iomem = iomem
        self.sysfs_root = sysfs_root

    def open(self, paddr: int, size: int, policy: CachePolicy) -> Window:
        self.check_range(paddr, size)
        flags = os.O_RDWR
        uncached = policy is not CachePolicy.CACHED
        if uncached:
            flags |= os.O_SYNC
        try:
            fd = os.open(self.path, flags)
        except OSError as exc:
            denied = exc.errno in (errno.EPERM, errno.EACCES)
            hint = " (opening /dev/mem needs root: CAP_SYS_RAWIO)" if denied else ""
            raise MmioError(f"{self.path}: cannot open for [{paddr:#x}, {paddr + size:#x}): {exc.strerror}{hint}"
                            ) from None
        try:
            start, length = page_span(paddr, size)
            mapping = mmap.mmap(fd, length, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=start)
        except OSError as exc:
            if exc.errno == errno.EPERM:
                why = explain_devmem_refusal(paddr, size, iomem=self.iomem, sysfs_root=self.sysfs_root)
                raise DevMemRefusedError(f"{self.path}: the kernel refused to map [{paddr:#x}, {paddr + size:#x}) "
                                         f"(EPERM): {why}") from None
            if exc.errno == errno.EAGAIN:
                raise MmioError(f"{self.path}: cannot map [{paddr:#x}, {paddr + size:#x}) "
                                f"{'uncached' if uncached else 'cached'} (EAGAIN): the range is already mapped with "
                                "another memory type (x86 PAT allows one per physical page); map it with the "
                                "policy the other mapping uses, or unmap that first") from None
            raise MmioError(f"{self.path}: cannot map [{paddr:#x}, {paddr + size:#x}): {exc.strerror}") from None
        finally:
            os.close(fd)
        mechanism = f"{self.path} {'O_SYNC' if uncached else 'cached'}"
        if policy is CachePolicy.WRITE_COMBINING:
            mechanism += " (no write-combining through /dev/mem: uncached)"
        lo = paddr - start
        return MemoryWindow(paddr, memoryview(mapping)[lo:lo + size], mechanism, owner=mapping)
