"""Capabilities, after Fuchsia: an MmioResource mints PhysicalRegions; a region is mapped, and revoked.

Only a bus driver holds an `MmioResource` (the right to create regions in a physical range). It hands the
`PhysicalRegion`s it creates to the drivers it binds; they map them with a cache policy. `revoke()` (on
unbind) makes every later access through any mapping or view of the region raise `RevokedError`.

A region's public attributes reach no further than its own range: its range and kind are read-only, and
neither the resource that minted it nor the address space behind it is exposed (they would let a driver
mint or open any other range). Python is not a sandbox: this guards against mistakes, not hostile code.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

from .errors import AlignmentError, BadStateError, MmioValueError, OutOfRangeError, RevokedError
from .memmodel import wrap_for_policy
from .policy import CachePolicy, check_policy
from .space import AddressSpace, page_span

if TYPE_CHECKING:
    from .buffer import MmioBuffer

_MINT = object()  # only create_region holds it: PhysicalRegion has no public constructor


class MmioResource:
    """The right to create regions inside [base, base + size) of `space`."""

    def __init__(self, space: AddressSpace, base: int, size: int) -> None:
        space.check_range(base, size)
        self.space = space
        self.base = base
        self.size = size
        self._regions: weakref.WeakSet[PhysicalRegion] = weakref.WeakSet()

    def __repr__(self) -> str:
        return f"<MmioResource {self.space.name} [{self.base:#x}, {self.base + self.size:#x})>"

    def contains(self, paddr: int, size: int) -> bool:
        return size > 0 and self.base <= paddr and paddr + size <= self.base + self.size

    def create_region(self, paddr: int, size: int, name: str | None = None, *, memory: bool = False,
                      coherent: bool | None = None, prefetchable: bool = False) -> PhysicalRegion:
        """A region covering exactly [paddr, paddr + size).

        `memory` marks normal memory (RAM, DMA buffers) rather than device registers; `coherent` says the
        device snoops CPU caches (default: the space's); `prefetchable` allows write-combining.
        """
        if not isinstance(paddr, int) or not isinstance(size, int) or size <= 0:
            raise MmioValueError(f"create_region({paddr!r}, {size!r}): paddr and a positive size are needed")
        if not self.contains(paddr, size):
            raise OutOfRangeError(
                f"region [{paddr:#x}, {paddr + size:#x}) is outside resource "
                f"[{self.base:#x}, {self.base + self.size:#x}) of space {self.space.name!r}")
        if paddr % 8:
            raise AlignmentError(f"region at {paddr:#x} must start 8-byte aligned so that aligned offsets "
                                 "are aligned physical addresses")
        region = PhysicalRegion(
            _MINT, resource=self, paddr=paddr, size=size, name=name or f"region@{paddr:#x}", memory=memory,
            coherent=self.space.coherent if coherent is None else coherent, prefetchable=prefetchable)
        self._regions.add(region)
        return region

    def revoke_all(self) -> None:
        for region in list(self._regions):
            region.revoke()


class PhysicalRegion:
    """A physical range a driver may map. Made only by `MmioResource.create_region`."""

    def __init__(self, token: object = None, *, resource: MmioResource | None = None, paddr: int = 0,
                 size: int = 0, name: str = "", memory: bool = False, coherent: bool = True,
                 prefetchable: bool = False) -> None:
        if token is not _MINT or resource is None:
            raise TypeError("PhysicalRegion has no public constructor: ask the bus driver's "
                            "MmioResource.create_region() for one")
        self._resource = resource
        self._paddr = paddr
        self._size = size
        self._name = name
        self._memory = memory
        self._coherent = coherent
        self._prefetchable = prefetchable
        self._policy: CachePolicy | None = None
        self._revoked = False
        self._buffers: weakref.WeakSet[MmioBuffer] = weakref.WeakSet()
        self._windows: list = []

    # read-only: rewriting the range before map() would map someone else's registers
    paddr = property(lambda self: self._paddr, doc="Physical address of the first byte.")
    size = property(lambda self: self._size, doc="Bytes in the region.")
    name = property(lambda self: self._name)
    memory = property(lambda self: self._memory, doc="Normal memory (RAM, DMA) rather than device registers.")
    coherent = property(lambda self: self._coherent, doc="The device snoops CPU caches.")
    prefetchable = property(lambda self: self._prefetchable, doc="Write-combining is allowed.")
    policy = property(lambda self: self._policy, doc="The cache policy of the first map(), or None.")

    @property
    def arch(self) -> str:
        """The architecture of the space behind the region (for barrier and policy choices)."""
        return self._resource.space.arch

    @property
    def page_span(self) -> tuple[int, int]:
        """The page-aligned range the mapping really covers (an internal detail, like zx_vmo_create_physical)."""
        return page_span(self.paddr, self.size)

    @property
    def revoked(self) -> bool:
        return self._revoked

    def __repr__(self) -> str:
        kind = "memory" if self.memory else "device"
        return f"<PhysicalRegion {self.name!r} [{self.paddr:#x}, {self.paddr + self.size:#x}) {kind}>"

    def map(self, policy: CachePolicy, byteorder: str = "little") -> MmioBuffer:
        """Map with `policy`. The first map fixes the policy; another policy later raises BadStateError."""
        from .buffer import MmioBuffer

        if self._revoked:
            raise RevokedError(f"region {self.name!r} was revoked; it cannot be mapped")
        try:
            policy = CachePolicy(policy)
        except ValueError:
            raise MmioValueError(f"region {self.name!r}: unknown cache policy {policy!r}") from None
        if byteorder not in ("little", "big"):
            raise MmioValueError(f"region {self.name!r}: byteorder must be 'little' or 'big', not {byteorder!r}")
        if self.policy is not None and policy is not self.policy:
            raise BadStateError(f"region {self.name!r} is already mapped {self.policy.name}; "
                                f"it cannot also be mapped {policy.name}")
        space = self._resource.space
        check_policy(policy, space.arch, memory=self.memory, coherent=self.coherent,
                     prefetchable=self.prefetchable, what=f"region {self.name!r} at {self.paddr:#x}")
        window = wrap_for_policy(space, space.open(self.paddr, self.size, policy), policy, self.coherent)
        self._policy = policy
        self._windows.append(window)
        return MmioBuffer(region=self, window=window, space=space, start=0, size=self.size, policy=policy,
                          byteorder=byteorder)

    def add_mapping(self, buffer: MmioBuffer) -> None:
        """Remember a mapping (or view) of this region, so that revoke() reaches it."""
        self._buffers.add(buffer)

    def revoke(self) -> None:
        """Every later access through any mapping or view of this region raises RevokedError."""
        if self._revoked:
            return
        self._revoked = True
        for buffer in list(self._buffers):
            buffer.revoke_mapping()
        for window in self._windows:
            window.close()
        self._windows.clear()
