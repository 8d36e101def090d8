"""No test asks the network's DNS server: a made-up host name (``http://vllm:8000``) is unknown
at once (a pytest plugin).

Registering an endpoint resolves its host name (private addresses are refused). The machine's
resolver is a network service, and when it was slow every lookup of a made-up name stalled a
test for the resolver's 5-second timeout. Numeric addresses and localhost resolve as usual; any
other name answers "not known", which is what the resolver says about these names when it
answers. Tests that need a name to resolve give the address policy their own resolver.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from typing import Any

import pytest

_system_getaddrinfo = socket.getaddrinfo
_LOCAL = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


def _is_local(host: Any) -> bool:
    if host is None:
        return True
    name = (host.decode() if isinstance(host, bytes) else str(host)).lower().rstrip(".")
    if name in _LOCAL or name.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(name.strip("[]").split("%")[0])
        return True
    except ValueError:
        pass
    try:
        socket.inet_aton(name)  # 2130706433, 0x7f.1: what getaddrinfo also reads as IPv4
        return True
    except OSError:
        return False


def offline_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if _is_local(host):
        return _system_getaddrinfo(host, *args, **kwargs)
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


@pytest.fixture(autouse=True, scope="session")
def _offline_dns() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket, "getaddrinfo", offline_getaddrinfo)
        yield
