"""The one way Eventfeed calls out (webhook actions, and anything later that does).

A user who can create an automation chooses the URL, so the server must not become their way in
to what only it can reach: loopback, the cloud metadata service (169.254.169.254), the private
network. Every call is resolved here once, every resolved address is checked, and the connection
goes to the address that was checked (so a DNS answer that changes between check and connect
changes nothing), with the original Host header and TLS server name. Redirects are followed by
the same transport, so every hop is checked again. `EVENTFEED_OUTBOUND_ALLOW` (CIDRs and host
names) opens what an operator needs, e.g. an internal alerting service.

Libraries that make their own connections (Apprise, for the notification channels) run inside
`guarded()`: there every name resolution goes through the same check and answers only the address
that was checked, so such a library connects where this module decided, hop after hop, with its
own Host header and TLS server name.

Address spellings need no special cases: the host is turned into addresses the way the operating
system would (`inet_aton` reads `2130706433`, `0x7f.1`, `0177.0.0.1`), and the addresses, not the
spelling, are checked.
"""

from __future__ import annotations

import contextvars
import ipaddress
import socket
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

import httpx

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]

MAX_REDIRECTS = 5
# What a caller may read of a response body: enough for an error message.
MAX_BODY_BYTES = 64 * 1024
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")


class OutboundRefused(Exception):
    """A call Eventfeed will not make; `reason` says why, for the user to read."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Allow:
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    hosts: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, items: Iterable[str]) -> "Allow":
        networks, hosts = [], set()
        for item in items:
            try:
                networks.append(ipaddress.ip_network(item.strip("[]"), strict=False))
            except ValueError:
                hosts.add(_normal_host(item))
        return cls(tuple(networks), frozenset(hosts))

    def host(self, host: str) -> bool:
        host = _normal_host(host)
        return host in self.hosts or any(h.startswith("*.") and host.endswith(h[1:]) for h in self.hosts)

    def address(self, address: Address) -> bool:
        return any(address in network for network in self.networks)


def allowlist() -> Allow:
    from django.conf import settings

    return Allow.parse(settings.EVENTFEED_OUTBOUND_ALLOW)


def _normal_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


# The operating system's resolver, kept before guarded() puts its checking one in its place.
_system_getaddrinfo = socket.getaddrinfo


def system_resolver(host: str, port: int) -> list[str]:
    try:
        infos = _system_getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise OutboundRefused(f"{host} does not resolve ({e.strerror})") from None
    return list(dict.fromkeys(info[4][0] for info in infos))


def literal_address(host: str) -> Address | None:
    """The address a host names by itself, in any spelling the OS accepts, or None for a name."""
    host = _normal_host(host)
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    try:
        # Decimal (2130706433), octal (0177.0.0.1), hex (0x7f000001) and short (127.1) forms.
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def why_refused(address: Address) -> str | None:
    """What kind of address may not be called ("a loopback address"), or None for a public one."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            kind = why_refused(embedded)
            return f"{kind} ({embedded}) written as IPv6" if kind else None
    for kind in ("unspecified", "loopback", "link_local", "multicast"):
        if getattr(address, f"is_{kind}"):
            return f"a{'n' if kind == 'unspecified' else ''} {kind.replace('_', '-')} address"
    if isinstance(address, ipaddress.IPv6Address) and address in _UNIQUE_LOCAL:
        return "a unique-local address"
    if address.is_private:
        return "a private address"
    if not address.is_global:
        return "not a public address"
    return None


def check(host: str, port: int, *, allow: Allow, resolver: Resolver) -> tuple[str, bool]:
    """The address to connect to for host:port, and whether the allowlist opened it; raise
    OutboundRefused when any address the host resolves to is refused."""
    addresses, allowed = check_all(host, port, allow=allow, resolver=resolver)
    return addresses[0], allowed


def check_all(host: str, port: int, *, allow: Allow, resolver: Resolver) -> tuple[list[str], bool]:
    """Every address host:port resolves to (one lookup), all of them checked, and whether the
    allowlist opened them; raise OutboundRefused when any is refused."""
    if allow.host(host):
        address = literal_address(host)
        return ([str(address)] if address else resolver(host, port)), True
    address = literal_address(host)
    addresses = [address] if address is not None else [ipaddress.ip_address(a.split("%", 1)[0]) for a in resolver(host, port)]
    if not addresses:
        raise OutboundRefused(f"{host} does not resolve")
    allowed = all(allow.address(a) for a in addresses)
    if not allowed:
        for a in addresses:
            kind = why_refused(a)
            if kind and not allow.address(a):
                said = f"{a} is {kind}" if address is not None else f"{host} resolves to {a}, {kind}"
                raise OutboundRefused(f"{said}; set EVENTFEED_OUTBOUND_ALLOW to allow it")
    return [str(a) for a in addresses], allowed


def refusal(url: str, *, allow: Allow | None = None) -> str | None:
    """Why a URL whose host is a literal address would be refused, without resolving names (for
    checks when a URL is saved)."""
    try:
        host = httpx.URL(url).host
    except httpx.InvalidURL as e:
        return f"it is not a valid URL ({e})"
    address = literal_address(host) if host else None
    allow = allow or allowlist()
    if address is None or allow.host(host) or allow.address(address):
        return None
    kind = why_refused(address)
    return f"{address} is {kind}; set EVENTFEED_OUTBOUND_ALLOW to allow it" if kind else None


