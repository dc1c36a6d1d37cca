"""The harness's host side without booting: the bzImage's ELF, module load order, the accelerator choice,
the QEMU command line."""

from __future__ import annotations

import gzip
import lzma
import struct
from pathlib import Path

import pytest

from hwsim.linux import LinuxGuestError, Machine, fetch_kernel, machine
from hwsim.linux.kernel import Kernel, extract_vmlinux

ELF = b"\x7fELF" + bytes(60)


def bzimage(payload: bytes, setup_sects: int = 3) -> bytes:
    image = bytearray((setup_sects + 1) * 512 + 64 + len(payload))
    image[0x1F1] = setup_sects
    image[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", image, 0x206, 0x20F)
    struct.pack_into("<II", image, 0x248, 64, len(payload))
    start = (setup_sects + 1) * 512 + 64
    image[start:start + len(payload)] = payload
    return bytes(image)


@pytest.mark.parametrize("compress", [gzip.compress, lambda d: lzma.compress(d, lzma.FORMAT_XZ)],
                         ids=["gzip", "xz"])
def test_vmlinux_comes_out_of_the_bzimage_payload(compress) -> None:
    assert extract_vmlinux(bzimage(compress(ELF))) == ELF


def test_zstd_payload_with_the_kernels_size_trailer_decompresses() -> None:
    import subprocess

    packed = subprocess.run(["zstd", "-q", "-c"], input=ELF, capture_output=True, check=True).stdout
    assert extract_vmlinux(bzimage(packed + struct.pack("<I", len(ELF)))) == ELF


def test_not_a_bzimage_is_refused_clearly() -> None:
    with pytest.raises(LinuxGuestError, match="HdrS"):
        extract_vmlinux(bytes(4096))
    with pytest.raises(LinuxGuestError, match="unknown compression"):
        extract_vmlinux(bzimage(b"garbage!" * 8))


def fake_kernel(tmp_path: Path) -> Kernel:
    mods = tmp_path / "root" / "lib" / "modules" / "6.12.0-test"
    mods.mkdir(parents=True)
    (mods / "modules.dep").write_text(
        "kernel/fs/9p/9p.ko.xz: kernel/net/9p/9pnet.ko.xz kernel/fs/netfs/netfs.ko.xz\n"
        "kernel/net/9p/9pnet_virtio.ko.xz: kernel/net/9p/9pnet.ko.xz kernel/fs/netfs/netfs.ko.xz\n"
        "kernel/net/9p/9pnet.ko.xz: kernel/fs/netfs/netfs.ko.xz\n"
        "kernel/fs/netfs/netfs.ko.xz:\n"
        "kernel/drivers/vfio/pci/vfio-pci.ko.xz: kernel/drivers/vfio/vfio.ko.xz\n"
        "kernel/drivers/vfio/vfio.ko.xz:\n")
    return Kernel("pkg", "1", "6.12.0-test", tmp_path / "root", tmp_path / "vmlinux")


def test_module_dependencies_load_first(tmp_path: Path) -> None:
    kernel = fake_kernel(tmp_path)
    assert kernel.module_deps("9p") == ["kernel/fs/netfs/netfs.ko.xz", "kernel/net/9p/9pnet.ko.xz",
                                        "kernel/fs/9p/9p.ko.xz"]
    assert kernel.module_deps("vfio_pci")[-1] == "kernel/drivers/vfio/pci/vfio-pci.ko.xz"  # - and _ alike
    with pytest.raises(LinuxGuestError, match="no module 'ublk_drv'"):
        kernel.module_deps("ublk_drv")


def test_kvm_pvm_means_tcg_whatever_dev_kvm_says(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MMIOTK_LINUX_ACCEL", raising=False)
    monkeypatch.setattr(machine, "KVM_PVM", tmp_path)  # present
    assert machine.pick_accel() == "tcg"
    monkeypatch.setenv("MMIOTK_LINUX_ACCEL", "kvm")
    assert machine.pick_accel() == "kvm"
    monkeypatch.setenv("MMIOTK_LINUX_ACCEL", "hvf")
    with pytest.raises(LinuxGuestError, match="MMIOTK_LINUX_ACCEL"):
        machine.pick_accel()


def test_the_command_line_boots_vmlinux_and_shares_the_root_read_only(tmp_path: Path) -> None:
    kernel = fake_kernel(tmp_path)
    args = Machine("m", cmdline=("memmap=16M$0x8000000",), devices=("-device", "edu")).qemu_args(
        kernel, tmp_path / "initrd", tmp_path / "share", tmp_path / "console", "tcg")
    assert args[args.index("-kernel") + 1] == str(tmp_path / "vmlinux")
    assert args[args.index("-accel") + 1] == "tcg"
    assert "local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap" in args
    append = args[args.index("-append") + 1]
    assert f"mmiotk.share={tmp_path / 'share'}" in append and "memmap=16M$0x8000000" in append
    assert args.index("edu") < args.index("virtio-9p-pci,fsdev=hostroot,mount_tag=root")  # an IOMMU goes first


def test_the_real_kernel_package_has_what_the_guest_tests_need() -> None:
    kernel = fetch_kernel()
    config = kernel.config
    assert config["CONFIG_PVH"] == "y"
    for option in ("CONFIG_9P_FS", "CONFIG_NET_9P_VIRTIO", "CONFIG_UIO_PCI_GENERIC", "CONFIG_BLK_DEV_UBLK"):
        assert config[option] == "m", option
    assert kernel.vmlinux.read_bytes()[:4] == b"\x7fELF"
