"""Debian's kernel, fetched through apt into a cache and unpacked there; nothing is installed on the host.

`fetch_kernel()` picks the newest `linux-image-6.12.*+deb12-amd64-unsigned` the archive offers (6.12 has
ublk; Debian 12's default 6.1 does not), runs `apt-get download`, `dpkg -x` and `depmod -b` into
`cache_dir()/<package>_<version>/`, and extracts the uncompressed vmlinux from the bzImage: QEMU boots
its PVH entry directly, which under TCG saves the ~3 s the kernel's own decompressor takes. A file lock
makes concurrent fetches (several test sessions, several worktrees) wait for one download.
"""

from __future__ import annotations

import fcntl
import gzip
import lzma
import os
import re
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .errors import LinuxGuestError

PACKAGE_PATTERN = r"^linux-image-6\.12\.[0-9.]+\+deb12-amd64-unsigned$"
_PKG_RE = re.compile(PACKAGE_PATTERN)


@dataclass(frozen=True)
class Kernel:
    """One unpacked kernel package: `root` holds boot/ and lib/modules/<release>/ (depmod'd)."""

    package: str
    version: str
    release: str
    root: Path
    vmlinux: Path

    @property
    def modules_dir(self) -> Path:
        return self.root / "lib" / "modules" / self.release

    @property
    def config(self) -> dict[str, str]:
        """The kernel's build configuration: CONFIG_X -> 'y', 'm' or a value."""
        options: dict[str, str] = {}
        for line in (self.root / "boot" / f"config-{self.release}").read_text().splitlines():
            if line.startswith("CONFIG_") and "=" in line:
                key, value = line.split("=", 1)
                options[key] = value
        return options

    def module_path(self, name: str) -> Path:
        """The .ko(.xz) file of module `name` (dashes and underscores are the same to the kernel)."""
        return self.modules_dir / self.module_deps(name)[-1]

    def module_deps(self, name: str) -> list[str]:
        """`name` and everything it needs, in load order (dependencies first), as paths in modules.dep."""
        table: dict[str, list[str]] = {}
        for line in (self.modules_dir / "modules.dep").read_text().splitlines():
            path, _, deps = line.partition(":")
            table[_module_name(path)] = [path, *deps.split()]
        order: list[str] = []

        def visit(mod: str, chain: tuple[str, ...]) -> None:
            if mod not in table:
                raise LinuxGuestError(f"kernel {self.release}: no module {mod!r} in {self.modules_dir}/modules.dep"
                                      + (f" (needed by {chain[-1]})" if chain else ""))
            path, *deps = table[mod]
            for dep in reversed(deps):  # modules.dep lists the nearest dependency first
                visit(_module_name(dep), (*chain, mod))
            if path not in order:
                order.append(path)

        visit(name.replace("-", "_"), ())
        return order


def _module_name(path: str) -> str:
    base = path.rsplit("/", 1)[-1]
    return base.split(".ko", 1)[0].replace("-", "_")


