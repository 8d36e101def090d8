"""Which addresses Modelarium may connect to on a user's behalf, enforced when it connects.

Anyone who may register an endpoint chooses a URL the daemon will fetch: without a guard that is
a server-side request forgery (SSRF) tool aimed at the machine itself (loopback), the cloud's
metadata service (link-local ``169.254.169.254``, which hands out credentials) and the private
network behind it. So, by default, such addresses are refused; ``MODELARIUM_ENDPOINT_ALLOWLIST``
lists the hosts and CIDR ranges that may be used anyway (an internal GPU network, ``127.0.0.0/8``
for tests and local trials). Cloud-metadata addresses are refused even inside an allowed range,
unless the allowlist names that very address.

The check that matters runs at connect time: :class:`GuardedBackend` resolves the host itself,
checks every address it got, and connects to a checked address, never to a name that could
resolve differently a moment later (DNS rebinding). :meth:`AddressPolicy.check_host` runs the
same rules when an endpoint is added, for an early, clear error. Every numeric spelling of an
address (``2130706433``, ``0x7f.1``, ``[::ffff:127.0.0.1]``) is judged by the address it means.
"""

from __future__ import annotations

import ipaddress
import socket
import typing
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field

import anyio.to_thread
import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]

METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean...
        "169.254.170.2",  # AWS ECS task credentials
        "fd00:ec2::254",  # AWS over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud
        "168.63.129.16",  # Azure wire server
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT: not global
ALLOWLIST_HINT = "an admin can allow it with MODELARIUM_ENDPOINT_ALLOWLIST"


class AddressRefusedError(httpcore.ConnectError):
    """The host is, or resolves to, an address endpoints may not use (httpx wraps it in a
    ``ConnectError`` whose ``__cause__`` this is)."""


