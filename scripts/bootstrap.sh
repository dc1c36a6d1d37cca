#!/usr/bin/env bash
# Idempotent set-up for a fresh machine: system packages (when root), a .venv, and the project in it.
# Safe to run again: each step checks first and does nothing when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

# gcc + python3-dev build the compiled accessor core; the cross compilers and binutils check its per-architecture
# barriers in the disassembly (tests/mmiotk/test_accessor_core.py). qemu-system-x86, busybox-static, cpio, kmod and
# zstd boot Debian's kernel for the Linux guest tests (hwsim.linux); nbd-client attaches the kernel's NBD client there.
APT_PACKAGES=(gcc python3-dev gcc-aarch64-linux-gnu gcc-riscv64-linux-gnu binutils-aarch64-linux-gnu
              binutils-riscv64-linux-gnu iverilog qemu-system-arm qemu-system-x86 qemu-utils libnbd-bin nbdkit fio
              e2fsprogs dosfstools busybox-static cpio kmod zstd nbd-client)
PYTHON=${PYTHON:-python3}

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "bootstrap: installing system packages: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        echo "bootstrap: missing system packages: ${missing[*]}" >&2
        echo "bootstrap: install them with: sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
fi

if [ ! -x .venv/bin/python ]; then
    echo "bootstrap: creating .venv"
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.mmiotk-installed
# Reinstall when the project's metadata or the compiled core's C sources changed (the core is built in place).
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ -n "$(find mmiotk/csrc -newer "$stamp" -print -quit)" ]; then
    echo "bootstrap: installing mmiotk[dev,sim] into .venv"
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e ".[dev,sim]"
    touch "$stamp"
fi
