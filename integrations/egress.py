"""Where outgoing requests (webhooks) may go: public addresses only, unless allowed.

Pure Python and ``socket`` (no Django): the caller passes ``allow_private`` from its settings.

A host is resolved once, every address it resolves to is checked, and the connection goes to
a checked address (``PinnedHTTPConnection`` / ``PinnedHTTPSConnection``): http.client never
looks the name up a second time, so a name that answers a public address to the check and a
private one to the connection (DNS rebinding) reaches nothing. ``getaddrinfo`` and
``ipaddress`` normalize the numeric spellings of an address (``2130706433``, ``0x7f.1``,
``017700000001``, ``127.1``, ``::ffff:127.0.0.1``) before the check sees them.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import sys
from collections.abc import Sequence

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

REFUSED = "hooks to private or local addresses are refused"
# RFC 6761: these names are the local machine, whatever a resolver says.
LOCAL_NAMES = ("localhost",)
# Shared address space (RFC 6598, carrier-grade NAT): neither private nor global.
SHARED = ipaddress.ip_network("100.64.0.0/10")
# NAT64 (RFC 6052): the last 32 bits are an IPv4 address a NAT64 gateway connects to.
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class EgressRefused(ValueError):
    """``host`` may not be connected to; ``reason`` says why (it names the host)."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(f"{REFUSED}: {reason}")
        self.host = host
        self.reason = reason


# ----- addresses -----------------------------------------------------------------------------
def parse_ip(value: str) -> IPAddress | None:
    """The address ``value`` spells, in any form the resolver accepts, or None for a name.

    Besides the usual forms this reads inet_aton's (``127.1``, ``2130706433``, ``0x7f.1``,
    ``017700000001``) and an IPv6 zone (``fe80::1%eth0``).
    """
    text = value.strip().strip("[]")
    if not text or any(ch.isspace() for ch in text):
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(text))
    except (OSError, UnicodeError, ValueError):
        return None


def non_public_reason(ip: str | IPAddress) -> str | None:
    """Why ``ip`` is not a public address ("loopback", "private", ...), or None if it is."""
    address = ip if isinstance(ip, ipaddress.IPv4Address | ipaddress.IPv6Address) else (
        parse_ip(str(ip)))
    if address is None:
        return "not an IP address"
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped
        if mapped is not None:
            inner = non_public_reason(mapped)
            return f"IPv4-mapped ({mapped} is {inner})" if inner else "IPv4-mapped"
        if address in NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
            if inner := non_public_reason(embedded):
                return f"NAT64 of {embedded}, which is {inner}"
        if address.sixtofour is not None and (inner := non_public_reason(address.sixtofour)):
            return f"6to4 of {address.sixtofour}, which is {inner}"
        if address.is_site_local:
            return "site-local"
    # Most specific first: loopback and link-local addresses are also "private".
    checks = (
        (address.is_unspecified, "unspecified"),
        (address.is_loopback, "loopback"),
        (address.is_link_local, "link-local"),
        (address.is_multicast, "multicast"),
        (isinstance(address, ipaddress.IPv4Address) and address in SHARED,
         "shared address space (100.64.0.0/10)"),
        (address.is_reserved, "reserved"),
        (address.is_private, "private"),
        (not address.is_global, "not globally reachable"),
    )
    return next((reason for failed, reason in checks if failed), None)


def is_public(ip: str | IPAddress) -> bool:
    """True for a globally reachable unicast address (what a webhook may be sent to)."""
    return non_public_reason(ip) is None


def is_local_name(host: str) -> bool:
    """``localhost`` and ``*.localhost`` (with or without the final dot)."""
    name = host.strip().rstrip(".").lower()
    return any(name == local or name.endswith("." + local) for local in LOCAL_NAMES)


def _refusal(host: str, address: str, reason: str) -> EgressRefused:
    literal = parse_ip(host)
    if literal is not None and host.strip("[]").lower() == address.lower():
        return EgressRefused(host, f"{address} is {reason}")
    if literal is not None:
        return EgressRefused(host, f"{host} is the address {address}, which is {reason}")
    return EgressRefused(host, f"{host} resolves to {address}, which is {reason}")


