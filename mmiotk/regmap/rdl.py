"""SystemRDL import through systemrdl-compiler, into the schema form.

Blocks: the top addrmap's child addrmaps, each a block at its absolute address; registers directly in the
top addrmap form a block named after it. Regfiles are flattened (`<regfile>_<reg>`; regfile arrays
unrolled as `<regfile><i>_<reg>`); register arrays stay arrays (count, stride).

Field access: `sw = r` -> ro (`onread = rclr` -> rc), `sw = w`/`w1` -> wo, `sw = rw`/`rw1` -> rw
(`onwrite = woclr` -> w1c, `onwrite = woset` -> w1s, `onread = rclr` -> rc), `sw = na` -> rsvdz. Other
side effects (wot, wzc, rset, ...) have no equivalent here and are refused by name rather than imported
with the wrong semantics. Reset values and `encode` enums are kept; `desc` becomes the description.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from . import RegmapError

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def load_rdl(path: str | os.PathLike[str]) -> dict[str, Any]:
    source = os.fspath(path)
    try:
        from systemrdl import RDLCompileError, RDLCompiler
        from systemrdl.messages import MessagePrinter
    except ImportError:  # pragma: no cover - the dependency is installed in the project venv
        raise RegmapError("SystemRDL needs the systemrdl-compiler package (pip install systemrdl-compiler)",
                          source) from None

    messages: list[str] = []

    class Collect(MessagePrinter):
        def emit_message(self, lines: list[str]) -> None:
            messages.append(_ANSI.sub("", "\n".join(lines)))

    compiler = RDLCompiler(message_printer=Collect())
    try:
        compiler.compile_file(str(Path(path)))
        root = compiler.elaborate()
    except RDLCompileError:
        detail = "\n".join(m for m in messages if "error" in m.lower()) or "\n".join(messages)
        raise RegmapError(f"SystemRDL compilation failed:\n{detail}", source) from None
    return _convert(root.top, source)


def _convert(top: Any, source: str) -> dict[str, Any]:
    from systemrdl.node import AddrmapNode

    blocks: list[dict[str, Any]] = []
    own: list[dict[str, Any]] = []
    for child in top.children(unroll=True):
        if isinstance(child, AddrmapNode):
            name = child.inst_name + (str(child.current_idx[0]) if child.current_idx else "")
            regs: list[dict[str, Any]] = []
            _collect(child, child.absolute_address, "", regs, source, name)
            blocks.append({"name": name, "base": child.absolute_address,
                           "description": _desc(child), "registers": regs})
    _collect(top, top.absolute_address, "", own, source, top.inst_name, skip_addrmaps=True)
    if own or not blocks:
        blocks.insert(0, {"name": top.inst_name, "base": top.absolute_address, "description": _desc(top),
                          "registers": own})
    return {"name": top.inst_name, "description": _desc(top), "blocks": blocks}


def _desc(node: Any) -> str:
    text = node.get_property("desc") or ""
    name = node.get_property("name")
    if not text and name and name != node.inst_name:
        text = name
    return " ".join(str(text).split())


def _collect(node: Any, base: int, prefix: str, out: list[dict[str, Any]], source: str, block: str,
             skip_addrmaps: bool = False) -> None:
    from systemrdl.node import AddrmapNode, RegfileNode, RegNode

    for child in node.children(unroll=False):
        if isinstance(child, RegNode):
            out.append(_register(child, base, prefix, source, block))
        elif isinstance(child, RegfileNode):
            for element in _unroll(node, child):
                suffix = "" if element.current_idx is None else "".join(str(i) for i in element.current_idx)
                _collect(element, base, f"{prefix}{element.inst_name}{suffix}_", out, source, block)
        elif isinstance(child, AddrmapNode) and not skip_addrmaps:
            raise RegmapError(f"block {block}: nested addrmap {child.inst_name} inside a block is not supported; "
                              "make it a top-level block or a regfile", source)


def _unroll(parent: Any, child: Any) -> list[Any]:
    return [c for c in parent.children(unroll=True) if c.inst_name == child.inst_name]


def _register(reg: Any, base: int, prefix: str, source: str, block: str) -> dict[str, Any]:
    name = f"{prefix}{reg.inst_name}"
    parent_addr = reg.parent.absolute_address if reg.parent.current_idx is not None or not reg.parent.is_array \
        else reg.parent.raw_absolute_address
    offset = parent_addr + reg.raw_address_offset - base
    width = int(reg.get_property("regwidth"))
    fields = []
    reset = 0
    for f in reg.fields():
        access = _field_access(f, f"block {block}, register {name}, field {f.inst_name}", source)
        fd: dict[str, Any] = {"name": f.inst_name, "lsb": f.lsb, "width": f.width, "access": access}
        freset = f.get_property("reset")
        if isinstance(freset, int):
            reset |= freset << f.lsb
            fd["reset"] = freset
        encode = f.get_property("encode")
        if encode is not None:
            fd["enum"] = {m.name: int(m.value) for m in encode}
        desc = _desc(f)
        if desc:
            fd["description"] = desc
        fields.append(fd)
    accesses = {fd["access"] for fd in fields}
    access = accesses.pop() if len(accesses) == 1 else "rw"
    out: dict[str, Any] = {"name": name, "offset": offset, "width": width, "access": access, "reset": reset,
                           "description": _desc(reg), "fields": fields}
    if reg.is_array:
        dims = reg.array_dimensions
        count = 1
        for d in dims:
            count *= d
        out["count"] = count
        out["stride"] = reg.array_stride
    return out


def _field_access(f: Any, where: str, source: str) -> str:
    from systemrdl.rdltypes import AccessType, OnReadType, OnWriteType

    sw = f.get_property("sw")
    onread = f.get_property("onread")
    onwrite = f.get_property("onwrite")
    if onread is not None and onread is not OnReadType.rclr:
        raise RegmapError(f"{where}: onread = {onread.name} has no mmiotk access type (supported: rclr)", source)
    if onwrite is not None and onwrite not in (OnWriteType.woclr, OnWriteType.woset):
        raise RegmapError(f"{where}: onwrite = {onwrite.name} has no mmiotk access type "
                          "(supported: woclr, woset)", source)
    if sw is AccessType.na:
        return "rsvdz"
    if onread is OnReadType.rclr:
        if onwrite is not None:
            raise RegmapError(f"{where}: onread = rclr together with onwrite = {onwrite.name} is not supported",
                              source)
        return "rc"
    if sw in (AccessType.r,):
        return "ro"
    if sw in (AccessType.w, AccessType.w1):
        return "wo"
    if onwrite is OnWriteType.woclr:
        return "w1c"
    if onwrite is OnWriteType.woset:
        return "w1s"
    return "rw"
