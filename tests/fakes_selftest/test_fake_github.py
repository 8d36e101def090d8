"""Self-tests for FakeGitHub: the REAL PyGithub client must accept it as GitHub's REST API."""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path

import pytest
from github import Auth, Github, GithubException, InputGitTreeElement
from github.GithubException import (
    BadCredentialsException,
    RateLimitExceededException,
    UnknownObjectException,
)

from tests.fakes.github import DEFAULT_TOKEN, FakeGitHub, fake_github, git_blob_sha

__all__ = ["fake_github"]  # the fixture is imported for pytest, not unused

REPO = "acme/catalog"


def client(fake: FakeGitHub, token: str | None = DEFAULT_TOKEN) -> Github:
    """PyGithub as Modelarium would build it, minus retries (each test sees raw answers)."""
    return Github(
        auth=Auth.Token(token) if token else None,
        base_url=fake.api_url,
        retry=None,
        seconds_between_requests=None,
        seconds_between_writes=None,
    )


@pytest.fixture
def gh(fake_github: FakeGitHub) -> Github:
    fake_github.create_repo(REPO, files={"models/a.json": '{"id": "a"}\n', "README.md": "hi\n"})
    return client(fake_github)


def test_repository_and_default_branch(gh: Github, fake_github: FakeGitHub) -> None:
    repo = gh.get_repo(REPO)
    assert repo.full_name == REPO
    assert repo.default_branch == "main"
    assert repo.permissions.push is True
    branch = repo.get_branch("main")
    assert branch.commit.sha == fake_github.head(REPO, "main")
    assert branch.commit.commit.tree.sha == repo.get_git_commit(branch.commit.sha).tree.sha


def test_refs_create_update_and_their_errors(gh: Github, fake_github: FakeGitHub) -> None:
    repo = gh.get_repo(REPO)
    main = repo.get_git_ref("heads/main")
    assert main.object.sha == fake_github.head(REPO, "main")
    created = repo.create_git_ref("refs/heads/feature/x", main.object.sha)
    assert created.ref == "refs/heads/feature/x"
    with pytest.raises(GithubException) as exists:
        repo.create_git_ref("refs/heads/feature/x", main.object.sha)
    assert exists.value.status == 422
    assert exists.value.data["message"] == "Reference already exists"
    assert exists.value.data["documentation_url"].startswith("https://docs.github.com/")

    # a fast-forward moves the branch; going back needs force
    other = fake_github.push(REPO, "feature/x", {"b.txt": "b\n"})
    created.edit(other)
    assert fake_github.head(REPO, "feature/x") == other
    with pytest.raises(GithubException) as not_ff:
        created.edit(main.object.sha)
    assert not_ff.value.status == 422
    assert not_ff.value.data["message"] == "Update is not a fast forward"
    created.edit(main.object.sha, force=True)
    assert fake_github.head(REPO, "feature/x") == main.object.sha
    with pytest.raises(UnknownObjectException):
        repo.get_git_ref("heads/nope")


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git to compare object ids")
def test_git_objects_have_the_ids_git_gives_them(
    gh: Github, fake_github: FakeGitHub, tmp_path: Path
) -> None:
    repo = gh.get_repo(REPO)
    head = repo.get_branch("main").commit
    blob = repo.create_git_blob("hello\n", "utf-8")
    assert blob.sha == git_blob_sha(b"hello\n")
    base = repo.get_git_tree(head.commit.tree.sha)
    tree = repo.create_git_tree(
        [
            InputGitTreeElement("models/b.json", "100644", "blob", sha=blob.sha),
            InputGitTreeElement("README.md", "100644", "blob", sha=None),  # deletes it
        ],
        base,
    )
    # the same files through real git give the same tree id
    work = tmp_path / "w"
    (work / "models").mkdir(parents=True)
    (work / "models" / "a.json").write_text('{"id": "a"}\n')
    (work / "models" / "b.json").write_text("hello\n")
    subprocess.run(["git", "init", "-q", str(work)], check=True)
    subprocess.run(["git", "-C", str(work), "add", "."], check=True)
    expected = subprocess.run(
        ["git", "-C", str(work), "write-tree"], check=True, capture_output=True, text=True
    ).stdout.strip()
    assert tree.sha == expected

    commit = repo.create_git_commit("Add b", tree, [repo.get_git_commit(head.sha)])
    assert [p.sha for p in commit.parents] == [head.sha]
    listing = repo.get_git_tree(commit.tree.sha, recursive=True)
    assert {e.path for e in listing.tree} == {"models", "models/a.json", "models/b.json"}
    assert (
        repo.get_git_blob(blob.sha).content.replace("\n", "")
        == base64.b64encode(b"hello\n").decode()
    )


