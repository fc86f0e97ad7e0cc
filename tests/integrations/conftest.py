"""Webhook tests talk only to receivers they start on loopback: names resolve from a table
(never a real DNS query) and a connection anywhere but loopback fails the test."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest

from integrations import egress

REAL_GETADDRINFO = socket.getaddrinfo
REAL_CONNECT = socket.socket.connect
REAL_CONNECT_EX = socket.socket.connect_ex


class FakeDNS:
    """``socket.getaddrinfo`` from a table: ``dns.table["name.test"] = ["10.0.0.5"]`` (or a
    callable answering a list, for answers that change). Address literals and ``localhost``
    go to the real function (no query leaves the machine); any other name does not resolve.
    ``calls`` lists the hosts looked up, in order."""

    def __init__(self) -> None:
        self.table: dict[str, list[str] | Callable[[], list[str]]] = {}
        self.calls: list[str] = []

    def count(self, host: str) -> int:
        return self.calls.count(host)

    def __call__(self, host, port, family=0, type=0, proto=0, flags=0):  # noqa: A002 - socket's names
        name = host.decode() if isinstance(host, bytes) else host
        self.calls.append(name)
        key = (name or "").rstrip(".").lower()
        if name is None or egress.parse_ip(name) is not None or key == "localhost":
            return REAL_GETADDRINFO(host, port, family, type, proto, flags)
        answer = self.table.get(key)
        if answer is None and egress.is_local_name(key):
            answer = ["127.0.0.1"]
        if answer is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        addresses = answer() if callable(answer) else answer
        port_number = int(port or 0)
        return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", (ip, port_number, 0, 0))
                if ":" in ip else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port_number))
                for ip in addresses]


@pytest.fixture(autouse=True)
def dns(monkeypatch) -> FakeDNS:
    fake = FakeDNS()
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return fake


@pytest.fixture(autouse=True)
def connects(monkeypatch) -> list[tuple]:
    """Every outgoing TCP connection of the test, in order; one to an address that is not
    loopback raises AssertionError (post() does not catch it: the test fails)."""
    seen: list[tuple] = []

    def guard(sock: socket.socket, address: object) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            seen.append(tuple(address))  # type: ignore[arg-type]
            ip = egress.parse_ip(str(address[0]))  # type: ignore[index]
            if ip is None or not ip.is_loopback:
                raise AssertionError(f"a test tried to connect to {address}")

    def connect(sock: socket.socket, address: object) -> None:
        guard(sock, address)
        return REAL_CONNECT(sock, address)

    def connect_ex(sock: socket.socket, address: object) -> int:
        guard(sock, address)
        return REAL_CONNECT_EX(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    return seen
