"""Field enums: checked when a block class is compiled, built into IntEnum classes on first use.

Building an `enum.IntEnum` costs about 0.7 ms a class, so a vendor map with thousands of enumerated fields
keeps only the checked source until a field's enum is asked for."""

from __future__ import annotations

import enum
import keyword
from collections.abc import Mapping
from typing import Any

from .access import RegisterDefinitionError


def pattern_values(text: str, fwidth: int) -> list[int]:
    """Every value a binary pattern with don't-care bits matches: "0b1x" -> [2, 3]."""
    bits = text.strip().lower().removeprefix("0b").removeprefix("#").replace("_", "")
    if not bits or any(c not in "01x" for c in bits) or len(bits) > fwidth or bits.count("x") > 16:
        raise ValueError(text)
    values = [0]
    for c in bits:
        values = [v << 1 | b for v in values for b in ((0, 1) if c == "x" else (int(c),))]
    return values


ENUM_RESERVED = frozenset({"mro", "name", "value"}) | {n for n in dir(int) if not n.startswith("_")}
# a checked enum not built yet: (class name, name -> value, extra value -> name from don't-care patterns)
EnumSource = type[enum.IntEnum] | tuple[str, dict[str, int], dict[int, str]] | None


def check_enum(spec: Any, fname: str, fwidth: int, where: str) -> EnumSource:
    """Check an enum declaration (names, values within `fwidth` bits); the class is built on first use."""
    if spec is None:
        return None
    if isinstance(spec, type) and issubclass(spec, enum.IntEnum):
        for member in spec:
            if not 0 <= int(member) < 1 << fwidth:
                raise RegisterDefinitionError(f"{where}: enum value {member.name}={int(member)} does not fit in "
                                              f"{fwidth} bit{'s' if fwidth > 1 else ''}")
        return spec
    if not isinstance(spec, Mapping):
        raise RegisterDefinitionError(f"{where}: enum must be an IntEnum subclass or a mapping name -> value")
    values: dict[str, int] = {}
    extra: dict[int, str] = {}
    for name, value in spec.items():
        if not isinstance(name, str) or not name.isidentifier() or name.startswith("_") or keyword.iskeyword(name) \
                or name in ENUM_RESERVED:
            raise RegisterDefinitionError(f"{where}: bad enum {dict(spec)!r}: {name!r} is not a usable member name")
        if isinstance(value, str):
            try:
                matched = [int(value, 0)]
            except ValueError:
                matched = []
            try:
                matched = matched or pattern_values(value, fwidth)
            except ValueError:
                raise RegisterDefinitionError(f"{where}: enum value {name}={value!r} is not an int or a "
                                              "binary pattern such as '0b1x'") from None
            values[name] = matched[0]
            extra.update((v, name) for v in matched[1:])
        elif isinstance(value, bool) or not isinstance(value, int):
            raise RegisterDefinitionError(f"{where}: bad enum {dict(spec)!r}: value {value!r} is not an int")
        else:
            values[name] = value
    for name, value in values.items():
        if not 0 <= value < 1 << fwidth:
            raise RegisterDefinitionError(f"{where}: enum value {name}={value} does not fit in "
                                          f"{fwidth} bit{'s' if fwidth > 1 else ''}")
    return fname, values, extra


def build_enum(src: EnumSource) -> type[enum.IntEnum]:
    """The IntEnum a checked source stands for, made now if it was a mapping."""
    if isinstance(src, type):
        return src
    assert src is not None
    made: Any = enum.IntEnum(src[0], src[1])  # type: ignore[misc]
    return made


def enum_members(src: EnumSource, cls: type[enum.IntEnum] | None) -> dict[int, enum.IntEnum]:
    """Value -> member, every value a don't-care pattern matches included."""
    if cls is None:
        return {}
    out: dict[int, enum.IntEnum] = {int(m): m for m in cls}
    if isinstance(src, tuple):   # don't-care patterns: every value matched names the member
        for value, mname in src[2].items():
            out.setdefault(value, cls[mname])
    return out
