"""Where a webhook may go: no server-side request forgery.

A URL must be https, and every address its host resolves to must be public
(not loopback, private, link-local, multicast, reserved or unspecified). It
is checked when it is saved, and again at every attempt; the attempt then
connects to the very address it checked (jobs/webhook_http.py), with the URL's
host name in `Host` and in TLS's SNI, so a DNS answer that changes after the
check never decides where the request goes. UDT_WEBHOOK_ALLOW_PRIVATE=1 lifts
both rules, for development and tests.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import idna
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

from models import settings

MAX_URL_LENGTH = 2048
RESOLVE_TIMEOUT_SECONDS = 5

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
# A host name and port to the addresses it resolves to, as text.
Resolver = Callable[[str, int], Awaitable[list[str]]]


class Refused(Exception):
    """The URL may not be called; the message says why, for the operator."""


@dataclass(frozen=True)
class Target:
    """A checked URL and the address to connect to for it."""

    scheme: str
    host: str  # the host name as written (no brackets), for Host and SNI
    port: int
    netloc: str  # host[:port] as written, the Host header
    path: str  # path and query
    address: str  # the checked address the request goes to

    @property
    def literal(self) -> bool:
        """The URL names an address, not a host name (no SNI is sent then)."""
        return _ip(self.host) is not None


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _ip(text: str) -> Address | None:
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


# Blocks no one outside may reach that Python's ipaddress (before 3.13) still calls global:
# 6to4, which carries an IPv4 address that may be a private one; the IETF's protocol
# assignments (192.0.0.0/24); the IPv6 documentation block of RFC 9637.
NOT_GLOBAL = {
    ipaddress.ip_network("2002::/16"): "a 6to4 address",
    ipaddress.ip_network("192.0.0.0/24"): "an IETF protocol address",
    ipaddress.ip_network("3fff::/20"): "a documentation address",
}


def address_problem(address: Address) -> str | None:
    """Why a request may not go to this address; None when it is public."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for network, kind in NOT_GLOBAL.items():
        if address in network:
            return kind
    for kind in ("loopback", "link_local", "multicast", "unspecified", "reserved", "private"):  # most telling first
        if getattr(address, f"is_{kind}"):
            return f"a {kind.replace('_', '-')} address"
    if not address.is_global:
        return "not a public address"
    return None


@dataclass(frozen=True)
class Guard:
    """The rules, with the resolver that answers for host names (the system's; a test's own)."""

    resolve: Resolver = system_resolver
    # None: as settings.WEBHOOK_ALLOW_PRIVATE says, read at each check.
    allow_private: bool | None = None
    # None: https unless private addresses are allowed.
    require_https: bool | None = None
    problem: Callable[[Address], str | None] = field(default=address_problem)

    def _private_allowed(self) -> bool:
        return settings.WEBHOOK_ALLOW_PRIVATE if self.allow_private is None else self.allow_private

    async def check(self, url: str) -> Target:
        """The target of `url` if every rule holds, else Refused saying which does not."""
        https_only = not self._private_allowed() if self.require_https is None else self.require_https
        target = parse(url, https_only=https_only)
        addresses = await self._addresses(target)
        if not self._private_allowed():
            for address in addresses:
                if (problem := self.problem(address)) is not None:
                    # A name's addresses are not told: they would map the internal DNS for whoever asks.
                    where = f"{address} is" if target.literal else f"{target.host} resolves to"
                    raise Refused(f"{where} {problem}; a webhook may go only to public addresses.")
        return replace(target, address=str(addresses[0]))

    async def _addresses(self, target: Target) -> list[Address]:
        literal = _ip(target.host)
        if literal is not None:
            return [literal]
        try:
            async with asyncio.timeout(RESOLVE_TIMEOUT_SECONDS):
                found = await self.resolve(target.host, target.port)
        except (OSError, TimeoutError) as exc:
            raise Refused(f"{target.host} does not resolve ({exc.__class__.__name__}).") from None
        addresses = [a for a in (_ip(text) for text in found) if a is not None]
        if not addresses:
            raise Refused(f"{target.host} does not resolve to any address.")
        return addresses


def parse(url: str, https_only: bool) -> Target:
    """The parts of a URL a request needs (its address not yet known); Refused when it is not one."""
    if len(url) > MAX_URL_LENGTH:
        raise Refused(f"A webhook URL has at most {MAX_URL_LENGTH} characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise Refused("This is not a URL.") from None
    allowed = ("https",) if https_only else ("https", "http")
    if parts.scheme not in allowed:
        raise Refused("A webhook URL must start with https://." if https_only else "A webhook URL is http(s)://.")
    if not parts.hostname:
        raise Refused("A webhook URL needs a host.")
    if parts.username is not None or parts.password is not None:
        raise Refused("A webhook URL may not carry a user name or password.")
    if parts.fragment:
        raise Refused("A webhook URL has no #fragment: a server never sees one.")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise Refused("A webhook URL has no spaces or control characters.")
    if port == 0:
        raise Refused("A webhook URL's port is 1 to 65535.")
    host = ascii_host(parts.hostname)
    return Target(
        scheme=parts.scheme,
        host=host,
        port=port or (443 if parts.scheme == "https" else 80),
        netloc=(f"[{host}]" if ":" in host else host) + (f":{port}" if port else ""),
        path=(parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
        address="",
    )


def ascii_host(host: str) -> str:
    """The host as DNS, TLS and `Host` take it: an international name as its ASCII (IDNA) form;
    Refused when it is no host name (an empty or too long label, a character IDNA forbids)."""
    if _ip(host) is not None:
        return host
    try:
        # An ASCII name is taken as written (the codec only checks its labels' lengths), so a
        # name with an underscore still passes; any other goes through UTS 46, as browsers do.
        encoded = host.encode("idna") if host.isascii() else idna.encode(host, uts46=True)
    except (UnicodeError, idna.IDNAError):
        raise Refused(f"{host!r} is not a host name.") from None
    if len(encoded.rstrip(b".")) > 253:
        raise Refused(f"{host!r} is not a host name.")
    return encoded.decode()


GUARD = Guard()
