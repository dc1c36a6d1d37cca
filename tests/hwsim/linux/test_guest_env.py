"""The guest the harness boots: Debian's kernel, the host root read-only, its own writable places, the
kernel's modules loadable. These run inside the guest (one boot with the backend tests)."""

from __future__ import annotations

import errno
import os
import platform
import sys
from pathlib import Path

import pytest

from hwsim.linux.guest import load_module
from hwsim.linux.machines import BACKENDS

pytestmark = pytest.mark.linux_guest(BACKENDS)


def test_the_guest_runs_the_cached_debian_kernel() -> None:
    modules = Path(os.environ["MMIOTK_LINUX_MODULES"])
    assert (modules / "lib" / "modules" / platform.release()).is_dir()
    assert platform.release().endswith("-amd64")
    assert Path("/sys/class/dmi/id/sys_vendor").read_text().strip() == "QEMU"


def test_the_host_root_is_read_only_and_tmp_is_writable(tmp_path: Path) -> None:
    with pytest.raises(OSError) as err:
        Path(sys.prefix, "mmiotk-guest-probe").write_text("x")
    assert err.value.errno == errno.EROFS
    (tmp_path / "ok").write_text("written")
    assert (tmp_path / "ok").read_text() == "written"


def test_hugetlbfs_and_dev_shm_are_mounted() -> None:
    mounts = Path("/proc/mounts").read_text()
    assert " /dev/hugepages hugetlbfs " in mounts and " /dev/shm tmpfs " in mounts
    assert int(Path("/proc/sys/vm/nr_hugepages").read_text()) == 8


def test_modules_load_from_the_kernel_package() -> None:
    load_module("ublk_drv")
    assert Path("/sys/module/ublk_drv").is_dir()
    assert Path("/dev/ublk-control").exists()
