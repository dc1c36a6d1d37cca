"""A block FIFO client process for the multi-client tests: `verify` or `hang` mode."""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from drivers.block_services.client import BlockClient
from drivers.block_services.fifo import FifoFlag, FifoOp, Request


def verify(path: str, ident: int, first: int, nblocks: int, rounds: int, dma: int = 0) -> dict[str, object]:
    """Write a pattern only this client knows to its own blocks, read it back three ways, compare. With
    `dma` the buffer is DMA memory the server allocates, else a memfd this process attaches."""
    with BlockClient(path) as blk:
        bs = blk.info.block_size
        buf = blk.alloc_dma(2 * nblocks * bs) if dma else blk.attach(2 * nblocks * bs)
        rng = np.random.default_rng(ident)
        checked = 0
        for rnd in range(rounds):
            data = rng.integers(0, 256, nblocks * bs, dtype=np.uint8)
            buf.array[:nblocks * bs] = data
            if rnd % 3 == 0:  # one request per block, pipelined
                reqs = [Request(FifoOp.WRITE, 0, blk.next_reqid(), 0, buf.vmoid, 1, i, first + i)
                        for i in range(nblocks)]
            elif rnd % 3 == 1:  # one group
                reqs = [Request(FifoOp.WRITE, FifoFlag.GROUP_ITEM | (FifoFlag.GROUP_LAST if i == nblocks - 1
                                                                      else 0),
                                blk.next_reqid(), ident % 8, buf.vmoid, 1, i, first + i)
                        for i in range(nblocks)]
            else:  # one big request
                reqs = [Request(FifoOp.WRITE, 0, blk.next_reqid(), 0, buf.vmoid, nblocks, 0, first)]
            for response in blk.transact(reqs):
                blk.check(response, f"client {ident} write round {rnd}")
            buf.array[nblocks * bs:] = 0
            blk.read(buf, first, nblocks, vmo_offset=nblocks)
            if not np.array_equal(buf.array[nblocks * bs:], data):
                return {"ok": False, "round": rnd, "ident": ident}
            checked += nblocks * bs
        return {"ok": True, "ident": ident, "checked": checked, "vmoid": buf.vmoid, "dma_addr": buf.dma_addr}


def hang(path: str, block: int) -> None:
    """Send a read and never collect it; the test kills this process while the op is held."""
    blk = BlockClient(path)
    buf = blk.attach(1 << 16)
    blk.send([Request(FifoOp.READ, 0, 1, 0, buf.vmoid, 8, 0, block)])
    print(json.dumps({"sent": True}), flush=True)
    time.sleep(60)


def main() -> int:
    mode, path, *rest = sys.argv[1:]
    if mode == "verify":
        print(json.dumps(verify(path, *map(int, rest))), flush=True)
    elif mode == "hang":
        hang(path, int(rest[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
