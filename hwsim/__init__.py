"""The virtio-blk block controller in RTL and its cocotb co-simulation (see docs/cosim.md).

`hwsim.runner` builds and runs the RTL (safe to import anywhere); `hwsim.cosim` and `hwsim.env` run
inside the simulator, next to cocotb.
"""
