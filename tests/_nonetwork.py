"""Pytest plugin that blocks outbound network access in every test.

``tests/conftest.py`` loads it through ``pytest_plugins``. Connections and DNS lookups for
anything but the loopback interface and Unix sockets raise ``NetworkAccessError``. Each
attempt is also recorded (the ``network_attempts`` fixture), and a test that leaves one
recorded fails when it ends, even if the code under test caught the error.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from typing import Any

import pytest

LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


class NetworkAccessError(RuntimeError):
    """A test tried to reach the network."""


def is_local_host(host: object) -> bool:
    """Tell whether a host name or address is the loopback interface (or no host at all)."""
    if host is None or host == "" or host == b"":
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    if host.lower() in LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def is_local_address(address: object) -> bool:
    """Tell whether a socket address is local: a Unix socket path or a loopback address."""
    if isinstance(address, str | bytes):
        return True
    if isinstance(address, tuple) and address:
        return is_local_host(address[0])
    return False


@pytest.fixture
def network_attempts() -> list[str]:
    """Return the list of blocked network attempts of the current test.

    A test that makes an attempt on purpose clears this list, so the test does not fail.
    """
    return []


@pytest.fixture(autouse=True)
def _block_network(monkeypatch: pytest.MonkeyPatch, network_attempts: list[str]) -> Iterator[None]:
    attempts = network_attempts
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_create_connection = socket.create_connection
    real_getaddrinfo = socket.getaddrinfo

    def blocked(description: str) -> NetworkAccessError:
        attempts.append(description)
        return NetworkAccessError(f"tests must not use the network: {description}")

    def connect(self: socket.socket, address: Any) -> None:
        if not is_local_address(address):
            raise blocked(f"connect to {address!r}")
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        if not is_local_address(address):
            raise blocked(f"connect to {address!r}")
        return real_connect_ex(self, address)

    def create_connection(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
        if not is_local_address(address):
            raise blocked(f"connection to {address!r}")
        return real_create_connection(address, *args, **kwargs)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not is_local_host(host):
            raise blocked(f"DNS lookup of {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "create_connection", create_connection)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield
    if attempts:
        pytest.fail("the test tried to use the network: " + "; ".join(attempts), pytrace=False)
