"""The model's register boundary takes integers only (issue 16: it stored QueueSel=16.0)."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.models import VirtioBlkModel
from mmiotk.errors import MmioValueError

QUEUE_SEL = 0x030


@pytest.mark.parametrize("value", [16.0, 0.5, "1", None, True, 1 << 32, -1])
def test_a_register_write_that_is_not_a_fitting_integer_raises_and_stores_nothing(value: object) -> None:
    model = VirtioBlkModel(size=1 << 20)
    with pytest.raises(MmioValueError, match=f"offset {QUEUE_SEL:#x}"):
        model.write(QUEUE_SEL, 4, value)  # type: ignore[arg-type]
    assert model.queue_sel == 0 and type(model.queue_sel) is int


def test_numpy_integer_values_are_stored_as_ints() -> None:
    model = VirtioBlkModel(size=1 << 20)
    model.write(QUEUE_SEL, 4, np.uint32(3))  # type: ignore[arg-type]
    assert model.queue_sel == 3 and type(model.queue_sel) is int
