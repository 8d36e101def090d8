"""The GitHub client wrapper against the fake GitHub: typed answers and one-line errors."""

from __future__ import annotations

import logging
import socket
import time
from pathlib import Path

import pytest

from modelarium.config import Settings
from modelarium.core.clients.github import (
    GitHubAuthError,
    GitHubClient,
    GitHubConflictError,
    GitHubNotFoundError,
    GitHubPermissionError,
    GitHubRateLimitError,
    GitHubUnavailableError,
)
from tests.fakes.github import DEFAULT_TOKEN, FakeGitHub, fake_github

__all__ = ["fake_github"]

REPO = "acme/catalog"


def settings_for(fake: FakeGitHub, tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": tmp_path,
        "github_api_url": fake.api_url,
        "github_token": DEFAULT_TOKEN,
        "github_write_interval": 0,
        "github_retries": 1,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def repo(fake_github: FakeGitHub) -> FakeGitHub:
    fake_github.create_repo(REPO, files={"models/a.json": "{}\n"})
    return fake_github


def test_github_enterprise_base_url_and_typed_answers(tmp_path: Path) -> None:
    with FakeGitHub(prefix="/api/v3") as fake:
        fake.create_repo(REPO, default_branch="trunk", files={"models/a.json": "{}\n"})
        client = GitHubClient(settings_for(fake, tmp_path))
        info = client.repo(REPO).value
        assert info is not None
        assert (info.default_branch, info.can_push) == ("trunk", True)
        head = client.branch(REPO, "trunk")
        tree = client.tree(REPO, head.tree_sha)
        paths = {i.path: i for i in tree.items}
        assert paths["models/a.json"].type == "blob"
        assert client.blob(REPO, paths["models/a.json"].sha) == b"{}\n"
        assert all(c.endpoint != "?" for c in fake.calls)  # every call went under /api/v3


def test_conditional_reads_answer_not_modified(repo: FakeGitHub, tmp_path: Path) -> None:
    client = GitHubClient(settings_for(repo, tmp_path))
    first = client.ref(REPO, "main")
    assert first.modified and first.value == repo.head(REPO, "main")
    again = client.ref(REPO, "main", etag=first.etag)
    assert (again.modified, again.value) == (False, None)
    repo.push(REPO, "main", {"models/b.json": "{}\n"})
    moved = client.ref(REPO, "main", etag=first.etag)
    assert moved.modified and moved.value == repo.head(REPO, "main")
    assert client.repo(REPO, etag=client.repo(REPO).etag).modified is False


def test_errors_are_one_clear_line_without_the_token(repo: FakeGitHub, tmp_path: Path) -> None:
    bad = "ghp_notTheRightTokenAtAll0123456789abcd"
    with pytest.raises(GitHubAuthError) as rejected:
        GitHubClient(settings_for(repo, tmp_path, github_token=bad)).repo(REPO)
    assert "rejected GITHUB_TOKEN" in str(rejected.value) and bad not in str(rejected.value)

    anonymous = GitHubClient(settings_for(repo, tmp_path, github_token=None))
    with pytest.raises(GitHubAuthError, match="set GITHUB_TOKEN"):
        anonymous.create_blob(REPO, b"x")

    client = GitHubClient(settings_for(repo, tmp_path))
    with pytest.raises(GitHubNotFoundError, match="not found"):
        client.repo("acme/missing")
    repo.set_push(REPO, "modelarium-bot", False)
    with pytest.raises(GitHubPermissionError) as denied:
        client.create_blob(REPO, b"x")
    text = str(denied.value)
    assert "no push rights" in text and "\n" not in text and DEFAULT_TOKEN not in text


def test_refused_writes_name_their_reason(repo: FakeGitHub, tmp_path: Path) -> None:
    client = GitHubClient(settings_for(repo, tmp_path))
    main = repo.head(REPO, "main") or ""
    client.create_ref(REPO, "topic", main)
    with pytest.raises(GitHubConflictError) as exists:
        client.create_ref(REPO, "topic", main)
    assert exists.value.reason == "ref-exists"
    ahead = repo.push(REPO, "topic", {"t.txt": "t\n"})
    with pytest.raises(GitHubConflictError) as not_ff:
        client.update_ref(REPO, "topic", main)
    assert not_ff.value.reason == "not-fast-forward"
    assert repo.head(REPO, "topic") == ahead
    client.create_pull(REPO, head="topic", base="main", title="t", body="")
    with pytest.raises(GitHubConflictError) as twice:
        client.create_pull(REPO, head="topic", base="main", title="t", body="")
    assert twice.value.reason == "pull-exists"
    found = client.pulls(REPO, head="topic").value
    assert found is not None and [p.number for p in found] == [1]


def test_short_rate_limits_are_waited_out(repo: FakeGitHub, tmp_path: Path) -> None:
    client = GitHubClient(settings_for(repo, tmp_path, github_max_rate_wait=30))
    repo.secondary_limit(retry_after=0, status=403)
    assert client.repo(REPO).value is not None
    repo.secondary_limit(retry_after=0, status=429)
    assert client.repo(REPO).value is not None
    assert repo.count("GET", "/repos/{owner}/{repo}") == 4  # each limited request, then again


def test_long_rate_limits_fail_at_once_with_retry_after(repo: FakeGitHub, tmp_path: Path) -> None:
    client = GitHubClient(settings_for(repo, tmp_path, github_max_rate_wait=30))
    repo.secondary_limit(retry_after=3600, status=403)
    started = time.monotonic()
    with pytest.raises(GitHubRateLimitError) as secondary:
        client.repo(REPO)
    assert time.monotonic() - started < 30  # did not sit out the hour
    assert secondary.value.retry_after == 3600
    assert "retry in 3600 s" in str(secondary.value)
    repo.secondary_limit(retry_after=900, status=429)
    with pytest.raises(GitHubRateLimitError) as too_many:
        client.repo(REPO)
    assert too_many.value.retry_after == 900
    repo.exhaust_rate_limit(reset_in=600)
    with pytest.raises(GitHubRateLimitError) as primary:
        client.repo(REPO)
    assert 500 < primary.value.retry_after <= 602


def test_github_down_is_retried_then_fails_clearly(repo: FakeGitHub, tmp_path: Path) -> None:
    client = GitHubClient(settings_for(repo, tmp_path, github_retries=2))
    repo.fail_next(502, times=2)
    assert client.repo(REPO).value is not None  # two failures, then the third try answers
    repo.reset_calls()
    repo.go_down(503)
    with pytest.raises(GitHubUnavailableError) as down:
        client.create_blob(REPO, b"x")
    assert str(down.value) == (
        "GitHub is unavailable (HTTP 503) while writing a blob, after 2 retries"
    )
    assert repo.count("POST") == 3


def test_unreachable_github(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once closed
    settings = Settings(
        data_dir=tmp_path,
        github_api_url=f"http://127.0.0.1:{port}",
        github_token=DEFAULT_TOKEN,
        github_retries=1,
    )  # type: ignore[call-arg]
    with pytest.raises(GitHubUnavailableError, match="unreachable") as unreachable:
        GitHubClient(settings).repo(REPO)
    assert DEFAULT_TOKEN not in str(unreachable.value)


def test_writes_are_paced(repo: FakeGitHub, tmp_path: Path) -> None:
    client = GitHubClient(settings_for(repo, tmp_path, github_write_interval=0.3))
    started = time.monotonic()
    client.create_blob(REPO, b"1")
    client.create_blob(REPO, b"2")
    client.repo(REPO)  # reads are not paced
    assert time.monotonic() - started >= 0.3


def test_the_token_never_reaches_the_logs(
    repo: FakeGitHub, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = GitHubClient(settings_for(repo, tmp_path))
    repo.fail_next(500)
    client.repo(REPO)
    repo.set_push(REPO, "modelarium-bot", False)
    with pytest.raises(GitHubPermissionError):
        client.create_blob(REPO, b"x")
    assert caplog.records  # PyGithub and urllib3 did log at debug level
    assert all(DEFAULT_TOKEN not in r.getMessage() for r in caplog.records)


def test_conditional_reads_when_github_is_down(repo: FakeGitHub, tmp_path: Path) -> None:
    client = GitHubClient(settings_for(repo, tmp_path, github_retries=0))
    repo.go_down(502)
    with pytest.raises(GitHubUnavailableError, match=r"HTTP 502\) while reading branch main"):
        client.ref(REPO, "main")
    assert GitHubUnavailableError("x").retryable and GitHubRateLimitError("x", 1).retryable
