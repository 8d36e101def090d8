"""The endpoint registry on both databases: secrets at rest, visibility, import/export, picks."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa

from modelarium.core.db.base import Base
from modelarium.core.db.models.endpoints import Endpoint, EndpointCheck
from modelarium.core.endpoints.probe import ProbeResult
from modelarium.core.errors import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    UsageError,
    ValidationError,
)
from modelarium.core.keys import rotate_all
from modelarium.core.rbac import Role
from modelarium.core.secrets import Keyring

OWNER = "U_OWNER"
OTHER = "U_OTHER"
ADMIN = "U_ADMIN"
KEY = "sk-live-0123456789abcdef"


def _raw(core, name: str) -> dict:
    with core.db.engine.connect() as connection:
        row = connection.execute(
            sa.text("SELECT api_key_token, api_key_last4 FROM endpoints WHERE name = :n"),
            {"n": name},
        ).one()
    return dict(row._mapping)


def _everything_stored(core) -> str:
    """Every row of every table, as text: where a secret in clear would show up."""
    parts = []
    with core.db.engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            for row in connection.execute(sa.select(table)):
                parts.append(repr(tuple(row)))
    return "\n".join(parts)


def test_keys_are_encrypted_at_rest_and_never_shown(core):
    view = core.endpoints.add(OWNER, "vllm", "http://vllm:8000", "openai-compatible", api_key=KEY)
    raw = _raw(core, "vllm")
    assert raw["api_key_token"] and KEY not in raw["api_key_token"]
    assert raw["api_key_last4"] == "cdef"
    assert core.keyring.decrypt(raw["api_key_token"]) == KEY
    assert KEY not in _everything_stored(core)  # not in the audit log either
    assert view.api_key_set and view.key_hint == "set (…cdef)"
    assert KEY not in json.dumps(view.data()) and KEY not in repr(view)
    resolved = core.endpoints.resolve("vllm", OWNER)
    assert resolved.api_key == KEY and KEY not in repr(resolved)
    assert (resolved.name, resolved.base_url, resolved.type) == (
        "vllm",
        "http://vllm:8000",
        "openai-compatible",
    )
    core.endpoints.edit(OWNER, "vllm", clear_api_key=True)
    assert _raw(core, "vllm") == {"api_key_token": None, "api_key_last4": None}
    assert core.endpoints.resolve("vllm", OWNER).api_key is None


def test_key_rotation_round_trip(core, settings):
    assert Endpoint.api_key_token in core.secret_columns
    core.endpoints.add(OWNER, "a", "http://a:1", "openai-compatible", api_key=KEY)
    core.endpoints.add(OWNER, "b", "http://b:1", "openai-compatible", api_key=KEY[::-1])
    core.endpoints.add(OWNER, "c", "http://c:1")
    before = {n: _raw(core, n)["api_key_token"] for n in "abc"}
    old_fingerprint = core.keyring.primary_fingerprint
    summary = rotate_all(core)
    assert "re-encrypted 2 secret(s)" in summary
    after = {n: _raw(core, n)["api_key_token"] for n in "abc"}
    assert after["c"] is None and after["a"] != before["a"] and after["b"] != before["b"]
    assert core.keyring.primary_fingerprint != old_fingerprint
    # a process starting now has only the new key, and still reads every secret
    fresh = Keyring.from_settings(settings)
    assert fresh.decrypt(after["a"]) == KEY and fresh.decrypt(after["b"]) == KEY[::-1]
    assert core.endpoints.resolve("a", OWNER).api_key == KEY
    assert _raw(core, "a")["api_key_last4"] == "cdef"


def test_visibility_and_who_may_change_what(core):
    core.endpoints.add(OWNER, "mine", "http://mine:1")
    core.rbac.grant(OWNER, Role.OPERATOR, granted_by=ADMIN)
    core.endpoints.add(OWNER, "ours", "http://ours:1", shared_with="everyone")
    assert [e.name for e in core.endpoints.list(OWNER)] == ["mine", "ours"]
    assert [e.name for e in core.endpoints.list(OTHER)] == ["ours"]
    assert [e.name for e in core.endpoints.list(ADMIN)] == ["mine", "ours"]
    with pytest.raises(NotFoundError, match="no endpoint named 'mine' that you can see"):
        core.endpoints.get(OTHER, "mine")
    with pytest.raises(NotFoundError):
        core.endpoints.edit(OTHER, "mine", base_url="http://x:1")
    with pytest.raises(PermissionDeniedError, match=r"only <@U_OWNER> \(its owner\) or an admin"):
        core.endpoints.edit(OTHER, "ours", base_url="http://x:1")
    with pytest.raises(PermissionDeniedError):
        core.endpoints.remove(OTHER, "ours")
    with pytest.raises(PermissionDeniedError, match="endpoint mine is private to its owner"):
        core.endpoints.resolve("mine", OTHER)
    with pytest.raises(NotFoundError, match="no endpoint named 'nope'"):
        core.endpoints.resolve("nope", OWNER)
    assert core.endpoints.resolve("ours", OTHER).name == "ours"
    assert core.endpoints.resolve("MINE", ADMIN).name == "mine"
    view, changed = core.endpoints.edit(ADMIN, "mine", base_url="http://moved:2")
    assert view.base_url == "http://moved:2" and changed == ["url http://moved:2"]
    assert core.endpoints.remove(ADMIN, "mine").name == "mine"


def test_sharing_with_everyone_needs_the_operator_role(core):
    with pytest.raises(PermissionDeniedError, match="needs the operator role"):
        core.endpoints.add(OTHER, "x", "http://x:1", shared_with="everyone")
    core.endpoints.add(OTHER, "x", "http://x:1")
    with pytest.raises(PermissionDeniedError, match="needs the operator role"):
        core.endpoints.edit(OTHER, "x", shared_with="everyone")
    core.rbac.grant(OTHER, Role.OPERATOR, granted_by=ADMIN)
    view, _ = core.endpoints.edit(OTHER, "x", shared_with="everyone")
    assert view.shared_with == "everyone"


def test_add_and_edit_rules(core):
    core.rbac.grant(OWNER, Role.OPERATOR, granted_by=ADMIN)  # custom health paths below
    core.endpoints.add(OWNER, "gpu-1", "http://gpu-1:11434")
    with pytest.raises(ConflictError, match="an endpoint named gpu-1 already exists"):
        core.endpoints.add(OTHER, "GPU-1", "http://elsewhere:1")
    with pytest.raises(UsageError, match="nothing to change"):
        core.endpoints.edit(OWNER, "gpu-1", base_url="http://gpu-1:11434/")
    with pytest.raises(UsageError, match="not both"):
        core.endpoints.edit(OWNER, "gpu-1", api_key=KEY, clear_api_key=True)
    core.endpoints.add(OWNER, "gpu-2", "http://gpu-2:11434")
    with pytest.raises(ConflictError, match="gpu-2 already exists"):
        core.endpoints.edit(OWNER, "gpu-1", new_name="gpu-2")
    view, changed = core.endpoints.edit(
        OWNER, "gpu-1", new_name="gpu-one", type="custom", health_path="/ready"
    )
    assert (view.name, view.type, view.health_path) == ("gpu-one", "custom", "/ready")
    assert changed == ["name gpu-1 -> gpu-one", "type custom", "health path /ready"]
    view, _ = core.endpoints.edit(OWNER, "gpu-one", type="ollama")
    assert view.health_path is None
    with pytest.raises(UsageError, match="custom endpoints only"):
        core.endpoints.edit(OWNER, "gpu-one", health_path="/x")


def test_an_edit_that_moves_the_endpoint_forgets_its_health(core):
    core.endpoints.add(OWNER, "gpu-1", "http://gpu-1:11434")
    with core.db.transaction() as session:
        row = session.scalar(sa.select(Endpoint).where(Endpoint.name == "gpu-1"))
        row.status, row.latency_ms, row.models = "healthy", 12.0, ["llama3.2:latest"]
        revision = row.revision
    view, _ = core.endpoints.edit(OWNER, "gpu-1", shared_with="owner", active=False)
    assert view.status == "healthy" and not view.active  # disabling keeps what was known
    view, _ = core.endpoints.edit(OWNER, "gpu-1", base_url="http://gpu-9:11434", active=True)
    assert (view.status, view.latency_ms, view.models) == ("unknown", None, ())
    # a check that started before the edit is not recorded against the moved endpoint
    stale = ProbeResult(view.id, True, 5.0, models=("x",), revision=revision)
    assert core.endpoints._record([stale], manual=False) == []
    with core.db.transaction() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(EndpointCheck)) == 0


def test_export_has_no_secrets_and_imports_back(core):
    core.rbac.grant(OWNER, Role.OPERATOR, granted_by=ADMIN)
    core.endpoints.add(OWNER, "a", "http://a:11434", api_key=KEY)
    core.endpoints.add(OWNER, "b", "https://b/v1", "openai-compatible", shared_with="everyone")
    core.endpoints.add(OWNER, "c", "http://c:1", "custom", health_path="/ready")
    core.endpoints.edit(OWNER, "c", active=False)
    document = core.endpoints.export(OWNER)
    text = json.dumps(document)
    assert KEY not in text and "cdef" not in text
    assert [e["name"] for e in document["endpoints"]] == ["a", "b", "c"]
    assert document["endpoints"][0] == {
        "name": "a",
        "base_url": "http://a:11434",
        "type": "ollama",
        "health_path": None,
        "shared_with": "owner",
        "active": True,
        "api_key_set": True,
    }
    for name in "abc":
        core.endpoints.remove(OWNER, name)
    created, updated = core.endpoints.import_endpoints(OWNER, text)
    assert (created, updated) == (["a", "b", "c"], [])
    assert core.endpoints.export(OWNER)["endpoints"] == [
        {**e, "api_key_set": False} for e in document["endpoints"]
    ]


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (
            [{"name": "ok", "base_url": "http://ok:1"}, {"name": "b", "base_url": "ftp://b"}],
            "entry 2 (b): the URL must start with http:// or https://",
        ),
        (
            [{"name": "ok", "base_url": "http://ok:1"}, {"name": "OK", "base_url": "http://x:1"}],
            "entry 2 (ok): the name is also used by entry 1",
        ),
        ([{"base_url": "http://x:1"}], "entry 1: missing name"),
        (
            [{"name": "k", "base_url": "http://x:1", "api_key": "sk-1"}],
            "entry 1 (k): carries 'api_key': imports never carry keys",
        ),
        (
            [{"name": "k", "base_url": "http://x:1", "colour": "red"}],
            "entry 1 (k): unknown field 'colour'",
        ),
        (
            [{"name": "s", "base_url": "http://x:1", "shared_with": "everyone"}],
            "entry 1 (s): sharing with everyone needs the operator role",
        ),
        (
            [{"name": "t", "base_url": "http://x:1", "type": "vllm"}],
            "entry 1 (t): endpoint type must be one of",
        ),
        ([{"name": "u", "base_url": "http://u:p@x:1"}], "entry 1 (u): the URL must not contain"),
        (["gpu-1"], "entry 1: expected an object, got str"),
        ([{"name": "taken", "base_url": "http://x:1"}], "entry 1 (taken): an endpoint with this"),
    ],
)
def test_an_invalid_entry_rejects_the_whole_import(core, entries, message):
    core.endpoints.add(OWNER, "taken", "http://taken:1")
    with pytest.raises(ValidationError) as error:
        core.endpoints.import_endpoints(OTHER, {"endpoints": entries})
    assert str(error.value).startswith(message), str(error.value)
    assert "u:p" not in str(error.value)
    assert [e.name for e in core.endpoints.list(ADMIN)] == ["taken"]


def test_import_documents_and_replace(core):
    with pytest.raises(ValidationError, match="not valid JSON"):
        core.endpoints.import_endpoints(OWNER, "{nope")
    with pytest.raises(ValidationError, match="has no endpoints"):
        core.endpoints.import_endpoints(OWNER, {"endpoints": []})
    with pytest.raises(ValidationError, match="not an endpoints export"):
        core.endpoints.import_endpoints(OWNER, {"format": "other", "endpoints": []})
    with pytest.raises(ValidationError, match="unsupported export version 9"):
        core.endpoints.import_endpoints(OWNER, {"version": 9, "endpoints": [{}]})
    created, _ = core.endpoints.import_endpoints(
        OWNER, [{"name": "a", "url": "http://a:1"}, {"name": "b", "base_url": "http://b:1"}]
    )
    assert created == ["a", "b"]
    core.endpoints.add(OTHER, "theirs", "http://t:1")
    with pytest.raises(ValidationError, match=r"entry 2 \(theirs\): the existing endpoint belongs"):
        core.endpoints.import_endpoints(
            OWNER,
            [{"name": "a", "base_url": "http://a:2"}, {"name": "theirs", "base_url": "http://t:1"}],
            replace=True,
        )
    assert core.endpoints.get(OWNER, "a").base_url == "http://a:1"  # all or nothing
    created, updated = core.endpoints.import_endpoints(
        OWNER,
        [{"name": "a", "base_url": "http://a:2"}, {"name": "c", "base_url": "http://c:1"}],
        replace=True,
    )
    assert (created, updated) == (["c"], ["a"])
    assert core.endpoints.get(OWNER, "a").base_url == "http://a:2"


def _set(core, name: str, **values) -> None:
    with core.db.transaction() as session:
        session.execute(sa.update(Endpoint).where(Endpoint.name == name).values(**values))


def test_pick_considers_own_and_shared_endpoints_only(core):
    core.rbac.grant(OTHER, Role.OPERATOR, granted_by=ADMIN)
    now = core.clock.now()
    for name, owner, shared, latency in [
        ("own-slow", OWNER, "owner", 90.0),
        ("shared-fast", OTHER, "everyone", 20.0),
        ("private-fastest", OTHER, "owner", 1.0),
    ]:
        core.endpoints.add(owner, name, f"http://{name}:1", shared_with=shared)
        _set(core, name, status="healthy", latency_ms=latency, models=["llama3.2:latest"])
    assert core.endpoints.pick("llama3.2", OWNER).chosen.name == "shared-fast"
    assert core.endpoints.pick("llama3.2", OTHER).chosen.name == "private-fastest"
    assert core.endpoints.pick("llama3.2").chosen.name == "shared-fast"  # no user: shared only
    _set(core, "shared-fast", cooldown_until=now + timedelta(seconds=30))
    result = core.endpoints.pick("LLAMA3.2:latest", OWNER)
    assert result.chosen.name == "own-slow"
    assert result.reason == "healthy, serves LLAMA3.2:latest, the only eligible endpoint (90 ms)"
    assert [(c.endpoint.name, c.eligible, c.reason) for c in result.candidates] == [
        ("shared-fast", False, "cooling down for 30s after a failure"),
        ("own-slow", True, "healthy, 90 ms recent response time"),
    ]
    _set(core, "own-slow", status="down", last_error="HTTP 500 from /api/version")
    with pytest.raises(NotFoundError) as error:
        core.endpoints.pick("llama3.2", OWNER)
    assert str(error.value) == (
        "no healthy endpoint serves 'llama3.2' now (shared-fast: cooling down for 30s after a "
        "failure; own-slow: down (HTTP 500 from /api/version))"
    )
    with pytest.raises(NotFoundError, match="no endpoint you can use serves 'mistral'"):
        core.endpoints.pick("mistral", OWNER)
    with pytest.raises(UsageError):
        core.endpoints.pick("  ", OWNER)


def test_pick_records_use_and_spreads_ties(core):
    for name in ("a", "b"):
        core.endpoints.add(OWNER, name, f"http://{name}:1")
        _set(core, name, status="healthy", latency_ms=10.0, models=["m"])
    first = core.endpoints.pick("m", OWNER).chosen.name
    core.clock.advance(1)
    second = core.endpoints.pick("m", OWNER).chosen.name
    assert {first, second} == {"a", "b"}
    assert core.endpoints.pick("m", OWNER, record=False).chosen.name == first
    counts = {e.name: e.use_count for e in core.endpoints.list(OWNER)}
    assert counts == {"a": 1, "b": 1}


def test_a_reported_failure_cools_the_endpoint_down(core):
    core.endpoints.add(OWNER, "a", "http://a:1")
    _set(core, "a", status="healthy", latency_ms=10.0, models=["m"])
    core.endpoints.report_failure("a", "connection reset mid-stream")
    with pytest.raises(NotFoundError, match="cooling down for 60s"):
        core.endpoints.pick("m", OWNER)
    assert core.endpoints.get(OWNER, "a").last_error == "connection reset mid-stream"
