"""What every importer shares: strict/lenient problem reporting, size limits, and the spelling of names.

Strict (the default, and what the project's own maps use): a vendor mistake is a RegmapError. Lenient
(`load(path, strict=False)`, for vendor files): the mistake is repaired the way vendor tools repair it
(the broken field or register is dropped, a value is clipped, a duplicate renamed) and reported as a
RegmapWarning naming the file, peripheral, register and field; the map keeps the list as `warnings`.

Names that are not Python identifiers are spelt (`spell`): characters other than letters, digits and `_`
become `_`; a name starting with `_` or a digit gets the prefix `x` (`_name_` -> `x_name_`, `2ND` -> `x2ND`);
a Python keyword gets a trailing `_` (`in` -> `in_`), as does an enum member name `enum` reserves (`mro`,
`name`, `value` -> `mro_`, ...). The original name is kept as the register's or field's `label`.

Size limits stop hostile files (a `dim` of 0xFFFFFFFF, nested cluster dims, huge RDL arrays, YAML alias
bombs) before they take memory: each is a RegmapError naming what is too big and the limit.
"""

from __future__ import annotations

import keyword
import re
import warnings
from dataclasses import dataclass

from ..registers.enums import ENUM_RESERVED
from . import RegmapError

_NOT_IDENT = re.compile(r"\W", re.ASCII)


class RegmapWarning(UserWarning):
    """A vendor mistake that lenient loading repaired (the message says what and where)."""


@dataclass(frozen=True)
class Limits:
    """Upper bounds on what one map may expand to."""

    max_dim: int = 1 << 16             # elements of one dim / array
    max_registers: int = 1 << 20       # registers after every dim and array is expanded
    max_fields: int = 1 << 22          # fields, likewise
    max_file_bytes: int = 256 << 20    # decompressed input
    max_yaml_nodes: int = 1 << 20      # YAML nodes after aliases are expanded

    def check_dim(self, count: int, where: str, what: str, source: str) -> None:
        if count > self.max_dim:
            raise RegmapError(f"{where}: {what} {count:#x} is over the limit of {self.max_dim} elements "
                              "(Limits.max_dim)", source)


class Problems:
    """Collects vendor mistakes: raises in strict mode, warns (and keeps the list) in lenient mode."""

    def __init__(self, source: str, strict: bool, limits: Limits) -> None:
        self.source = source
        self.strict = strict
        self.limits = limits
        self.warnings: list[str] = []
        self.registers = 0
        self.fields = 0

    def __call__(self, where: str, message: str, repair: str = "") -> None:
        text = f"{where}: {message}" if where else message
        if self.strict:
            raise RegmapError(text + " (load with strict=False to repair such vendor mistakes with a warning)",
                              self.source)
        full = f"{self.source}: {text}" + (f"; {repair}" if repair else "")
        self.warnings.append(full)
        warnings.warn(full, RegmapWarning, stacklevel=4)

    def count(self, registers: int, fields: int, where: str) -> None:
        self.registers += registers
        self.fields += fields
        lim = self.limits
        if self.registers > lim.max_registers:
            raise RegmapError(f"{where}: the map expands to more than {lim.max_registers} registers "
                              "(Limits.max_registers)", self.source)
        if self.fields > lim.max_fields:
            raise RegmapError(f"{where}: the map expands to more than {lim.max_fields} fields "
                              "(Limits.max_fields)", self.source)


def spell(name: str) -> str:
    """The Python spelling of a hardware name (see the module docstring)."""
    out = _NOT_IDENT.sub("_", name.strip()) or "x"
    if out[0] == "_" or out[0].isdigit():
        out = "x" + out
    if keyword.iskeyword(out):
        out += "_"
    return out


def spell_member(name: str) -> str:
    """An enum member's spelling: as `spell`, and names `enum.IntEnum` reserves get a trailing `_`."""
    out = spell(name)
    return out + "_" if out in ENUM_RESERVED else out


def unique(name: str, taken: set[str], suffix: str) -> str:
    """`name`, or `name_<suffix>` (then `_2`, `_3`, ...) when taken; records the result."""
    if name not in taken:
        taken.add(name)
        return name
    candidate = f"{name}_{suffix}"
    n = 2
    while candidate in taken:
        candidate = f"{name}_{suffix}_{n}"
        n += 1
    taken.add(candidate)
    return candidate
