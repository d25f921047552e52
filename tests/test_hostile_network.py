"""Tests for the plugin that blocks network access during tests."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

import pytest

import _nonetwork
from _nonetwork import NetworkAccessError


def test_dns_lookup_blocked(network_attempts: list[str]) -> None:
    with pytest.raises(NetworkAccessError):
        socket.getaddrinfo("example.com", 443)
    assert network_attempts == ["DNS lookup of 'example.com'"]
    # The plugin fails a test that leaves attempts recorded; these were made on purpose.
    network_attempts.clear()


def test_connect_blocked(network_attempts: list[str]) -> None:
    client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        with pytest.raises(NetworkAccessError):
            client.connect(("192.0.2.1", 443))
    finally:
        client.close()
    assert len(network_attempts) == 1
    network_attempts.clear()


def test_create_connection_blocked(network_attempts: list[str]) -> None:
    with pytest.raises(NetworkAccessError):
        socket.create_connection(("203.0.113.5", 80), timeout=1)
    assert len(network_attempts) == 1
    network_attempts.clear()


def test_urllib_blocked(network_attempts: list[str]) -> None:
    with pytest.raises((NetworkAccessError, urllib.error.URLError)):
        urllib.request.urlopen("http://example.com/", timeout=1)
    assert network_attempts
    network_attempts.clear()


def test_loopback_allowed() -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        client.connect(server.getsockname())
        accepted, _ = server.accept()
        accepted.close()
    finally:
        client.close()
        server.close()


@pytest.mark.parametrize(
    ("host", "local"),
    [
        ("localhost", True),
        ("127.0.0.1", True),
        ("::1", True),
        (None, True),
        ("10.0.0.1", False),
        ("example.com", False),
        ("169.254.169.254", False),
    ],
)
def test_local_host_detection(host: str | None, local: bool) -> None:
    assert _nonetwork.is_local_host(host) is local
