"""hwsim_shm: the simulator's memories served straight from this process's mmaps.

hwsim_shm is a small C library (hdl/hwsim_shm.c: DPI-C under Verilator, VPI under Icarus) that the
runner builds and loads into the simulator. `ShmLib.attach` hands it the address of one of our own
arrays, so the RTL's memory accesses land in the very bytes the driver's numpy views show, with no
Python call per access.
"""

from __future__ import annotations

import ctypes
import os
from typing import ClassVar

import numpy as np


def find_loaded_library(stem: str = "hwsim_shm") -> str | None:
    """The path of an already loaded shared object whose file name contains `stem`."""
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.split(maxsplit=5)[-1].strip()
                if stem in os.path.basename(path):
                    return path
    except OSError:
        return None
    return None


class ShmLib:
    """ctypes access to hwsim_shm inside the running simulator."""

    HOST, MEDIA = 0, 1
    READS, WRITES, SYNCS, FAULTS, ERRORS = range(5)
    # The simulator holds raw pointers: what is attached stays alive until replaced or detached, even
    # if the test that attached it failed before cleaning up.
    _pinned: ClassVar[dict[int, np.ndarray]] = {}

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        where = path or os.environ.get("HWSIM_SHM_LIB") or find_loaded_library()
        if where is None:
            raise RuntimeError("hwsim_shm is not loaded: run the simulation through hwsim.cosim.runner")
        self.path = os.fspath(where)
        lib = ctypes.CDLL(self.path)
        lib.hwsim_attach.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint64]
        lib.hwsim_attach.restype = ctypes.c_int
        lib.hwsim_detach.argtypes = [ctypes.c_int]
        lib.hwsim_detach.restype = None
        lib.hwsim_stat.argtypes = [ctypes.c_int, ctypes.c_int]
        lib.hwsim_stat.restype = ctypes.c_uint64
        self._lib = lib

    def attach(self, space: int, array: np.ndarray, base: int = 0) -> None:
        """Serve `space` from `array` (uint8, contiguous), whose index 0 is address `base`."""
        if array.dtype != np.uint8 or not array.flags.c_contiguous or not array.flags.writeable:
            raise ValueError("attach needs a writable, contiguous uint8 array")
        if self._lib.hwsim_attach(space, array.ctypes.data, base, array.nbytes) != 0:
            raise RuntimeError(f"hwsim_attach({space}) failed")
        self._pinned[space] = array  # the simulator holds a raw pointer: keep the memory alive

    def detach(self, space: int) -> None:
        self._lib.hwsim_detach(space)
        self._pinned.pop(space, None)

    def stat(self, space: int, which: int) -> int:
        return int(self._lib.hwsim_stat(space, which))
