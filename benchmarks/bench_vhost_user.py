"""Linux's own virtio_blk in a guest: 4 KiB random reads per second on our vhost-user back ends (the model and
the RTL under Verilator) beside QEMU's own virtio-blk-pci (the baseline), all three disks in one guest, one run.

Each disk is 32 MiB; fio (the host's, through the shared root) reads it with libaio and O_DIRECT at queue
depth 1 and 16 for `--seconds` each, disk after disk. The guest runs under TCG on a loaded 2-core machine, so
the baseline is measured in the same boot, and the ratios are what to read.

    .venv/bin/python benchmarks/bench_vhost_user.py [--seconds 5]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hwsim.linux.machine import run_in_guest  # noqa: E402
from hwsim.vhost_user.service import VhostUserBlkService, vhost_blk_machine  # noqa: E402

DISK = 32 << 20
SERIALS = {"qemu": "qemu-virtio-blk", "model": "mmiotk-virtio-blk", "rtl": "mmiotk-vblk-rtl-0001"}

GUEST = r"""
modprobe -d "$MMIOTK_LINUX_MODULES" virtio_blk
for i in $(seq 100); do [ $(ls /sys/block | grep -c '^vd') -ge 3 ] && break; sleep 0.1; done
for dev in /sys/block/vd*; do
    name=$(basename $dev); serial=$(cat $dev/serial)
    for depth in 1 16; do
        fio --name=randread --filename=/dev/$name --direct=1 --ioengine=libaio --iodepth=$depth --rw=randread \
            --bs=4k --time_based --runtime={seconds} --ramp_time=1 --output-format=json \
            --output="$MMIOTK_LINUX_SHARE/fio-$serial-qd$depth.json" || exit 1
    done
done
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-vhost-") as tmp:
        share = Path(tmp) / "share"
        share.mkdir()
        image = Path(tmp) / "qemu.img"
        image.write_bytes(b"")
        with open(image, "r+b") as f:
            f.truncate(DISK)
        base = vhost_blk_machine("bench-vhost", VhostUserBlkService("vblk-model", "model", DISK))
        machine = dataclasses.replace(
            base, devices=(*base.devices,
                           "-drive", f"if=none,id=qemu-disk,file={image},format=raw",
                           "-device", f"virtio-blk-pci,drive=qemu-disk,serial={SERIALS['qemu']}"),
            services=(*base.services, VhostUserBlkService("vblk-rtl", "rtl", DISK, start_timeout=600.0)))
        run = run_in_guest(machine, GUEST.replace("{seconds}", f"{args.seconds:g}"), share, timeout=900)
        if run.exit_status != 0:
            sys.exit(f"the guest failed ({run.exit_status}):\n" + "\n".join(run.console.splitlines()[-30:]))
        iops = {}
        for kind, serial in SERIALS.items():
            for depth in (1, 16):
                job = json.loads((share / f"fio-{serial}-qd{depth}.json").read_text())["jobs"][0]
                iops[kind, depth] = float(job["read"]["iops"])
    print(f"\nLinux virtio_blk, 4 KiB random reads/s (fio, libaio, O_DIRECT, {args.seconds:g} s each), guest under "
          f"{run.accel}, {time.strftime('%Y-%m-%d')}")
    print(f"{'disk':44}  {'QD1':>10}  {'QD16':>10}  {'QD1 / QEMU':>10}  {'QD16 / QEMU':>11}")
    labels = {"qemu": "QEMU virtio-blk-pci (baseline)", "model": "vhost-user: behavioural model",
              "rtl": "vhost-user: RTL under Verilator"}
    for kind, label in labels.items():
        print(f"{label:44}  {iops[kind, 1]:10,.0f}  {iops[kind, 16]:10,.0f}  {iops[kind, 1] / iops['qemu', 1]:10.3f}  "
              f"{iops[kind, 16] / iops['qemu', 16]:11.3f}")
    print(f"vhost-user 4 KiB reads QD1: model {iops['model', 1] / iops['qemu', 1]:.3f}x, "
          f"RTL {iops['rtl', 1] / iops['qemu', 1]:.3f}x QEMU's virtio-blk")


if __name__ == "__main__":
    main()
