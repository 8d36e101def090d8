"""Endpoints may not aim the daemon at loopback, link-local, metadata or private addresses.

Issue 13, item 3: any viewer could register ``http://169.254.169.254`` (or ``0x7f.1``,
``2130706433``, ``[::ffff:127.0.0.1]``) and have the daemon fetch it. These run at add time; the
connect-time check (DNS rebinding) is tested against a real server in
tests/integration/endpoints/test_ssrf.py.
"""

from __future__ import annotations

import pytest

from modelarium.core.errors import PermissionDeniedError, UsageError, ValidationError
from modelarium.core.rbac import Role
from tests.conftest import make_settings

OWNER = "U_OWNER"
ADMIN = "U_ADMIN"

REFUSED = [
    ("http://127.0.0.1:11434", "loopback"),
    ("http://127.1.2.3", "loopback"),
    ("http://[::1]:8080", "loopback"),
    ("http://[::ffff:127.0.0.1]:11434", "loopback"),
    ("http://[::ffff:7f00:1]", "loopback"),
    ("http://[64:ff9b::7f00:1]", "loopback"),
    ("http://0.0.0.0:11434", "loopback"),
    ("http://localhost:11434", "loopback"),
    ("http://ollama.localhost", "loopback"),
    ("http://169.254.169.254/latest/meta-data", "cloud metadata"),
    ("http://[fd00:ec2::254]", "cloud metadata"),
    ("http://100.100.100.200", "cloud metadata"),
    ("http://169.254.10.10", "link-local"),
    ("http://[fe80::1]", "link-local"),
    ("http://10.0.0.5:8000", "private"),
    ("http://192.168.1.20", "private"),
    ("http://172.16.0.1", "private"),
    ("http://100.64.0.1", "private"),
    ("http://[fd12:3456::1]", "private"),
]

OBFUSCATED = [
    "http://0x7f.1:11434",
    "http://2130706433:11434",
    "http://0177.0.0.1",
    "http://0x7f000001",
]


@pytest.mark.parametrize(("url", "kind"), REFUSED)
def test_internal_addresses_are_refused_at_add_time(core, url: str, kind: str):
    with pytest.raises(UsageError) as error:
        core.endpoints.add(OWNER, "x", url)
    text = str(error.value)
    assert kind in text and "MODELARIUM_ENDPOINT_ALLOWLIST" in text and "\n" not in text
    assert core.endpoints.list(ADMIN) == []


@pytest.mark.parametrize("url", OBFUSCATED)
def test_numeric_spellings_are_refused_whatever_they_mean(core, url: str):
    with pytest.raises(UsageError) as error:
        core.endpoints.add(OWNER, "x", url)
    assert "127.0.0.1" in str(error.value)
    assert core.endpoints.list(ADMIN) == []


def test_edit_and_import_are_checked_too(core):
    core.endpoints.add(OWNER, "gpu-1", "http://gpu-1.example:11434")
    with pytest.raises(UsageError, match="cloud metadata"):
        core.endpoints.edit(OWNER, "gpu-1", base_url="http://169.254.169.254")
    assert core.endpoints.get(OWNER, "gpu-1").base_url == "http://gpu-1.example:11434"
    with pytest.raises(ValidationError, match=r"entry 2 \(b\): refused: .*127\.0\.0\.1"):
        core.endpoints.import_endpoints(
            OWNER,
            [
                {"name": "a", "base_url": "http://a.example:1"},
                {"name": "b", "base_url": "http://2130706433:1"},
            ],
        )
    assert [e.name for e in core.endpoints.list(ADMIN)] == ["gpu-1"]


def test_the_allowlist_admits_ranges_and_hosts_but_not_metadata(tmp_path, database_url, make_core):

    settings = make_settings(
        tmp_path,
        database_url,
        endpoint_allowlist="127.0.0.0/8, 10.0.0.0/8, 169.254.0.0/16, LocalHost",
    )
    assert settings.endpoint_allowlist == [
        "127.0.0.0/8",
        "10.0.0.0/8",
        "169.254.0.0/16",
        "LocalHost",
    ]
    core = make_core(settings)
    core.endpoints.add(OWNER, "lo", "http://127.0.0.1:11434")
    core.endpoints.add(OWNER, "mapped", "http://[::ffff:127.0.0.1]:11434")
    core.endpoints.add(OWNER, "lan", "http://10.1.2.3:8000")
    core.endpoints.add(OWNER, "ll", "http://169.254.1.1")
    core.endpoints.add(OWNER, "named", "http://localhost:11434")
    with pytest.raises(UsageError, match="cloud metadata"):
        core.endpoints.add(OWNER, "imds", "http://169.254.169.254")
    with pytest.raises(UsageError, match="private"):
        core.endpoints.add(OWNER, "other-lan", "http://192.168.0.1")


@pytest.mark.parametrize("value", ["10.0.0.0/33", "300.1.1.1/8", "bad host!", "http://x"])
def test_a_bad_allowlist_entry_stops_start_up_with_one_line(value: str):
    from pydantic import ValidationError as PydanticError

    from modelarium.config import Settings

    with pytest.raises(PydanticError) as error:
        Settings(endpoint_allowlist=value)  # type: ignore[call-arg]
    assert "endpoint_allowlist" in str(error.value)


def test_custom_health_paths_are_for_operators(core):
    """A health path chooses the daemon's GET; viewers get the default /health."""
    with pytest.raises(PermissionDeniedError, match="operator"):
        core.endpoints.add(OWNER, "c", "http://c.example:1", "custom", health_path="/admin/x")
    view = core.endpoints.add(OWNER, "c", "http://c.example:1", "custom")
    assert view.health_path == "/health"
    with pytest.raises(PermissionDeniedError, match="operator"):
        core.endpoints.edit(OWNER, "c", health_path="/admin/x")
    with pytest.raises(ValidationError, match="operator"):
        core.endpoints.import_endpoints(
            OWNER,
            [
                {
                    "name": "d",
                    "base_url": "http://d.example:1",
                    "type": "custom",
                    "health_path": "/x",
                }
            ],
        )
    core.rbac.grant(OWNER, Role.OPERATOR, granted_by=ADMIN)
    view, _ = core.endpoints.edit(OWNER, "c", health_path="/ready")
    assert view.health_path == "/ready"
