"""CMSIS-SVD fields into schema fields: bit positions, access types, enumerations.

Why apart from the importer (svd.py): SVD spreads a field's meaning over access x modifiedWriteValues x
readAction (see `_ACCESS`) and over read/write enumeratedValues usages; mapping those onto mmiotk's access
types and `enum`/`write_enum` is one job, independent of where the register sits in the device.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from functools import partial
from typing import Any

from .checks import spell, spell_member, unique
from .svd_tree import SvdTree, child_text, dim_name, one_line

_ACCESS_SPELLINGS = {"read-only": "read-only", "write-only": "write-only", "read-write": "read-write",
                     "writeonce": "writeOnce", "read-writeonce": "read-writeOnce"}
_LOOSE_SPELLINGS = {"write": "write-only", "read": "read-only", "readwrite": "read-write", "rw": "read-write",
                    "ro": "read-only", "wo": "write-only"}
_WRITE_OPS = {None: "value", "modify": "value", "oneToClear": "1c", "oneToSet": "1s", "oneToToggle": "1t",
              "zeroToClear": "0c", "zeroToSet": "0s", "zeroToToggle": "0t", "clear": "c", "set": "s"}
# (write op, read op) -> access type of a read-write field
_ACCESS = {("value", ""): "rw", ("value", "c"): "wrc", ("value", "s"): "wrs",
           ("c", ""): "wc", ("c", "s"): "wcrs", ("s", ""): "ws", ("s", "c"): "wsrc",
           ("1c", ""): "w1c", ("1c", "s"): "w1crs", ("1s", ""): "w1s", ("1s", "c"): "w1src", ("1t", ""): "w1t",
           ("0c", ""): "w0c", ("0c", "s"): "w0crs", ("0s", ""): "w0s", ("0s", "c"): "w0src", ("0t", ""): "w0t"}


def fields(tree: SvdTree, reg: ET.Element, rprops: dict[str, Any], width: int, reset: int,
           where: str) -> list[dict[str, Any]]:
    """The schema fields of register `reg`, dims unrolled (overlaps, misfits and duplicate names: Problems)."""
    fcontainer = reg.find("fields")
    if fcontainer is None:
        return []
    out: list[dict[str, Any]] = []
    taken: set[str] = set()
    used: list[tuple[int, str, str]] = []   # mask, name, access
    for fe in fcontainer.findall("field"):
        fname = child_text(fe, "name") or "?"
        fwhere = f"{where}, field {fname}"
        fe = tree.derive(fe, partial(tree.find_in, fcontainer, tag="field", where=fwhere), fwhere)
        lsb0, fwidth = position(tree, fe, fwhere)
        dim = tree.dim(fe, fwhere)
        elements = [(fname, lsb0)] if dim is None else \
            [(dim_name(fname, idx), lsb0 + i * dim[1]) for i, idx in enumerate(dim[2])]
        for name, lsb in elements:
            ewhere = f"{where}, field {name}"
            if fwidth < 1:
                tree.problems(ewhere, f"width {fwidth}", "dropped the field")
                continue
            if lsb + fwidth > width:
                tree.problems(ewhere, f"bits [{lsb + fwidth - 1}:{lsb}] go beyond the register width "
                              f"({width} bits)", "dropped the field")
                continue
            fmask = ((1 << fwidth) - 1) << lsb
            access = access_type(tree, child_text(fe, "access") or rprops.get("access"),
                                 child_text(fe, "modifiedWriteValues") or rprops.get("modifiedWriteValues"),
                                 child_text(fe, "readAction") or rprops.get("readAction"), ewhere)
            clash = next((u for u in used if u[0] & fmask and not _complementary_accesses(u[2], access[0])), None)
            if clash is not None:
                tree.problems(ewhere, f"bits [{lsb + fwidth - 1}:{lsb}] overlap field {clash[1]}",
                              "dropped the field")
                continue
            ident = spell(name)
            if ident in taken:
                tree.problems(ewhere, "a field of this name is declared already",
                              f"renamed it {ident}_{lsb}")
            fd: dict[str, Any] = {"name": unique(ident, taken, str(lsb)), "lsb": lsb, "width": fwidth,
                                  "access": access[0]}
            if fd["name"] != name:
                fd["label"] = name
            if access[1]:
                fd["precious"] = True
            enums(tree, fe, fd, fwidth, ewhere)
            desc = one_line(child_text(fe, "description"))
            if desc:
                fd["description"] = desc
            used.append((fmask, fd["name"], access[0]))
            out.append(fd)
    return out


def position(tree: SvdTree, fe: ET.Element, where: str) -> tuple[int, int]:
    """(lsb, width) from whichever of SVD's three spellings the field uses."""
    bit_offset, bit_width = child_text(fe, "bitOffset"), child_text(fe, "bitWidth")
    lsb_text, msb_text, bit_range = child_text(fe, "lsb"), child_text(fe, "msb"), child_text(fe, "bitRange")
    if bit_offset is not None:
        lsb = tree.num(bit_offset, where, "bitOffset")
        return lsb, tree.num(bit_width, where, "bitWidth") if bit_width is not None else 1
    if lsb_text is not None and msb_text is not None:
        lsb = tree.num(lsb_text, where, "lsb")
        return lsb, tree.num(msb_text, where, "msb") - lsb + 1
    if bit_range is not None:
        m = re.fullmatch(r"\[\s*(\d+)\s*:\s*(\d+)\s*\]", bit_range)
        if not m:
            raise tree.error(where, f"bitRange {bit_range!r} is not [msb:lsb]")
        return int(m.group(2)), int(m.group(1)) - int(m.group(2)) + 1
    raise tree.error(where, "no bit position (bitOffset/bitWidth, lsb/msb or bitRange)")