def cache_dir() -> Path:
    """Where kernels and initramfs images are kept: $MMIOTK_LINUX_CACHE, else ~/.cache/mmiotk/linux."""
    explicit = os.environ.get("MMIOTK_LINUX_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mmiotk" / "linux"


@contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Hold an exclusive lock on `directory`/.lock (created if needed) for the block."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _run(cmd: list[str], what: str, cwd: Path | None = None, timeout: float = 900) -> str:
    try:
        done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise LinuxGuestError(f"{what}: {cmd[0]} is not installed (scripts/bootstrap.sh installs it)") from None
    except subprocess.TimeoutExpired:
        raise LinuxGuestError(f"{what}: {' '.join(cmd)} took longer than {timeout:g} s") from None
    if done.returncode != 0:
        raise LinuxGuestError(f"{what}: {' '.join(cmd)} exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    return done.stdout


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", version))


def pick_package() -> str:
    """$MMIOTK_LINUX_PACKAGE, else the newest 6.12 amd64 kernel package apt knows of."""
    explicit = os.environ.get("MMIOTK_LINUX_PACKAGE")
    if explicit:
        return explicit
    out = _run(["apt-cache", "search", "--names-only", PACKAGE_PATTERN], "finding Debian's 6.12 kernel")
    names = [line.split(" ", 1)[0] for line in out.splitlines()]
    names = [n for n in names if _PKG_RE.match(n)]
    if not names:
        raise LinuxGuestError("apt knows no package matching " + PACKAGE_PATTERN + " (run apt-get update; "
                              "bookworm's security or backports suite carries 6.12)")
    return max(names, key=_version_key)


def fetch_kernel(package: str | None = None, *, cache: Path | None = None) -> Kernel:
    """The kernel `package` (default: `pick_package()`), downloaded and unpacked once into the cache."""
    package = package or pick_package()
    cache = cache or cache_dir()
    with locked(cache):
        ready = [p for p in cache.glob(f"{package}_*") if (p / "ready").exists()]
        if ready:
            return _load(package, max(ready, key=lambda p: _version_key(p.name.split("_", 1)[1])))
        with tempfile.TemporaryDirectory(dir=cache, prefix=".download-") as tmp:
            work = Path(tmp)
            os.chmod(work, 0o755)  # apt's sandbox user may then write there; root downloads either way
            _run(["apt-get", "download", "-q", package], f"downloading {package}", cwd=work)
            debs = list(work.glob("*.deb"))
            if len(debs) != 1:
                raise LinuxGuestError(f"apt-get download {package} left {len(debs)} .deb files in {work}")
            version = _run(["dpkg-deb", "-f", str(debs[0]), "Version"], f"reading {debs[0]}").strip()
            target = cache / f"{package}_{version}"
            shutil.rmtree(target, ignore_errors=True)
            root = target / "root"
            root.mkdir(parents=True)
            _run(["dpkg", "-x", str(debs[0]), str(root)], f"unpacking {debs[0].name}")
        releases = [p.name for p in (root / "lib" / "modules").iterdir()]
        if len(releases) != 1:
            raise LinuxGuestError(f"{package}: expected one lib/modules/<release> in the package, got {releases}")
        _run(["depmod", "-b", str(root), releases[0]], f"depmod for {releases[0]}")
        bzimage = root / "boot" / f"vmlinuz-{releases[0]}"
        (target / "vmlinux").write_bytes(extract_vmlinux(bzimage.read_bytes()))
        (target / "ready").write_text(releases[0] + "\n")
        return _load(package, target)


def _load(package: str, target: Path) -> Kernel:
    release = (target / "ready").read_text().strip()
    version = target.name.split("_", 1)[1]
    return Kernel(package, version, release, target / "root", target / "vmlinux")


def extract_vmlinux(bzimage: bytes) -> bytes:
    """The ELF kernel inside an x86 bzImage (boot protocol >= 2.08: payload_offset/payload_length)."""
    if len(bzimage) < 0x260 or bzimage[0x202:0x206] != b"HdrS":
        raise LinuxGuestError("not an x86 bzImage: no 'HdrS' setup header at 0x202")
    protocol = struct.unpack_from("<H", bzimage, 0x206)[0]
    if protocol < 0x208:
        raise LinuxGuestError(f"bzImage boot protocol {protocol:#x} predates payload_offset (2.08)")
    setup_sects = bzimage[0x1F1] or 4
    offset, length = struct.unpack_from("<II", bzimage, 0x248)
    start = (setup_sects + 1) * 512 + offset
    payload = bzimage[start:start + length]
    if payload[:4] == b"\x28\xb5\x2f\xfd":  # zstd; the kernel appends the uncompressed size (4 bytes)
        elf = _run_bytes(["zstd", "-d", "-q", "-c"], payload[:-4], "decompressing the kernel (zstd)")
    elif payload[:6] == b"\xfd7zXZ\x00":
        elf = lzma.LZMADecompressor(lzma.FORMAT_XZ).decompress(payload)
    elif payload[:2] == b"\x1f\x8b":
        elf = gzip.decompress(payload)
    else:
        raise LinuxGuestError(f"bzImage payload has an unknown compression (magic {payload[:6].hex()})")
    if elf[:4] != b"\x7fELF":
        raise LinuxGuestError("the decompressed bzImage payload is not an ELF file")
    return elf


def _run_bytes(cmd: list[str], data: bytes, what: str) -> bytes:
    try:
        done = subprocess.run(cmd, input=data, capture_output=True, timeout=300, check=False)
    except FileNotFoundError:
        raise LinuxGuestError(f"{what}: {cmd[0]} is not installed (scripts/bootstrap.sh installs it)") from None
    if done.returncode != 0:
        raise LinuxGuestError(f"{what}: {' '.join(cmd)} exited {done.returncode}: "
                              f"{done.stderr.decode(errors='replace').strip()}")
    return done.stdout