def test_contents_and_conditional_requests(gh: Github, fake_github: FakeGitHub) -> None:
    repo = gh.get_repo(REPO)
    content = repo.get_contents("models/a.json")
    assert not isinstance(content, list)
    assert content.decoded_content == b'{"id": "a"}\n'
    assert content.sha == git_blob_sha(b'{"id": "a"}\n')
    url = f"{fake_github.api_url}/repos/{REPO}/contents/models/a.json"
    status, headers, _ = gh.requester.requestJson("GET", url)
    assert status == 200
    etag = headers["etag"]
    remaining = int(headers["x-ratelimit-remaining"])
    status, headers, body = gh.requester.requestJson("GET", url, headers={"If-None-Match": etag})
    assert (status, body) == (304, "")
    assert int(headers["x-ratelimit-remaining"]) == remaining  # 304s are free
    fake_github.push(REPO, "main", {"models/a.json": '{"id": "a", "v": 2}\n'})
    status, _, _ = gh.requester.requestJson("GET", url, headers={"If-None-Match": etag})
    assert status == 200
    listing = repo.get_contents("models")
    assert isinstance(listing, list) and [c.path for c in listing] == ["models/a.json"]


def test_pull_requests_lifecycle(gh: Github, fake_github: FakeGitHub) -> None:
    repo = gh.get_repo(REPO)
    fake_github.push(REPO, "modelarium/catalog/b", {"models/b.json": "{}\n"})
    pull = repo.create_pull(base="main", head="modelarium/catalog/b", title="Add b", body="why")
    assert (pull.number, pull.state, pull.merged) == (1, "open", False)
    with pytest.raises(GithubException) as duplicate:
        repo.create_pull(base="main", head="modelarium/catalog/b", title="again", body="")
    assert duplicate.value.status == 422
    assert duplicate.value.data["errors"][0]["message"] == (
        "A pull request already exists for acme:modelarium/catalog/b."
    )
    found = list(repo.get_pulls(state="open", head="acme:modelarium/catalog/b"))
    assert [p.number for p in found] == [1]
    assert list(repo.get_pulls(state="open", head="acme:other")) == []

    pull.edit(title="Add model b", body="new body")
    assert repo.get_pull(1).body == "new body"
    head_before = repo.get_pull(1).head.sha
    moved = fake_github.push(REPO, "modelarium/catalog/b", {"models/b.json": '{"v": 2}\n'})
    assert repo.get_pull(1).head.sha == moved != head_before  # an open PR follows its branch

    fake_github.merge_pull(REPO, 1)
    merged = repo.get_pull(1)
    assert (merged.state, merged.merged) == ("closed", True)
    assert fake_github.file(REPO, "models/b.json") == b'{"v": 2}\n'
    assert fake_github.file(REPO, "models/a.json") == b'{"id": "a"}\n'
    closed = list(repo.get_pulls(state="closed"))
    assert closed[0].merged_at is not None

    fake_github.push(REPO, "topic", {"c.txt": "c\n"})
    other = repo.create_pull(base="main", head="topic", title="c", body="")
    fake_github.close_pull(REPO, other.number)
    closed_pull = repo.get_pull(other.number)
    assert (closed_pull.state, closed_pull.merged) == ("closed", False)


def test_pull_request_validation(gh: Github, fake_github: FakeGitHub) -> None:
    repo = gh.get_repo(REPO)
    with pytest.raises(GithubException) as missing_head:
        repo.create_pull(base="main", head="nope", title="x", body="")
    assert missing_head.value.data["errors"][0] == {
        "resource": "PullRequest",
        "code": "invalid",
        "field": "head",
    }
    repo.create_git_ref("refs/heads/same", fake_github.head(REPO, "main") or "")
    with pytest.raises(GithubException) as nothing:
        repo.create_pull(base="main", head="same", title="x", body="")
    assert "No commits between main and same" in nothing.value.data["errors"][0]["message"]


def test_deleting_a_head_branch_closes_its_pull_request(
    gh: Github, fake_github: FakeGitHub
) -> None:
    repo = gh.get_repo(REPO)
    fake_github.push(REPO, "gone", {"g.txt": "g\n"})
    pull = repo.create_pull(base="main", head="gone", title="g", body="")
    repo.get_git_ref("heads/gone").delete()
    assert repo.get_pull(pull.number).state == "closed"


def test_list_pagination(gh: Github, fake_github: FakeGitHub) -> None:
    repo = gh.get_repo(REPO)
    for i in range(5):
        fake_github.push(REPO, f"b{i}", {f"f{i}.txt": f"{i}\n"})
        repo.create_pull(base="main", head=f"b{i}", title=f"t{i}", body="")
    fake_github.reset_calls()
    pulls = Github(
        auth=Auth.Token(DEFAULT_TOKEN),
        base_url=fake_github.api_url,
        per_page=2,
        seconds_between_requests=None,
    )
    numbers = [p.number for p in pulls.get_repo(REPO).get_pulls(state="all")]
    assert numbers == [5, 4, 3, 2, 1]  # newest first, followed over three pages
    assert fake_github.count("GET", "/repos/{owner}/{repo}/pulls") == 3  # + the repo: 4 calls


