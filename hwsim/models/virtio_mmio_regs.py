"""The virtio-mmio register layout as the device model reads it (virtio 1.2, 4.2.2; legacy 4.2.4), and the
device status, interrupt and transport feature bits the transport and its queue handling share.

Apart from the transport (`virtio_mmio`) so that its queue handling (`virtio_mmio_queue`) and the devices
built on it read the same bits from one place without importing the transport class.
"""

from __future__ import annotations

# Deliberate duplication: the virtio constants here are written out again, on purpose, in the driver
# (drivers/virtio/) and in the RTL test driver (tests/hwsim/vblk/vblk_driver.py), so that device and
# drivers stay independent readings of the spec and a misreading in one is caught by the other.
MAGIC = 0x74726976
VENDOR_ID = 0x4B544D4D                    # "MMTK"
# device status bits
ACKNOWLEDGE, DRIVER, DRIVER_OK, FEATURES_OK, DEVICE_NEEDS_RESET, FAILED = 1, 2, 4, 8, 0x40, 0x80
# InterruptStatus bits
INT_VRING, INT_CONFIG = 1, 2
# transport feature bits
F_RING_INDIRECT_DESC, F_RING_EVENT_IDX, F_VERSION_1 = 28, 29, 32
CONFIG_OFFSET = 0x100
WINDOW_SIZE = 0x200

# offset: (name, direction)
REGISTERS: dict[int, tuple[str, str]] = {
    0x000: ("MagicValue", "r"), 0x004: ("Version", "r"), 0x008: ("DeviceID", "r"), 0x00C: ("VendorID", "r"),
    0x010: ("DeviceFeatures", "r"), 0x014: ("DeviceFeaturesSel", "w"),
    0x020: ("DriverFeatures", "w"), 0x024: ("DriverFeaturesSel", "w"),
    0x030: ("QueueSel", "w"), 0x034: ("QueueNumMax", "r"), 0x038: ("QueueNum", "w"),
    0x044: ("QueueReady", "rw"), 0x050: ("QueueNotify", "w"),
    0x060: ("InterruptStatus", "r"), 0x064: ("InterruptACK", "w"), 0x070: ("Status", "rw"),
    0x080: ("QueueDescLow", "w"), 0x084: ("QueueDescHigh", "w"),
    0x090: ("QueueDriverLow", "w"), 0x094: ("QueueDriverHigh", "w"),
    0x0A0: ("QueueDeviceLow", "w"), 0x0A4: ("QueueDeviceHigh", "w"),
    0x0AC: ("SHMSel", "w"), 0x0B0: ("SHMLenLow", "r"), 0x0B4: ("SHMLenHigh", "r"),
    0x0B8: ("SHMBaseLow", "r"), 0x0BC: ("SHMBaseHigh", "r"), 0x0C0: ("QueueReset", "rw"),
    0x0FC: ("ConfigGeneration", "r"),
}
# the legacy interface (Version 1): these replace QueueReady and the queue address registers
LEGACY_REGISTERS: dict[int, tuple[str, str]] = {
    **{off: reg for off, reg in REGISTERS.items()
       if off < 0x044 or off in (0x050, 0x060, 0x064, 0x070)},      # no QueueReady, no ConfigGeneration
    0x028: ("GuestPageSize", "w"), 0x03C: ("QueueAlign", "w"), 0x040: ("QueuePFN", "rw"),
}
