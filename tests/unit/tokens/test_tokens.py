"""API tokens: lifecycle commands, hashing under the pepper, authentication reasons."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from modelarium.core.clock import FakeClock
from modelarium.core.errors import AuthenticationError, UsageError
from modelarium.core.logging import redact_text
from modelarium.core.secrets import SECRETS_FILE
from modelarium.core.tokens import parse_scopes
from tests.conftest import make_settings

TOKEN = re.compile(r"^mdl_[a-z0-9]{8}_[A-Za-z0-9_-]{40}$")


def test_create_shows_the_token_once_with_its_scopes_and_expiry(runner, core, clock) -> None:
    reply = runner.execute("token create ci-deploy --scope deploy,read --expires 30d", user="U_A")
    assert reply.ok, reply.text
    token = reply.data["token"]
    assert TOKEN.match(token) and token in reply.text and reply.visibility == "ephemeral"
    assert reply.data["scopes"] == ["deploy", "read"] and reply.data["status"] == "active"
    assert reply.data["expires_at"] == (clock.now() + timedelta(days=30)).isoformat()
    view = core.tokens.authenticate(token)
    assert (view.user, view.name, view.scopes) == ("U_A", "ci-deploy", ("deploy", "read"))

    listed = runner.execute("token list", user="U_A")
    assert token not in listed.text and token not in json.dumps(listed.data)
    assert listed.data["tokens"][0]["prefix"] == token[:12]
    assert runner.execute("token list", user="U_B").data["tokens"] == []

    default = runner.execute("token create plain", user="U_A").data
    assert default["scopes"] == ["read"] and default["expires_at"].startswith("2026-04-01")
    never = runner.execute("token create forever --expires never", user="U_A").data
    assert never["expires_at"] is None


def test_bad_input_is_one_line_and_the_usage(runner) -> None:
    for text, error in [
        ("token create x --scope root", "unknown scope 'root'"),
        ("token create x --scope ,", "--scope needs at least one of"),
        ("token create x --expires soon", "--expires: not a duration"),
        ("token create x --expires 0s", "--expires must be a positive duration"),
        ("token create 'Bad Name'", "invalid token name 'Bad Name'"),
        ("token rotate nothing", "no active token named 'nothing'"),
        ("token revoke nothing", "no active token named 'nothing'"),
    ]:
        reply = runner.execute(text, user="U_A")
        assert not reply.ok and error in reply.data["error"], (text, reply.data)
        assert "\n" not in reply.data["error"]
    runner.execute("token create dup", user="U_A")
    again = runner.execute("token create dup", user="U_A")
    assert not again.ok and again.outcome == "conflict"
    assert runner.execute("token create dup", user="U_B").ok  # names are per user


def test_rotate_and_revoke_refuse_the_old_secret_at_once_with_the_reason(runner, core) -> None:
    old = runner.execute("token create ci", user="U_A").data["token"]
    new = runner.execute("token rotate ci", user="U_A").data["token"]
    assert new != old and core.tokens.authenticate(new).name == "ci"
    with pytest.raises(AuthenticationError, match=r"was rotated on .* use the new one"):
        core.tokens.authenticate(old)
    assert runner.execute("token revoke ci", user="U_A").ok
    with pytest.raises(AuthenticationError, match=r"^API token mdl_\w{8} was revoked on"):
        core.tokens.authenticate(new)
    # the name is free again; the old rows stay for the reasons above
    assert runner.execute("token create ci", user="U_A").ok
    assert len(core.tokens.list("U_A", include_revoked=True)) == 3


def test_expired_tokens_cannot_be_used_or_rotated(runner, core, clock: FakeClock) -> None:
    token = runner.execute("token create ci --expires 1h", user="U_A").data["token"]
    clock.advance(3600)
    with pytest.raises(AuthenticationError, match="expired on"):
        core.tokens.authenticate(token)
    rotated = runner.execute("token rotate ci", user="U_A")
    assert not rotated.ok and "expired" in rotated.data["error"]
    assert runner.execute("token list", user="U_A").data["tokens"][0]["status"] == "expired"


def test_only_admins_see_and_revoke_other_peoples_tokens(runner, core) -> None:
    runner.execute("token create ci", user="U_BOB")
    assert not runner.execute("token list --all", user="U_BOB").ok
    refused = runner.execute("token revoke ci --user U_BOB", user="U_CAROL")
    assert not refused.ok and refused.outcome == "denied"
    everyone = runner.execute("token list --all", user="U_ADMIN")
    assert [t["user"] for t in everyone.data["tokens"]] == ["U_BOB"]
    assert runner.execute("token revoke ci --user U_BOB", user="U_ADMIN").ok
    assert core.tokens.list("U_BOB") == []
    (entry,) = core.audit.query(action="token.revoke", limit=1)
    assert entry.actor == "U_ADMIN" and entry.target.startswith("U_BOB/ci (mdl_")


def test_malformed_and_unknown_tokens(core) -> None:
    for token, reason in [
        ("", "not a Modelarium API token"),
        ("xoxb-123", "not a Modelarium API token"),
        ("mdl_short", "not a Modelarium API token"),
        ("mdl_abcdefgh_" + "x" * 40, "unknown API token"),
    ]:
        with pytest.raises(AuthenticationError, match=reason):
            core.tokens.authenticate(token)


def test_scopes_parse() -> None:
    assert parse_scopes(None) == ("read",)
    assert parse_scopes(" Deploy , read,deploy") == ("deploy", "read")
    with pytest.raises(UsageError):
        parse_scopes("read,everything")


def test_the_pepper_is_generated_once_and_a_different_pepper_refuses_every_token(
    tmp_path: Path, database_url: str, clock: FakeClock, make_core
) -> None:
    settings = make_settings(tmp_path, database_url)
    core = make_core(settings, clock=clock)
    issued = core.tokens.create("U_A", "ci", ("read",))
    stored = json.loads((settings.data_dir / SECRETS_FILE).read_text())
    assert len(stored["api_token_pepper"]) >= 32
    assert issued.secret not in (settings.data_dir / SECRETS_FILE).read_text()
    core.close()
    # A restart with the same data dir: same pepper, the token still works.
    again = make_core(settings, clock=clock, migrate=False)
    assert again.tokens.authenticate(issued.secret).name == "ci"
    other_settings = settings.model_copy(update={"api_token_pepper": SecretStr("another")})
    other = make_core(other_settings, clock=clock, migrate=False)
    with pytest.raises(AuthenticationError, match="unknown API token"):
        other.tokens.authenticate(issued.secret)


def test_tokens_are_redacted_from_log_text() -> None:
    token = "mdl_ab12cd34_" + "Z" * 40
    assert token not in redact_text(f"a request with {token} in it")
    assert token not in redact_text(f"Authorization: Bearer {token}")


def test_a_generated_pepper_beside_keys_from_the_environment_is_warned_about(
    tmp_path: Path,
) -> None:
    """Production sets its keys in the environment; a pepper kept in one replica's data dir
    would make the other replicas refuse its tokens, so that is said at start."""
    from structlog.testing import capture_logs

    from modelarium.core.secrets import Keyring, generate_key

    settings = make_settings(tmp_path, "sqlite://", encryption_keys=[generate_key()])
    with capture_logs() as logs:
        Keyring.from_settings(settings)
    assert [e["event"] for e in logs] == ["secrets.pepper_generated"]
    with capture_logs() as logs:
        Keyring.from_settings(settings.model_copy(update={"api_token_pepper": SecretStr("p")}))
    assert logs == []
