"""The register-map schema (pydantic), shared by YAML and JSON files and by the SystemRDL/SVD importers.

    name: uart
    blocks:
      - name: UART0
        base: 0x40001000        # optional: the block's address (C header, docs, multi-block decoding)
        registers:
          - name: LINECTRL
            offset: 0x4
            width: 32           # default 32
            access: rw          # any mmiotk.registers.Access (ro rw wo w1c w0c wc rc wrc ...); fields inherit it
            accesswidth: 32     # default: the width; a wider register is accessed in pieces of this width
            reset: 0            # default 0; a field's own reset overrides its bits
            reset_mask: 0xff    # default: every bit; the bits `reset` defines (the rest are hardware-driven)
            count: 1            # > 1 makes an array: REG[i] at offset + i * stride
            stride: 4           # default: the register's size
            alternate_of: OTHER # this register deliberately shares OTHER's bytes
            description: ...
            fields:
              - {name: PARITY, lsb: 0, width: 2, enum: {NONE: 0, ODD: 1, EVEN: 2}}
              - {name: STOPBITS, bits: "[3:2]"}    # or lsb + msb, or lsb + width (default width 1)
                # also: write_enum (values a write takes, when not the read ones), precious, swacc, swmod,
                # singlepulse (side effects, see mmiotk.registers.Field), label (the original hardware name)
        memories:               # memory regions of the block (SystemRDL mem): not registers
          - {name: BUF, offset: 0x1000, size: 0x400, width: 32, access: rw}

Integers may be written as YAML/JSON numbers or as strings ("0x40", "0b101", "1_000").
Unknown keys are errors (a misspelt `acess:` must not silently become `rw`).
"""

from __future__ import annotations

import keyword
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

AccessName = Literal["ro", "rw", "rc", "rs", "wrc", "wrs", "wc", "ws", "wsrc", "wcrs", "w1c", "w1s", "w1t", "w0c",
                     "w0s", "w0t", "w1src", "w1crs", "w0src", "w0crs", "wo", "woc", "wos", "w1", "wo1", "na",
                     "rsvdz"]
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_BITS = re.compile(r"^\s*\[?\s*(\d+)\s*(?::\s*(\d+)\s*)?\]?\s*$")


def _parse_int(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("a boolean is not an integer")
    if isinstance(value, float):
        raise ValueError(f"{value!r} is not an integer")
    if isinstance(value, str):
        try:
            return int(value.strip(), 0)
        except ValueError:
            raise ValueError(f"{value!r} is not an integer (decimal, 0x.., 0b.. or 0o..)") from None
    return value


def _parse_access(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _check_name(value: Any) -> Any:
    if isinstance(value, str) and (not _NAME.match(value) or keyword.iskeyword(value)):
        raise ValueError(f"{value!r} is not a usable name (a letter, then letters, digits or _)")
    return value


Int = Annotated[int, BeforeValidator(_parse_int)]
Name = Annotated[str, BeforeValidator(_check_name)]
Access = Annotated[AccessName, BeforeValidator(_parse_access)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class FieldModel(_Model):
    name: Name
    lsb: Int | None = None
    msb: Int | None = None
    width: Int | None = None
    bits: str | Int | None = None
    access: Access | None = None
    reset: Int | None = None
    enum: dict[str, Int | str] | None = None
    write_enum: dict[str, Int | str] | None = None
    precious: bool = False
    swacc: bool = False
    swmod: bool = False
    singlepulse: bool = False
    label: str = ""
    description: str = ""

    @model_validator(mode="after")
    def _position(self) -> FieldModel:
        """Normalise every way of giving the position to lsb + width."""
        if self.bits is not None:
            if self.lsb is not None or self.msb is not None or self.width is not None:
                raise ValueError("give bits, or lsb with msb or width, not both")
            if isinstance(self.bits, int):
                self.lsb, self.width = self.bits, 1
            else:
                m = _BITS.match(self.bits)
                if not m:
                    raise ValueError(f"bits {self.bits!r} is not '[msb:lsb]' or '[bit]'")
                msb = int(m.group(1))
                lsb = int(m.group(2)) if m.group(2) is not None else msb
                if msb < lsb:
                    raise ValueError(f"bits {self.bits!r}: msb must be >= lsb")
                self.lsb, self.width = lsb, msb - lsb + 1
            self.bits = None
        elif self.lsb is None:
            raise ValueError("no bit position: give lsb (with width or msb) or bits")
        elif self.msb is not None:
            if self.width is not None:
                raise ValueError("give msb or width, not both")
            if self.msb < self.lsb:
                raise ValueError(f"msb {self.msb} is below lsb {self.lsb}")
            self.width = self.msb - self.lsb + 1
        elif self.width is None:
            self.width = 1
        self.msb = None
        if self.lsb < 0:
            raise ValueError(f"lsb {self.lsb} is negative")
        if self.width is not None and self.width < 1:
            raise ValueError(f"width {self.width} must be at least 1")
        return self


class RegisterModel(_Model):
    name: Name
    offset: Int
    width: Literal[8, 16, 32, 64] = 32
    access: Access = "rw"
    reset: Int = 0
    reset_mask: Int | None = None   # the bits `reset` defines (default all); the rest are hardware-driven
    count: Int = Field(default=1, ge=1)
    stride: Int | None = None
    alternate_of: str | None = None
    accesswidth: Literal[8, 16, 32, 64] | None = None
    label: str = ""
    description: str = ""
    fields: list[FieldModel] = []

    @model_validator(mode="before")
    @classmethod
    def _width_as_int(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("width"), str):
            data = dict(data, width=_parse_int(data["width"]))
        return data


class MemoryModel(_Model):
    name: Name
    offset: Int
    size: Int = Field(ge=1)
    width: Literal[8, 16, 32, 64] = 32
    access: Access = "rw"
    label: str = ""
    description: str = ""


class BlockModel(_Model):
    name: Name
    base: Int = 0
    label: str = ""
    description: str = ""
    registers: list[RegisterModel] = []
    memories: list[MemoryModel] = []


class MapModel(_Model):
    name: str
    description: str = ""
    blocks: list[BlockModel] = Field(min_length=1)
