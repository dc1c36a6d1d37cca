"""Targets that a driver runs on, apart from mocks and real hardware (see docs/architecture.md).

- `hwsim.cosim`: the generic co-simulation layer (build/run any design, the synchronous-driver bridge,
  `SimSpace`, bus models, interrupts, the memory shim). It knows no particular device.
- `hwsim.media`: `BlockMedia`, the disk behind a block device, shared by the controller and the model.
- `hwsim.vblk`: the project's virtio-blk controller: its RTL, harness and cocotb environment.
- `hwsim.models`: behavioural device models in a transaction-backed space.
- `hwsim.qemu`: QEMU's own device models through qtest, with guest RAM shared.
- `hwsim.linux`: Debian's kernel booted under QEMU with the host root shared, so tests meet a real kernel.
- `hwsim.integration`: the one place that imports `drivers`: block targets and the demo.
"""
