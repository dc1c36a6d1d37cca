"""`python -m hwsim.vhost_user model|fence --socket PATH --size 32M [--image FILE]`: serve the behavioural
virtio-blk model (or the fence, which fails every request) on a vhost-user socket until the front end
disconnects."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from hwsim.media import BlockMedia
from hwsim.models.virtio_blk import VirtioBlkModel

from .backend import VhostUserBackend, listen
from .fence import FencedBlk
from .messages import VhostUserError
from .model_target import ModelTarget


def _size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(text[:-1]) * units[text[-1].upper()] if text[-1:].upper() in units else int(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hwsim.vhost_user")
    parser.add_argument("device", choices=["model", "fence"])
    parser.add_argument("--socket", required=True)
    parser.add_argument("--size", type=_size, default=32 << 20, help="disk size without --image (bytes, K/M/G)")
    parser.add_argument("--image", help="a disk image file to serve")
    parser.add_argument("--ready", help="a file to write this process's PID to once the socket listens")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, stream=sys.stderr,
                        format="vhost-user %(levelname)s: %(message)s")
    media = BlockMedia(args.image) if args.image else BlockMedia(size=args.size)
    kind = FencedBlk if args.device == "fence" else VirtioBlkModel
    model = kind(media, name=f"virtio-blk-{args.device}")
    listener = listen(args.socket)
    if args.ready:
        with open(args.ready, "w") as out:
            out.write(f"{os.getpid()}\n")     # the process that serves: the one to kill
    try:
        VhostUserBackend(ModelTarget(model), args.socket).serve(listener)
    except VhostUserError as exc:
        logging.error("%s", exc)
        return 1
    finally:
        listener.close()
        model.shutdown()
        media.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
