"""The suite never asks the network's DNS server (tests/plugins/offline_dns.py)."""

from __future__ import annotations

import socket

import pytest


def test_made_up_names_are_unknown_and_local_addresses_resolve() -> None:
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo("vllm", 8000)
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo("models.example.com", 443)
    for host in ("127.0.0.1", "localhost", "::1", "2130706433"):
        assert socket.getaddrinfo(host, 80, type=socket.SOCK_STREAM), host