class _CheckedTransport(httpx.HTTPTransport):
    """Resolves and checks every request it sends (each redirect hop is one), then connects to
    the checked address with the original Host header and TLS server name."""

    def __init__(self, *, allow: Allow, resolver: Resolver, **kwargs):
        super().__init__(**kwargs)
        self.allow, self.resolver = allow, resolver
        self.allowed: list[bool] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in ("http", "https"):
            raise OutboundRefused(f"only http and https may be called, not {url.scheme}")
        address, allowed = check(url.host, url.port or (443 if url.scheme == "https" else 80),
                                 allow=self.allow, resolver=self.resolver)
        self.allowed.append(allowed)
        extensions = dict(request.extensions)
        if url.scheme == "https":
            extensions["sni_hostname"] = url.host
        pinned = httpx.Request(request.method, url.copy_with(host=address), headers=request.headers,
                               stream=request.stream, extensions=extensions)
        return super().handle_request(pinned)


@dataclass
class Response:
    status_code: int
    headers: httpx.Headers
    body: bytes  # at most MAX_BODY_BYTES
    # True when the allowlist opened every hop: only then may the body be shown to users.
    allowed: bool

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def request(method: str, url: str, *, headers: dict | None = None, content: bytes = b"", timeout: float = 10.0,
            resolver: Resolver | None = None, allow: Allow | None = None) -> Response:
    """Make one call (following up to MAX_REDIRECTS checked redirects). Raises OutboundRefused,
    or httpx.HTTPError when the target fails to answer."""
    try:
        httpx.URL(url)
    except httpx.InvalidURL as e:
        raise OutboundRefused(f"{url} is not a valid URL ({e})") from None
    transport = _CheckedTransport(allow=allow or allowlist(), resolver=resolver or system_resolver)
    # trust_env=False: a proxy from the environment would connect on our behalf, unchecked.
    with httpx.Client(transport=transport, timeout=timeout, follow_redirects=True, max_redirects=MAX_REDIRECTS,
                      trust_env=False) as client:
        with client.stream(method, url, headers=headers or {}, content=content) as response:
            body = b""
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) >= MAX_BODY_BYTES:
                    body = body[:MAX_BODY_BYTES]
                    break
            return Response(response.status_code, response.headers, body, all(transport.allowed))


# -- libraries that connect by themselves ------------------------------------------------------

@dataclass
class Guard:
    allow: Allow
    resolver: Resolver
    # Why each refused connection was refused, for the caller to say (the library only sees a
    # name that does not resolve).
    refused: list[str] = field(default_factory=list)


_guard: contextvars.ContextVar[Guard | None] = contextvars.ContextVar("outbound_guard", default=None)


def _port_number(port) -> int:
    if isinstance(port, bytes):
        port = port.decode()
    if isinstance(port, str):
        return int(port) if port.isdigit() else socket.getservbyname(port, "tcp")
    return int(port or 0)


def _checking_getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
    """socket.getaddrinfo, which inside guarded() answers only the addresses that check() passed
    (or fails as a name that does not resolve): the library then connects to one of them."""
    guard = _guard.get()
    if guard is None or host is None:
        return _system_getaddrinfo(host, port, family, type, proto, flags)
    name = host.decode("idna") if isinstance(host, bytes) else str(host)
    try:
        addresses, _ = check_all(name, _port_number(port), allow=guard.allow, resolver=guard.resolver)
    except OutboundRefused as e:
        guard.refused.append(e.reason)
        raise socket.gaierror(socket.EAI_NONAME, f"refused: {e.reason}") from None
    # Every address of the one lookup was checked: all are offered, so that the library can fall
    # back from one it cannot reach (an IPv6 answer on an IPv4-only host) as it would have.
    answers = []
    for address in addresses:
        try:
            answers += _system_getaddrinfo(address, port, family, type, proto, flags | socket.AI_NUMERICHOST)
        except socket.gaierror:
            continue  # not of the family the caller asked for
    if not answers:
        raise socket.gaierror(socket.EAI_ADDRFAMILY if hasattr(socket, "EAI_ADDRFAMILY") else socket.EAI_NONAME,
                              f"{name} has no address of the family asked for")
    return answers


@contextmanager
def guarded(*, allow: Allow | None = None, resolver: Resolver | None = None) -> Iterator[Guard]:
    """Run a library that connects by itself (Apprise) under the outbound rules.

    Every connection it opens resolves its host through check_all(), at connect time and once: a
    refused address fails to resolve, an allowed name resolves to the addresses that were checked
    and to nothing else, so a DNS answer that changes between check and connect, or a redirect
    to another host, changes nothing. The rules follow the context (Apprise hands its context to
    its worker threads); code outside it resolves as before.
    """
    # One assignment for the process; outside a guarded() block the function passes through.
    socket.getaddrinfo = _checking_getaddrinfo
    guard = Guard(allow or allowlist(), resolver or system_resolver)
    token = _guard.set(guard)
    try:
        yield guard
    finally:
        _guard.reset(token)