def enums(tree: SvdTree, fe: ET.Element, fd: dict[str, Any], fwidth: int, where: str) -> None:
    """Set `enum` / `write_enum` of `fd` from the field's enumeratedValues (the first group of a usage wins)."""
    for group in fe.findall("enumeratedValues"):
        usage = child_text(group, "usage") or "read-write"
        group = tree.derive(group, partial(tree.find_enum, where=where), where)
        values = enum_values(tree, group, fwidth, where)
        if not values:
            continue
        keys = {"read": ("enum",), "write": ("write_enum",)}.get(usage, ("enum",))
        for key in keys:
            if key not in fd:
                fd[key] = values
    if "write_enum" in fd and fd.get("enum") == fd["write_enum"]:
        del fd["write_enum"]


def enum_values(tree: SvdTree, group: ET.Element, fwidth: int, where: str) -> dict[str, int | str]:
    """Member name -> value (or a `0b1x` pattern) of one enumeratedValues group."""
    out: dict[str, int | str] = {}
    taken: set[str] = set()
    for ev in group.findall("enumeratedValue"):
        name, value = child_text(ev, "name"), child_text(ev, "value")
        if name is None or value is None or (child_text(ev, "isDefault") or "").lower() == "true":
            continue
        ewhere = f"{where}, enum {name}"
        v = value.strip().lower()
        bits = v[1:] if v.startswith("#") else v[2:] if v.startswith("0b") else ""
        member: int | str
        if "x" in bits:   # don't-care bits: the value names every value it matches
            if len(bits) > fwidth:
                tree.problems(ewhere, f"value {value!r} is wider than the field ({fwidth} bits)",
                              "dropped the value")
                continue
            member = "0b" + bits
        else:
            member = tree.num(value, ewhere, "value")
            if member >= 1 << fwidth:
                tree.problems(ewhere, f"value {member:#x} does not fit in the field ({fwidth} bits)",
                              "dropped the value")
                continue
        ident = spell_member(name)
        if ident in taken:
            continue   # the same name twice: the first value names it
        taken.add(ident)
        out[ident] = member
    return out


def access_type(tree: SvdTree, access: str | None, mwv: str | None, read_action: str | None,
                where: str) -> tuple[str, bool]:
    """(mmiotk access type, precious) for SVD's access x modifiedWriteValues x readAction."""
    spelled = access or "read-write"
    svd = _ACCESS_SPELLINGS.get(spelled.lower())
    if svd is None:
        svd = _LOOSE_SPELLINGS.get(spelled.lower())
        if svd is None:
            raise tree.error(where, f"access {spelled!r} is not an SVD access type (read-only, write-only, "
                                    "read-write, writeOnce, read-writeOnce)")
        tree.problems(where, f"access {spelled!r} is not an SVD access type", f"read as {svd}")
    elif svd != spelled:
        tree.problems(where, f"access {spelled!r} is misspelt", f"read as {svd}")
    if mwv not in _WRITE_OPS:
        raise tree.error(where, f"modifiedWriteValues {mwv!r} is not an SVD value")
    if read_action not in (None, "clear", "set", "modify", "modifyExternal"):
        raise tree.error(where, f"readAction {read_action!r} is not an SVD value")
    precious = read_action in ("modify", "modifyExternal")
    read_op = {"clear": "c", "set": "s"}.get(read_action or "", "")
    write_op = _WRITE_OPS[mwv]
    if svd == "read-only":
        return {"": "ro", "c": "rc", "s": "rs"}[read_op], precious
    if svd == "writeOnce":
        return "wo1", precious
    if svd == "read-writeOnce":
        return "w1", precious
    if svd == "write-only" and write_op in ("value", "c", "s"):
        return {"value": "wo", "c": "woc", "s": "wos"}[write_op], precious
    # write-only with oneToClear & co. (an interrupt-clear register): the write semantics decide
    found = _ACCESS.get((write_op, read_op))
    if found is None:
        tree.problems(where, f"modifiedWriteValues {mwv} with readAction {read_action} has no access type",
                      "ignored the readAction")
        found = _ACCESS[(write_op, "")]
    return found, precious


def _complementary_accesses(a: str, b: str) -> bool:
    ro_like, wo_like = ("ro", "rc", "rs"), ("wo", "wo1", "woc", "wos")
    return (a in ro_like and b in wo_like) or (b in ro_like and a in wo_like)
