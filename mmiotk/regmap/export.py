"""Exports of a RegisterMap: the schema dict (YAML/JSON), Markdown register tables, a C header."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from ..registers import RegisterSpec

if TYPE_CHECKING:
    from . import RegisterMap


def map_to_dict(regmap: RegisterMap) -> dict[str, Any]:
    """The map in the schema's own form: loading its YAML/JSON gives the same registers, fields, access
    types, side effects, accesswidth pieces and memories."""
    blocks = []
    for bname, cls in regmap.blocks.items():
        registers = []
        for spec in cls._specs.values():
            reg: dict[str, Any] = {"name": spec.short, "offset": spec.offset, "width": spec.width,
                                   "access": spec.access.value, "reset": spec.reset}
            if spec.reset_mask != spec.all:
                reg["reset_mask"] = spec.reset_mask
            if spec.accesswidth != spec.width:
                reg["accesswidth"] = spec.accesswidth
            if spec.count > 1:
                reg["count"] = spec.count
                reg["stride"] = spec.stride
            if spec.alternate_of:
                reg["alternate_of"] = spec.alternate_of
            if spec.doc:
                reg["description"] = spec.doc
            fields = []
            for f in spec.fields.values():
                fd: dict[str, Any] = {"name": f.name, "lsb": f.lsb, "width": f.width}
                if f.access is not spec.access:
                    fd["access"] = f.access.value
                if f.enum is not None:
                    fd["enum"] = {m.name: int(m) for m in f.enum}
                if f.write_enum is not None and f.write_enum is not f.enum:
                    fd["write_enum"] = {m.name: int(m) for m in f.write_enum}
                for effect in ("precious", "swacc", "swmod", "singlepulse"):
                    if getattr(f, effect):
                        fd[effect] = True
                if f.doc:
                    fd["description"] = f.doc
                fields.append(fd)
            if fields:
                reg["fields"] = fields
            registers.append(reg)
        block: dict[str, Any] = {"name": bname}
        if regmap.bases.get(bname):
            block["base"] = regmap.bases[bname]
        block["registers"] = registers
        if cls._memories:
            block["memories"] = [{"name": n, "offset": m.offset, "size": m.size, "width": m.width,
                                  "access": m.access.value, **({"description": m.doc} if m.doc else {})}
                                 for n, m in cls._memories.items()]
        blocks.append(block)
    out: dict[str, Any] = {"name": regmap.name}
    if regmap.description:
        out["description"] = regmap.description
    out["blocks"] = blocks
    return out


# --- Markdown -------------------------------------------------------------------------------------------
def _md(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _hex(value: int, width: int) -> str:
    return f"{value:#0{width // 4 + 2}x}"


def to_markdown(regmap: RegisterMap) -> str:
    out = [f"# Register map `{regmap.name}`", ""]
    if regmap.description:
        out += [_md(regmap.description), ""]
    for bname, cls in regmap.blocks.items():
        base = regmap.bases.get(bname, 0)
        out += [f"## {bname}" + (f" (base {base:#x})" if base else ""), ""]
        out += ["| offset | register | width | access | reset | description |",
                "|---|---|---|---|---|---|"]
        for spec in cls._specs.values():
            name = spec.short if spec.count == 1 else f"{spec.short}[{spec.count}]"
            offset = f"{spec.offset:#05x}" + (f" + i*{spec.stride:#x}" if spec.count > 1 else "")
            out.append(f"| {offset} | [{name}](#{_anchor(bname, spec.short)}) | {spec.width} | "
                       f"{spec.access.value} | {_hex(spec.reset, spec.width)} | {_md(spec.doc)} |")
        out.append("")
        for spec in cls._specs.values():
            out += _register_md(bname, spec)
    return "\n".join(out).rstrip() + "\n"


def _anchor(block: str, reg: str) -> str:
    return re.sub(r"[^a-z0-9-]", "", f"{block}-{reg}".lower())


def _register_md(block: str, spec: RegisterSpec) -> list[str]:
    title = f"### <a id=\"{_anchor(block, spec.short)}\"></a>{block}.{spec.short}"
    where = f"offset {spec.offset:#x}"
    if spec.count > 1:
        where += f", {spec.count} registers, stride {spec.stride:#x}"
    lines = [title, "", f"{where}, {spec.width} bits, {spec.access.value}, reset {_hex(spec.reset, spec.width)}"
             + (f". {_md(spec.doc)}" if spec.doc else ""), ""]
    if spec.fields:
        lines += ["| bits | field | access | reset | values | description |", "|---|---|---|---|---|---|"]
        for f in sorted(spec.fields.values(), key=lambda f: -f.lsb):
            bits = f"[{f.msb}:{f.lsb}]" if f.width > 1 else f"[{f.lsb}]"
            values = ", ".join(f"{m.name}={int(m)}" for m in f.enum) if f.enum else ""
            lines.append(f"| {bits} | {f.name} | {f.access.value} | {f.reset:#x} | {values} | {_md(f.doc)} |")
        lines.append("")
    return lines


# --- C header -------------------------------------------------------------------------------------------
def _c_ident(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", text).upper()


def to_c_header(regmap: RegisterMap, guard: str | None = None) -> str:
    guard = guard or f"{_c_ident(regmap.name)}_REGS_H"
    out = [f"/* Register map \"{regmap.name}\"" + (f" from {regmap.source}" if regmap.source else "")
           + ". Generated by mmiotk: do not edit. */",
           f"#ifndef {guard}", f"#define {guard}", ""]
    for bname, cls in regmap.blocks.items():
        b = _c_ident(bname)
        out.append(f"/* ---- {bname} ---- */")
        out.append(f"#define {b}_BASE {regmap.bases.get(bname, 0):#x}u")
        for spec in cls._specs.values():
            out += _register_c(b, spec)
        out.append("")
    out.append(f"#endif /* {guard} */")
    return "\n".join(out) + "\n"


def _register_c(b: str, spec: RegisterSpec) -> list[str]:
    r = f"{b}_{_c_ident(spec.short)}"
    u = "ull" if spec.width == 64 else "u"
    lines = []
    if spec.doc:
        lines.append(f"/* {spec.short}: {' '.join(spec.doc.split()).replace('*/', '* /')} */")
    if spec.count > 1:
        lines.append(f"#define {r}_OFFSET(i) ({spec.offset:#x}u + (i) * {spec.stride:#x}u)")
        lines.append(f"#define {r}_COUNT {spec.count}u")
        lines.append(f"#define {r}_STRIDE {spec.stride:#x}u")
    else:
        lines.append(f"#define {r}_OFFSET {spec.offset:#x}u")
    lines.append(f"#define {r}_WIDTH {spec.width}u")
    lines.append(f"#define {r}_RESET {spec.reset:#x}{u}")
    for f in spec.fields.values():
        fl = f"{r}_{_c_ident(f.name)}"
        lines.append(f"#define {fl}_SHIFT {f.lsb}u")
        lines.append(f"#define {fl}_MASK {f.mask:#x}{u}")
        if f.enum is not None:
            for m in f.enum:
                member = _c_ident(m.name)
                if member in ("SHIFT", "MASK"):  # would clash with the field's own defines
                    member = f"V_{member}"
                lines.append(f"#define {fl}_{member} {int(m):#x}{u}")
    return lines
