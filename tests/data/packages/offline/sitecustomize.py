"""Block every network connection in a Python process started with this folder on PYTHONPATH.

The package tests start splunk-appinspect and cfn-lint with it, so a check that reaches the
network raises instead of passing by downloading.
"""

import socket


def _blocked(*args: object, **kwargs: object) -> None:
    raise OSError("network access is blocked in siemgen's package tests")


socket.socket.connect = _blocked  # type: ignore[method-assign]
socket.socket.connect_ex = _blocked  # type: ignore[method-assign,assignment]
socket.create_connection = _blocked  # type: ignore[assignment]
socket.getaddrinfo = _blocked  # type: ignore[assignment]
