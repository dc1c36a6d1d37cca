"""Device capability bits beyond the block protocol's flags, with Fuchsia's values (block.h):
TRIM_SUPPORT 0x8 (the device implements TRIM) and FUA_SUPPORT 0x10 (it honours FORCE_ACCESS itself).

`BlockFlag` will carry them as members; until then devices set the raw bits and servers test them here.
"""

from __future__ import annotations

from .protocol import BlockFlag, BlockInfo

FLAG_TRIM_SUPPORT = int(getattr(BlockFlag, "TRIM_SUPPORT", 0x8))
FLAG_FUA_SUPPORT = int(getattr(BlockFlag, "FUA_SUPPORT", 0x10))


def has_trim(info: BlockInfo) -> bool:
    return bool(int(info.flags) & FLAG_TRIM_SUPPORT)


def has_fua(info: BlockInfo) -> bool:
    return bool(int(info.flags) & FLAG_FUA_SUPPORT)
