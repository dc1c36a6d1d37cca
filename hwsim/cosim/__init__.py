"""The generic co-simulation layer: run synchronous drivers against any RTL under cocotb.

`runner` builds and runs designs with Icarus or Verilator and is safe to import from plain pytest. The
rest runs inside the simulator, next to cocotb: `bridge` (sync code in a greenlet, one await per
access), `space` (`SimSpace`), `buses` (bus models), `interrupt` (`SimInterrupt`) and `shm` (the memory
shim that serves the simulator's memories straight from this process's mmaps). Nothing here knows any
particular device.
"""

from .bridge import Bridge, NotBridgedError, bridge_await
from .buses import AxiLiteMasterBus, BusError, HdlAxiLiteBus, SimBus
from .interrupt import SimInterrupt
from .space import SimSpace, SimWindow

__all__ = ["AxiLiteMasterBus", "Bridge", "BusError", "HdlAxiLiteBus", "NotBridgedError", "SimBus",
           "SimInterrupt", "SimSpace", "SimWindow", "bridge_await"]
