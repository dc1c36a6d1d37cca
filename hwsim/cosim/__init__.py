"""The generic co-simulation layer: run synchronous drivers against any RTL under cocotb.

`runner` builds and runs designs with Icarus or Verilator and is safe to import from plain pytest. The
rest runs inside the simulator, next to cocotb: `bridge` (sync code in a greenlet, one await per
access), `space` (`SimSpace`), `buses` (the bus-model protocol), `hdl_buses` (the HDL masters of hdl/,
one await per transaction), `ext_buses` (cocotbext masters), `interrupt` (`SimInterrupt`) and `shm`
(the memory shim that serves the simulator's memories straight from this process's mmaps). Nothing
here knows any particular device.
"""

from mmiotk.errors import BusError

from .bridge import Bridge, NotBridgedError, bridge_await
from .buses import SimBus
from .ext_buses import AxiLiteMasterBus
from .hdl_buses import HdlApbBus, HdlAvalonBus, HdlAxiLiteBus, HdlBus, HdlWishboneBus
from .interrupt import SimInterrupt
from .space import SimSpace, SimWindow

__all__ = ["AxiLiteMasterBus", "Bridge", "BusError", "HdlApbBus", "HdlAvalonBus", "HdlAxiLiteBus", "HdlBus",
           "HdlWishboneBus", "NotBridgedError", "SimBus", "SimInterrupt", "SimSpace", "SimWindow",
           "bridge_await"]
