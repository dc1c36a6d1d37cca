"""`mmiotk demo`: the whole stack in one run.

First the board and bus tour (`board_demo`: a board description booted, drivers bound, the address map),
then the block demo on QEMU's own virtio-blk device (`block_demo`: the virtio-blk driver bound through the
platform bus, a real ext4 image written and read back, timings). It lives in hwsim.integration because
only there may the drivers and a target to run them on be imported together.
"""

from __future__ import annotations

import argparse
import sys

from hwsim.integration.block_demo import run_blk_demo
from hwsim.integration.board_demo import DEFAULT_BOARD, run_demo
from hwsim.qemu import QemuSpace


def _run(args: argparse.Namespace) -> int:
    status = run_demo(args.board, shm=args.shm)
    if args.no_qemu:
        return status
    print("\n== virtio-blk on QEMU's device model, through the same bus and driver model ==", flush=True)
    return status | run_blk_demo(QemuSpace, sys.stdout, image_mib=args.image_mib)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("demo", help="boot a board, bind drivers, then drive QEMU's virtio-blk with the driver")
    parser.add_argument("--board", default=str(DEFAULT_BOARD), help="board description, YAML or JSON")
    parser.add_argument("--shm", action="store_true", help="back RAM with a /dev/shm file, as QEMU's guest RAM is")
    parser.add_argument("--image-mib", type=int, default=16, help="size of the ext4 image the block demo writes")
    parser.add_argument("--no-qemu", action="store_true", help="only the board and bus tour")
    parser.set_defaults(func=_run)