def check_addresses(host: str, addresses: Sequence[str]) -> None:
    """EgressRefused when any of ``host``'s addresses is not public (one bad answer is enough:
    which one a client uses is not ours to choose)."""
    for address in addresses:
        reason = non_public_reason(address)
        if reason:
            raise _refusal(host, address, reason)


# ----- resolving -----------------------------------------------------------------------------
def resolve_all(host: str, port: int, *, allow_private: bool = False) -> list[str]:
    """Every address of ``host`` (one ``getaddrinfo`` call), each checked, in the resolver's
    order; EgressRefused if one is not public, OSError (``socket.gaierror``) if none."""
    if not allow_private and is_local_name(host):
        raise EgressRefused(host, f"{host} is the local machine")
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise socket.gaierror(f"{host} has no address")
    if not allow_private:
        check_addresses(host, addresses)
    return addresses


def resolve_public(host: str, port: int, *, allow_private: bool = False) -> str:
    """The address to connect to for ``host`` (the first of ``resolve_all``)."""
    return resolve_all(host, port, allow_private=allow_private)[0]


def check_target(host: str, port: int, *, allow_private: bool = False) -> None:
    """At save time: EgressRefused for a local name, a non-public literal address, or a name
    that resolves now to a non-public address. A name that does not resolve passes (it is
    checked again at every delivery)."""
    if allow_private:
        return
    if is_local_name(host):
        raise EgressRefused(host, f"{host} is the local machine")
    literal = parse_ip(host)
    if literal is not None:
        reason = non_public_reason(literal)
        if reason:
            raise _refusal(host, str(literal), reason)
        return
    try:
        resolve_all(host, port, allow_private=False)
    except (OSError, UnicodeError):
        return


# ----- connections to a checked address ------------------------------------------------------
def open_socket(addresses: Sequence[str], port: int, timeout: object,
                source_address: tuple[str, int] | None = None) -> socket.socket:
    """A TCP connection to the first of ``addresses`` that answers. No name lookup (unlike
    ``socket.create_connection``, which calls getaddrinfo again)."""
    if not addresses:
        raise OSError("no address to connect to")
    error: OSError | None = None
    for address in addresses:
        ip = parse_ip(address)
        family = socket.AF_INET6 if isinstance(ip, ipaddress.IPv6Address) else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            if isinstance(timeout, int | float):  # else http.client's "global default"
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect((address, port))
            return sock
        except OSError as exc:
            sock.close()
            error = exc
    assert error is not None
    raise error


class PinnedHTTPConnection(http.client.HTTPConnection):
    """HTTP to ``addresses`` (checked already); the ``Host`` header still names ``host``."""

    def __init__(self, host: str, addresses: Sequence[str], port: int | None = None,
                 **kwargs: object) -> None:
        super().__init__(host, port, **kwargs)  # type: ignore[arg-type]
        self.addresses = list(addresses)

    def connect(self) -> None:
        sys.audit("http.client.connect", self, self.host, self.port)
        self.sock = open_socket(self.addresses, self.port, self.timeout, self.source_address)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to ``addresses``; SNI and the certificate check use ``host``, not the address."""

    def __init__(self, host: str, addresses: Sequence[str], port: int | None = None, *,
                 context: ssl.SSLContext | None = None, **kwargs: object) -> None:
        context = context or ssl.create_default_context()
        super().__init__(host, port, context=context, **kwargs)  # type: ignore[arg-type]
        self.addresses = list(addresses)
        self.context = context

    @property
    def server_hostname(self) -> str:
        return self.host

    def connect(self) -> None:
        sys.audit("http.client.connect", self, self.host, self.port)
        sock = open_socket(self.addresses, self.port, self.timeout, self.source_address)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self.sock = self.context.wrap_socket(sock, server_hostname=self.server_hostname)
        except BaseException:
            sock.close()
            raise
