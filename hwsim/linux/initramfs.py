"""The guest's initramfs: static busybox, the 9p modules, and an init that boots into the host's own root.

The init mounts the host root (9p tag `root`) read-only at /newroot and gives it its own /proc, /sys, /dev
(devtmpfs), tmpfs on /tmp, /run and /dev/shm, hugetlbfs on /dev/hugepages, and the writable share (9p
tag `share`) at the host path named by `mmiotk.share=` on the kernel command line. It then chroots, runs
the share's `run.sh`, writes its exit status to the share's `exit-status` and powers off. It prints
`BOOT_MARKER` once its own file systems are up, which is how the launcher tells a silent boot from a
slow command. Images are cached per kernel release and init text, so a change to either rebuilds.
"""

from __future__ import annotations

import hashlib
import lzma
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from .errors import LinuxGuestError
from .kernel import Kernel, locked

BOOT_MARKER = "mmiotk-guest: init up"
BOOT_MODULES = ("9pnet_virtio", "9p")  # virtio_pci is built in; these pull netfs and 9pnet
BUSYBOX = "/bin/busybox"

INIT = f"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "{BOOT_MARKER}"
die() {{ echo "mmiotk-guest: $*"; poweroff -f; }}
for m in $(cat /modules.order); do insmod "/lib/modules/$m" || die "insmod $m failed"; done
share=""
project=""
for word in $(cat /proc/cmdline); do
    case "$word" in
        mmiotk.share=*) share="${{word#mmiotk.share=}}";;
        mmiotk.project=*) project="${{word#mmiotk.project=}}";;
    esac
done
[ -n "$share" ] || die "no mmiotk.share= on the kernel command line"
r=/newroot
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=524288,cache=loose root $r || die "cannot mount the root"
mount -t proc proc $r/proc
mount -t sysfs sysfs $r/sys
mount -t devtmpfs devtmpfs $r/dev
mkdir -p $r/dev/shm $r/dev/hugepages $r/dev/pts
mount -t tmpfs -o mode=1777 tmpfs $r/dev/shm
mount -t hugetlbfs hugetlbfs $r/dev/hugepages
mount -t tmpfs -o mode=1777 tmpfs $r/tmp
mount -t tmpfs tmpfs $r/run
if [ -n "$project" ]; then  # the project again, in case it lives under a path the mounts above cover (/tmp)
    mkdir -p "$r$project"
    mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=524288,cache=loose project "$r$project" \
        || die "cannot mount the project"
fi
mkdir -p "$r$share"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288,cache=none share "$r$share" || die "cannot mount the share"
chroot $r /bin/sh "$share/run.sh" </dev/console >/dev/console 2>&1
echo $? > "$r$share/exit-status"
sync
umount "$r$share"
poweroff -f
"""


def build_initramfs(kernel: Kernel, out_dir: Path, *, init: str = INIT,
                    modules: tuple[str, ...] = BOOT_MODULES) -> Path:
    """An uncompressed newc cpio for `kernel` in `out_dir` (reused when one with the same content exists)."""
    order = [path for name in modules for path in kernel.module_deps(name)]
    order = list(dict.fromkeys(order))
    key = hashlib.sha256("\0".join([kernel.release, init, *order]).encode()).hexdigest()[:16]
    image = out_dir / f"initramfs-{kernel.release}-{key}.cpio"
    with locked(out_dir):
        if image.exists():
            return image
        if not os.access(BUSYBOX, os.X_OK):
            raise LinuxGuestError(f"{BUSYBOX} is missing: the busybox-static package provides it")
        with tempfile.TemporaryDirectory(dir=out_dir, prefix=".initramfs-") as tmp:
            stage = Path(tmp) / "root"
            for d in ("bin", "lib/modules", "proc", "sys", "dev", "newroot"):
                (stage / d).mkdir(parents=True)
            shutil.copy2(BUSYBOX, stage / "bin" / "busybox")
            names = []
            for path in order:
                data = (kernel.modules_dir / path).read_bytes()
                if path.endswith(".xz"):
                    data = lzma.decompress(data)  # busybox insmod takes plain .ko files
                name = path.rsplit("/", 1)[-1].split(".ko", 1)[0] + ".ko"
                (stage / "lib" / "modules" / name).write_bytes(data)
                names.append(name)
            (stage / "modules.order").write_text("\n".join(names) + "\n")
            (stage / "init").write_text(init)
            (stage / "init").chmod(0o755)
            files = sorted(str(p.relative_to(stage)) for p in stage.rglob("*"))
            partial = Path(tmp) / "image.cpio"
            with open(partial, "wb") as out:
                done = subprocess.run(["cpio", "-o", "-H", "newc", "--owner=0:0", "--quiet"], cwd=stage,
                                      input="\n".join(files).encode(), stdout=out, stderr=subprocess.PIPE,
                                      check=False)
            if done.returncode != 0:
                raise LinuxGuestError(f"cpio failed building {image}: {done.stderr.decode(errors='replace')}")
            os.replace(partial, image)
        return image