def test_labels_and_comments(gh: Github, fake_github: FakeGitHub) -> None:
    repo = gh.get_repo(REPO)
    repo.create_label("catalog", "0e8a16", "Modelarium catalog")
    with pytest.raises(GithubException) as exists:
        repo.create_label("catalog", "0e8a16")
    assert exists.value.data["errors"][0]["code"] == "already_exists"
    fake_github.push(REPO, "l", {"l.txt": "l\n"})
    pull = repo.create_pull(base="main", head="l", title="l", body="")
    pull.add_to_labels("catalog", "new-model")  # an unknown label is created, as GitHub does
    assert fake_github.issue_labels(REPO, pull.number) == ["catalog", "new-model"]
    assert repo.get_label("new-model").color == "ededed"
    assert [label.name for label in repo.get_pull(pull.number).labels] == ["catalog", "new-model"]
    comment = pull.create_issue_comment("updated")
    assert comment.body == "updated"
    assert [c.body for c in pull.get_issue_comments()] == ["updated"]


def test_errors_as_github_sends_them(fake_github: FakeGitHub) -> None:
    fake_github.create_repo(REPO)
    fake_github.create_repo("acme/secret", private=True, writers=set())
    with pytest.raises(BadCredentialsException) as bad:
        client(fake_github, "ghp_wrongwrongwrongwrongwrongwrongwrong").get_repo(REPO)
    assert bad.value.status == 401
    assert bad.value.data == {
        "message": "Bad credentials",
        "documentation_url": "https://docs.github.com/rest",
        "status": "401",
    }
    gh = client(fake_github)
    with pytest.raises(UnknownObjectException):
        gh.get_repo("acme/secret")  # private and not ours: 404, not 403
    fake_github.set_push(REPO, "modelarium-bot", False)
    repo = gh.get_repo(REPO)
    assert repo.permissions.push is False
    with pytest.raises(GithubException) as denied:
        repo.create_git_blob("x", "utf-8")
    assert denied.value.status == 403
    assert denied.value.data["message"] == "Resource not accessible by personal access token"
    anonymous = client(fake_github, None).get_repo(REPO)
    with pytest.raises(GithubException) as anon:
        anonymous.create_git_blob("x", "utf-8")
    assert anon.value.status == 401


def test_rate_limits(fake_github: FakeGitHub) -> None:
    fake_github.create_repo(REPO)
    gh = client(fake_github)
    gh.get_repo(REPO)
    remaining, limit = gh.rate_limiting
    assert limit == 5000 and remaining == 4999
    fake_github.secondary_limit(retry_after=30)
    with pytest.raises(RateLimitExceededException) as secondary:
        gh.get_repo(REPO)
    assert secondary.value.status == 403
    assert secondary.value.headers is not None and secondary.value.headers["retry-after"] == "30"
    fake_github.secondary_limit(retry_after=5, status=429)
    with pytest.raises(GithubException) as too_many:
        gh.get_repo(REPO)
    assert too_many.value.status == 429
    fake_github.exhaust_rate_limit(reset_in=120)
    with pytest.raises(RateLimitExceededException) as primary:
        gh.get_repo(REPO)
    assert primary.value.data["message"].startswith("API rate limit exceeded for user ID")
    assert primary.value.headers is not None
    assert primary.value.headers["x-ratelimit-remaining"] == "0"


def test_down_and_injected_faults(fake_github: FakeGitHub) -> None:
    fake_github.create_repo(REPO)
    gh = client(fake_github)
    fake_github.go_down(502)
    with pytest.raises(GithubException) as down:
        gh.get_repo(REPO)
    assert down.value.status == 502
    fake_github.come_up()
    assert gh.get_repo(REPO).name == "catalog"
    fake_github.fail_next(500, method="POST", endpoint="/repos/{owner}/{repo}/git/blobs")
    repo = gh.get_repo(REPO)
    with pytest.raises(GithubException) as failed:
        repo.create_git_blob("x", "utf-8")
    assert failed.value.status == 500
    assert repo.create_git_blob("x", "utf-8").sha == git_blob_sha(b"x")


def test_enterprise_prefix_and_request_counter() -> None:
    with FakeGitHub(prefix="/api/v3") as fake:
        fake.create_repo(REPO)
        gh = client(fake)
        assert fake.api_url.endswith("/api/v3")
        repo = gh.get_repo(REPO)
        repo.get_branch("main")
        repo.get_branch("main")
        counts = fake.counter()
        assert counts["GET /repos/{owner}/{repo}"] == 1
        assert counts["GET /repos/{owner}/{repo}/branches/{branch+}"] == 2
        assert fake.count() == 3 and fake.count("POST") == 0
        assert not fake.errors