def embedded_ipv4(ip: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 address stands for (mapped, compatible, 6to4, Teredo, NAT64)."""
    if isinstance(ip, ipaddress.IPv4Address):
        return ip
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64 or (int(ip) >> 32 == 0 and int(ip) > 1):  # 64:ff9b::a.b.c.d, ::a.b.c.d
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def category(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public unicast address (``None`` when it is one)."""
    ip = embedded_ipv4(ip)
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if ip.is_loopback or ip.is_unspecified:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast or ip.is_reserved:
        return "not a unicast address"
    if ip.is_private or ip in _SHARED or not ip.is_global:
        return "a private address"
    return None


def parse_numeric_host(host: str) -> IPAddress | None:
    """The address a numeric host means, in any spelling the resolver accepts, else ``None``.

    ``inet_aton`` is what ``getaddrinfo`` uses for IPv4: it takes ``2130706433``, ``0x7f.1`` and
    ``0177.0.0.1`` alike, so this is the address a connection would actually reach.
    """
    text = host.strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(text))
    except (OSError, ValueError):
        return None


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, as the operating system's resolver says."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class AddressPolicy:
    """The allowlist, and the rules applied to every address outside it."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()
    resolver: Resolver = field(default=system_resolver, compare=False, repr=False)

    @classmethod
    def from_allowlist(
        cls, entries: Iterable[str], *, resolver: Resolver = system_resolver
    ) -> AddressPolicy:
        """Host names and CIDR ranges (a bare address is a range of one)."""
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in entries:
            text = entry.strip().lower()
            if not text:
                continue
            try:
                networks.append(ipaddress.ip_network(text.strip("[]"), strict=False))
            except ValueError:
                hosts.add(text.rstrip("."))
        return cls(frozenset(hosts), tuple(networks), resolver)

    def host_allowed(self, host: str) -> bool:
        return host.strip("[]").lower().rstrip(".") in self.hosts

    def refusal(self, ip: IPAddress) -> str | None:
        """Why a connection to ``ip`` is refused, or ``None`` when it is allowed."""
        reason = category(ip)
        if reason is None:
            return None
        candidates = {ip, embedded_ipv4(ip)}
        if reason == "a cloud metadata address":
            exact = any(
                n.num_addresses == 1 and n.network_address in candidates for n in self.networks
            )
            return None if exact else reason
        if any(c.version == n.version and c in n for c in candidates for n in self.networks):
            return None
        return reason

    def check_host(self, host: str, *, resolve: bool = True) -> str | None:
        """Why endpoints may not use ``host``, or ``None``; names are resolved when ``resolve``.

        A name that does not resolve now is not refused here: the connection will be checked.
        """
        if self.host_allowed(host):
            return None
        numeric = parse_numeric_host(host)
        if numeric is not None:
            reason = self.refusal(numeric)
            return f"{numeric} is {reason}" if reason else None
        name = host.lower().rstrip(".")
        if name == "localhost" or name.endswith(".localhost"):
            return f"{host} is a loopback address"
        if not resolve:
            return None
        try:
            addresses = self.resolver(host, 80)
        except (OSError, UnicodeError):
            return None
        return self._first_refusal(host, addresses)

    def _first_refusal(self, host: str, addresses: Iterable[str]) -> str | None:
        for address in addresses:
            ip = parse_numeric_host(address)
            reason = "not an IP address" if ip is None else self.refusal(ip)
            if reason:
                return f"{host} resolves to {reason}"
        return None

    def check_hosts(self, hosts: Iterable[str], *, timeout: float = 3.0) -> dict[str, str]:
        """:meth:`check_host` for many hosts at once, resolving names concurrently.

        Names still unresolved after ``timeout`` seconds are left to the connect-time check.
        """
        unique = list(dict.fromkeys(hosts))
        refused = {h: r for h in unique if (r := self.check_host(h, resolve=False))}
        names = [
            h
            for h in unique
            if h not in refused and parse_numeric_host(h) is None and not self.host_allowed(h)
        ]
        if not names:
            return refused
        pool = ThreadPoolExecutor(max_workers=min(16, len(names)), thread_name_prefix="resolve")
        futures = {pool.submit(self.check_host, h): h for h in names}
        done, _ = wait(futures, timeout=timeout)
        pool.shutdown(wait=False, cancel_futures=True)
        for future in done:
            reason = future.result()
            if reason:
                refused[futures[future]] = reason
        return refused

    def permitted_addresses(self, host: str, port: int, addresses: Iterable[str]) -> list[str]:
        """The addresses a connection to ``host`` may use; raises when there are none."""
        if self.host_allowed(host):
            return list(addresses)
        allowed: list[str] = []
        refusal: str | None = None
        for address in addresses:
            ip = parse_numeric_host(address)
            reason = "not an IP address" if ip is None else self.refusal(ip)
            if reason:
                refusal = refusal or reason
            else:
                allowed.append(address)
        if not allowed:
            numeric = parse_numeric_host(host)
            what = f"{numeric} is" if numeric is not None else f"{host} resolves to"
            raise AddressRefusedError(
                f"refused: {what} {refusal or 'no address'}; endpoints may not use loopback, "
                f"link-local, private or cloud metadata addresses ({ALLOWLIST_HINT})"
            )
        return allowed


# -- enforcement inside httpx: a network backend that connects only to checked addresses ------


class GuardedBackend(httpcore.NetworkBackend):
    """Resolves, checks, then connects to the checked address (the TLS name stays the host's)."""

    def __init__(self, policy: AddressPolicy, inner: httpcore.NetworkBackend | None = None):
        self.policy = policy
        self.inner = inner or httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            found = self.policy.resolver(host, port)
        except (OSError, UnicodeError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
        last: Exception | None = None
        for address in self.policy.permitted_addresses(host, port, found):
            try:
                return self.inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:  # try the next address, as a resolver would
                last = exc
        assert last is not None
        raise last

    def connect_unix_socket(self, *args: typing.Any, **kwargs: typing.Any) -> typing.NoReturn:
        raise AddressRefusedError("refused: endpoints are reached over TCP only")

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


class AsyncGuardedBackend(httpcore.AsyncNetworkBackend):
    """:class:`GuardedBackend` for async clients (the resolver runs in a worker thread)."""

    def __init__(
        self, policy: AddressPolicy, inner: httpcore.AsyncNetworkBackend | None = None
    ) -> None:
        self.policy = policy
        self.inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        if parse_numeric_host(host) is not None:
            found = [str(parse_numeric_host(host))]  # no thread for an address
        else:
            try:
                found = await anyio.to_thread.run_sync(self.policy.resolver, host, port)
            except (OSError, UnicodeError) as exc:
                raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
        last: Exception | None = None
        for address in self.policy.permitted_addresses(host, port, found):
            try:
                return await self.inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(self, *args: typing.Any, **kwargs: typing.Any) -> typing.NoReturn:
        raise AddressRefusedError("refused: endpoints are reached over TCP only")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def guarded_transport(
    policy: AddressPolicy, *, limits: httpx.Limits | None = None, verify: typing.Any = True
) -> httpx.HTTPTransport:
    """An httpx transport whose every connection goes through :class:`GuardedBackend`.

    httpx builds its connection pool without a way to pass a network backend, so the pool is
    replaced by one with the same settings plus the backend. No proxy: a proxy would resolve
    the host itself, out of reach of the check (clients using this pass ``trust_env=False``).
    """
    limits = limits or httpx.Limits(max_connections=100, max_keepalive_connections=20)
    context = httpx.create_ssl_context(verify=verify, trust_env=False)
    transport = httpx.HTTPTransport(verify=context, limits=limits, trust_env=False)
    transport._pool = httpcore.ConnectionPool(
        ssl_context=context,
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=GuardedBackend(policy),
    )
    return transport


def async_guarded_transport(
    policy: AddressPolicy, *, limits: httpx.Limits | None = None, verify: typing.Any = True
) -> httpx.AsyncHTTPTransport:
    """:func:`guarded_transport` for ``httpx.AsyncClient``."""
    limits = limits or httpx.Limits(max_connections=100, max_keepalive_connections=20)
    context = httpx.create_ssl_context(verify=verify, trust_env=False)
    transport = httpx.AsyncHTTPTransport(verify=context, limits=limits, trust_env=False)
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=context,
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=AsyncGuardedBackend(policy),
    )
    return transport


def refused_by_policy(exc: BaseException) -> AddressRefusedError | None:
    """The policy refusal behind an httpx error, if that is what it was."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, AddressRefusedError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


__all__ = [
    "ALLOWLIST_HINT",
    "METADATA_ADDRESSES",
    "AddressPolicy",
    "AddressRefusedError",
    "AsyncGuardedBackend",
    "GuardedBackend",
    "async_guarded_transport",
    "category",
    "guarded_transport",
    "parse_numeric_host",
    "refused_by_policy",
    "system_resolver",
]
