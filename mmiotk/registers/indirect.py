"""Indirect: registers reached through an index/data register pair of the enclosing block."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Generic, TypeVar, overload

from .access import WIDTHS, RegisterDefinitionError

if TYPE_CHECKING:
    from .block import RegisterBlock
    from .handle import RegisterHandle
    from .spec import RegisterSpec

# --------------------------------------------------------------------------------------------------
# Indirect (index/data) register pairs
# --------------------------------------------------------------------------------------------------
B = TypeVar("B", bound="RegisterBlock")


class _IndirectBus:
    """read8..write64 over an index/data pair: select by writing the index register, then access data."""

    def __init__(self, name: str, index: RegisterHandle, data: RegisterHandle, index_field: str | None,
                 unit: int, size: int) -> None:
        self.name = name
        self.size = size
        self._index = index
        self._data = data
        self._field = index_field
        self._unit = unit
        for bits in WIDTHS:
            mask = (1 << bits) - 1
            setattr(self, f"read{bits}", self._reader(mask))
            setattr(self, f"write{bits}", self._write)

    def _select(self, offset: int) -> None:
        idx = offset // self._unit
        if self._field is None:
            self._index.write(idx)
        else:
            self._index.write(**{self._field: idx})

    def _reader(self, mask: int) -> Callable[[int], int]:
        def read(offset: int) -> int:
            self._select(offset)
            return int(self._data.read()) & mask
        return read

    def _write(self, offset: int, value: int) -> None:
        self._select(offset)
        self._data.write(value)


class Indirect(Generic[B]):
    """Registers reached through an index/data pair of the enclosing block:

        class Phy(RegisterBlock):            # offsets are bytes; index = offset // unit
            BMCR = Register(0x0, width=16, fields=[...])
        class Mac(RegisterBlock):
            MDIO_IDX = Register(0x10)
            MDIO_DATA = Register(0x14)
            PHY = Indirect(Phy, index="MDIO_IDX", data="MDIO_DATA", unit=2)

        mac.PHY.BMCR.modify(RESET=1)        # the same handle API; each access selects, then reads/writes data

    `unit` (bytes per index step) defaults to the data register's size; `index_field` names the field of
    the index register that takes the index (default: the whole register).
    """

    def __init__(self, block: type[B], *, index: str, data: str, index_field: str | None = None,
                 unit: int | None = None) -> None:
        self.block = block
        self.index = index
        self.data = data
        self.index_field = index_field
        self.unit = unit

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> Indirect[B]: ...
    @overload
    def __get__(self, obj: object, owner: type | None = None) -> B: ...

    def __get__(self, obj: object | None, owner: type | None = None) -> Indirect[B] | B:
        if obj is None:
            return self
        raise AttributeError("the block was not bound to a buffer")

    def _check(self, block: str, attr: str, specs: Mapping[str, RegisterSpec]) -> None:
        data = specs[self.data]
        for spec in self.block._specs.values():
            if spec.width > data.width:
                raise RegisterDefinitionError(f"block {block}: indirect {attr}: register {spec.name} is wider "
                                              f"({spec.width} bits) than data register {self.data} "
                                              f"({data.width} bits)")
        if self.index_field is not None and self.index_field not in specs[self.index].fields:
            raise RegisterDefinitionError(f"block {block}: indirect {attr}: index register {self.index} has "
                                          f"no field named {self.index_field!r}")

    def _bind(self, owner: RegisterBlock, attr: str) -> B:
        data = owner[self.data]
        unit = self.unit or data.spec.nbytes
        bus = _IndirectBus(f"{owner._block_name}.{attr}", owner[self.index], data, self.index_field, unit,
                           self.block._size)
        return self.block(bus)
