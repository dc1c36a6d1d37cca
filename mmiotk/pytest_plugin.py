"""pytest plugin (entry point `mmiotk`): the `mock_mmio` fixture.

    def test_start(mock_mmio):
        mock_mmio.expect_read32(0x4, 0x1)
        mock_mmio.expect_write32(0x0, 0x3)
        MyDriver(mock_mmio.buffer).start()
        # verify() runs at teardown when the test itself passed

    @pytest.mark.mock_mmio(size=0x200, ordered=False)   # configure it
    def test_other(mock_mmio): ...

`mock_mmio_factory(size=..., ordered=...)` makes more mocks in one test; each is verified the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .mock import MockMmio

_CALL_PASSED = pytest.StashKey[bool]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "mock_mmio(size=0x1000, ordered=True, base=0, name='mock'): configure the mock_mmio fixture")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[_CALL_PASSED] = report.passed
    return report


def _verify_if_passed(request: pytest.FixtureRequest, mocks: list[MockMmio]) -> None:
    if not request.node.stash.get(_CALL_PASSED, False):
        return  # the test already failed: don't bury its error under the mock's
    for mock in mocks:
        mock.verify()


@pytest.fixture
def mock_mmio(request: pytest.FixtureRequest) -> Iterator[MockMmio]:
    """A MockMmio (default 0x1000 bytes, strict order), verified at teardown if the test passed."""
    marker = request.node.get_closest_marker("mock_mmio")
    kwargs = dict(marker.kwargs) if marker is not None else {}
    if marker is not None and marker.args:
        kwargs.setdefault("size", marker.args[0])
    mock = MockMmio(**kwargs)
    yield mock
    _verify_if_passed(request, [mock])


@pytest.fixture
def mock_mmio_factory(request: pytest.FixtureRequest) -> Iterator[Callable[..., MockMmio]]:
    """`make(size=0x1000, ordered=True, ...)` -> a new MockMmio; all are verified at teardown."""
    made: list[MockMmio] = []

    def make(size: int = 0x1000, **kwargs: Any) -> MockMmio:
        mock = MockMmio(size, **kwargs)
        made.append(mock)
        return mock

    yield make
    _verify_if_passed(request, made)
