"""HA-free tests: real sockets on loopback, no Home Assistant fixtures."""

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _loopback_sockets(socket_enabled: None) -> Iterator[None]:
    """The HA test plugin blocks sockets for every test; these tests talk to real peers on 127.0.0.1."""
    yield
