"""GitHub through PyGithub: one configured client, typed answers, one-line errors.

Every method is exactly one HTTP request made by PyGithub's ``Requester`` (its authentication,
retries, pacing and exception model), so callers can count what an operation costs; answers are
small frozen dataclasses rather than PyGithub objects, which would fetch lazily behind the
caller's back. GitHub Enterprise Server works through ``MODELARIUM_GITHUB_API_URL``
(``https://HOST/api/v3``) and the token comes from ``GITHUB_TOKEN``.

Throttling and retries, chosen on purpose:

- **Writes are paced** ``github_write_interval`` apart (default 1 s, PyGithub's default and
  GitHub's advice for avoiding secondary rate limits on mutating requests). Writes run in daemon
  jobs, where five seconds for a pull request is invisible; reads are not paced (the catalog sync
  costs one or two conditional requests).
- **5xx and connection failures are retried** ``github_retries`` times with exponential backoff
  (0 s, 1 s, 2 s ...), for every method: each write we make is idempotent or guarded (blobs and
  trees are content-addressed, a ref update is a compare-and-swap without ``force``, a duplicate
  pull request is answered 422 and found again), so a retried write never doubles anything that
  matters. When retries run out, GitHub's last answer becomes :class:`GitHubUnavailableError`.
- **Requests are serial per process** (a lock around each call): GitHub asks integrations to
  make requests for one token serially to stay clear of secondary rate limits, and it keeps
  PyGithub's connection from being shared by two job workers at once.
- **Rate limits are waited out only when short**: a 403/429 whose ``Retry-After`` (or primary
  limit reset) is within ``github_max_rate_wait`` is slept through by the retry policy; a longer
  one fails at once with :class:`GitHubRateLimitError` carrying ``retry_after`` so a job can be
  rescheduled instead of pinning a worker for an hour.

The token never appears in an error message: messages are built from the status and GitHub's own
``message`` field, then scrubbed of the token and of anything token-shaped.
"""

from __future__ import annotations

import base64
import functools
import json
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from modelarium import __version__
from modelarium.config.settings import Settings
from modelarium.core.errors import ConflictError, NotFoundError, UnreachableError, UpstreamError
from modelarium.core.logging import REDACTED, redact_text

if TYPE_CHECKING:  # PyGithub is imported when a client is made (a fifth of a second)
    from github import GithubException, GithubRetry
    from github.Requester import Requester

T = TypeVar("T")

BACKOFF_FACTOR = 0.5
SECONDARY_RATE_WAIT = 60.0
"""GitHub: without Retry-After, wait at least a minute after a secondary rate limit."""
_RETRY_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"})


# -- errors ------------------------------------------------------------------------------------
class GitHubError(UpstreamError):
    """GitHub refused or failed a request."""


class GitHubAuthError(GitHubError):
    """401: no token, or GitHub does not accept it."""


class GitHubPermissionError(GitHubError):
    """403 that is not a rate limit: the token may read but not do this (no push rights)."""


class GitHubNotFoundError(NotFoundError):
    """404: no such repository, branch, object or pull request (or the token cannot see it)."""


class GitHubRateLimitError(GitHubError, UnreachableError):
    """A rate limit longer than ``github_max_rate_wait``; ``retry_after`` says when to retry
    (retryable: a job tries again later)."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class GitHubUnavailableError(GitHubError, UnreachableError):
    """5xx or no answer, after the retries (retryable: a job tries again later)."""


class GitHubConflictError(ConflictError):
    """422/409: the request was understood and refused (``reason`` names which refusal)."""

    def __init__(self, message: str, reason: str, github_message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.github_message = github_message


_CONFLICTS = (
    ("reference already exists", "ref-exists"),
    ("reference does not exist", "ref-missing"),
    ("not a fast forward", "not-fast-forward"),
    ("a pull request already exists", "pull-exists"),
    ("no commits between", "no-commits"),
    ("already_exists", "exists"),
)


# -- answers -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Conditional(Generic[T]):
    """A conditional GET: ``modified`` False means 304 (``value`` None: keep what you had)."""

    value: T | None
    etag: str | None
    modified: bool


@dataclass(frozen=True)
class RepoInfo:
    full_name: str
    default_branch: str
    can_push: bool | None  # None: GitHub did not say (no token)
    private: bool
    html_url: str


@dataclass(frozen=True)
class BranchHead:
    name: str
    sha: str
    tree_sha: str


@dataclass(frozen=True)
class TreeItem:
    path: str
    type: str  # "blob", "tree", "commit"
    sha: str
    size: int | None


@dataclass(frozen=True)
class Tree:
    sha: str
    items: tuple[TreeItem, ...]
    truncated: bool


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    tree_sha: str
    parents: tuple[str, ...]
    message: str
    author_name: str
    author_email: str


@dataclass(frozen=True)
class PullInfo:
    number: int
    state: str  # "open" or "closed"
    merged: bool
    html_url: str
    title: str
    body: str
    head_ref: str
    head_sha: str | None
    base_ref: str
    labels: tuple[str, ...]
    user: str
    updated_at: str | None

    @property
    def status(self) -> str:
        """``open``, ``merged`` or ``closed`` (closed without merging)."""
        if self.state == "open":
            return "open"
        return "merged" if self.merged else "closed"


# -- retry policy ------------------------------------------------------------------------------
@functools.cache
def _retry_class() -> type[GithubRetry]:
    """The retry policy's class, made on first use (it subclasses PyGithub's)."""
    from github import GithubRetry
    from github.GithubException import RateLimitExceededExceedsMaxWait
    from urllib3.response import BaseHTTPResponse

    class _Retry(GithubRetry):
        """GithubRetry that also refuses to sleep through a Retry-After longer than the cap.

        GithubRetry caps waits it derives from a rate-limit *message*, but a 403/429 carrying
        ``Retry-After`` is slept by urllib3 for as long as GitHub asks; this closes that gap.
        """

        def increment(  # type: ignore[override]
            self,
            method: str | None = None,
            url: str | None = None,
            response: BaseHTTPResponse | None = None,
            error: Exception | None = None,
            _pool: Any = None,
            _stacktrace: Any = None,
        ) -> Any:
            if response is not None and response.status in (403, 429):
                wait = _seconds(response.headers.get("Retry-After"))
                cap = self.max_rate_limit_wait
                if wait is not None and cap is not None and wait > cap:
                    try:
                        data = json.loads(self.get_content(response, url or "") or b"null")
                    except ValueError:
                        data = None
                    raise RateLimitExceededExceedsMaxWait(
                        response.status, data, dict(response.headers), wait=wait
                    )
            return super().increment(method, url, response, error, _pool, _stacktrace)

    return _Retry


def _seconds(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def retry_policy(settings: Settings) -> GithubRetry:
    return _retry_class()(
        total=settings.github_retries,
        backoff_factor=BACKOFF_FACTOR,
        allowed_methods=_RETRY_METHODS,
        raise_on_status=False,  # the last answer reaches PyGithub, which raises it typed
        secondary_rate_wait=SECONDARY_RATE_WAIT,
        max_rate_limit_wait=settings.github_max_rate_wait,
    )


# -- the client --------------------------------------------------------------------------------
class GitHubClient:
    """One process-wide PyGithub connection (its write pacing is per connection)."""

    def __init__(self, settings: Settings, *, token: str | None = None) -> None:
        from github import Auth, Github

        secret = token or (
            settings.github_token.get_secret_value() if settings.github_token else None
        )
        self._token = secret
        self._retries = settings.github_retries
        self.api_url = settings.github_api_url.rstrip("/")
        self._github = Github(
            auth=Auth.Token(secret) if secret else None,
            base_url=self.api_url,
            timeout=int(max(1, settings.github_timeout)),
            user_agent=f"modelarium/{__version__}",
            retry=retry_policy(settings),
            seconds_between_requests=None,
            seconds_between_writes=settings.github_write_interval or None,
            lazy=True,
        )
        self._requester: Requester = self._github.requester
        self.last_rate_remaining: int | None = None
        self.calls = 0
        """API calls made (each method is one; PyGithub's retries of it are not counted)."""
        self._serial = threading.Lock()

    def close(self) -> None:
        self._github.close()

    @property
    def authenticated(self) -> bool:
        return self._token is not None

    # -- plumbing ----------------------------------------------------------------------------
    def _url(self, repo: str, path: str = "") -> str:
        return f"{self.api_url}/repos/{repo}{path}"

    def _scrub(self, text: str) -> str:
        if self._token:
            text = text.replace(self._token, REDACTED)
        return redact_text(text)

    def _call(self, what: str, repo: str | None, fn: Callable[[], T]) -> T:
        import requests
        from github import GithubException

        try:
            with self._serial:
                return fn()
        except GithubException as exc:
            raise self._translate(exc, what, repo) from None
        except (requests.exceptions.RetryError, requests.exceptions.ConnectionError) as exc:
            raise GitHubUnavailableError(
                self._scrub(
                    f"GitHub is unreachable at {self.api_url} while {what} "
                    f"({_first_line(exc)}; {self._retries} retries)"
                )
            ) from None
        except requests.exceptions.Timeout:
            raise GitHubUnavailableError(
                f"GitHub did not answer in time while {what} ({self._retries} retries)"
            ) from None

    def _translate(self, exc: GithubException, what: str, repo: str | None) -> Exception:
        from github.GithubException import RateLimitExceededExceedsMaxWait

        status = exc.status
        data = exc.data if isinstance(exc.data, Mapping) else {}
        message = str(data.get("message") or "").strip().splitlines()[0:1]
        said = message[0] if message else ""
        headers = {k.lower(): v for k, v in (exc.headers or {}).items()}
        where = f" on {repo}" if repo else ""
        scrub = self._scrub
        if isinstance(exc, RateLimitExceededExceedsMaxWait) or _is_rate_limit(
            status, said, headers
        ):
            wait = _retry_after(exc, headers)
            return GitHubRateLimitError(
                scrub(f"GitHub rate limit reached while {what}; retry in {wait:.0f} s"), wait
            )
        if status == 401:
            if not self._token:
                return GitHubAuthError(f"GitHub needs a token for {what}: set GITHUB_TOKEN")
            return GitHubAuthError(
                scrub(f"GitHub rejected GITHUB_TOKEN while {what} (401 {said or 'Unauthorized'})")
            )
        if status == 403:
            return GitHubPermissionError(
                scrub(
                    f"GitHub refused {what}{where}: the token has no push rights there "
                    f"(403 {said or 'Forbidden'})"
                )
            )
        if status == 404:
            return GitHubNotFoundError(
                scrub(f"GitHub: not found while {what}{where} (or the token cannot see it)")
            )
        if status in (409, 422):
            details = [
                str(e.get("message") or e.get("code") or "")
                for e in data.get("errors") or []
                if isinstance(e, Mapping)
            ]
            text = "; ".join([said, *[d for d in details if d]]) or "refused"
            reason = next((r for key, r in _CONFLICTS if key in text.lower()), "validation")
            return GitHubConflictError(
                scrub(f"GitHub refused {what}{where} ({status}: {text})"), reason, text
            )
        if status >= 500:
            return GitHubUnavailableError(
                f"GitHub is unavailable (HTTP {status}) while {what}, after {self._retries} retries"
            )
        return GitHubError(scrub(f"GitHub answered HTTP {status} while {what}: {said}"))

    def _json(self, verb: str, url: str, what: str, repo: str | None, **kw: Any) -> Any:
        def go() -> Any:
            self.calls += 1
            headers, data = self._requester.requestJsonAndCheck(verb, url, **kw)
            self._note_rate(headers)
            return data

        return self._call(what, repo, go)

    def _conditional(
        self,
        url: str,
        etag: str | None,
        what: str,
        repo: str,
        params: dict[str, Any] | None = None,
    ) -> tuple[Any, str | None, bool]:
        """(data or None on 304, etag, modified)."""

        def go() -> tuple[Any, str | None, bool]:
            self.calls += 1
            headers = {"If-None-Match": etag} if etag else None
            status, hdrs, body = self._requester.requestJson(
                "GET", url, parameters=params, headers=headers
            )
            self._note_rate(hdrs)
            new_etag = hdrs.get("etag") or etag
            if status == 304:
                return None, new_etag, False
            try:
                data = json.loads(body) if body else None
            except ValueError:  # GitHub's 5xx pages are HTML
                data = {"data": body[:200]}
            if status >= 400:
                from github.Requester import Requester

                raise Requester.createException(status, hdrs, data)
            return data, new_etag, True

        return self._call(what, repo, go)

    def _note_rate(self, headers: Mapping[str, Any]) -> None:
        remaining = headers.get("x-ratelimit-remaining")
        if remaining is not None and str(remaining).isdigit():
            self.last_rate_remaining = int(remaining)

    # -- repositories and branches -------------------------------------------------------
    def repo(self, repo: str, etag: str | None = None) -> Conditional[RepoInfo]:
        data, new_etag, modified = self._conditional(self._url(repo), etag, f"reading {repo}", repo)
        if not modified:
            return Conditional(None, new_etag, False)
        perms = data.get("permissions")
        return Conditional(
            RepoInfo(
                full_name=data["full_name"],
                default_branch=data["default_branch"],
                can_push=bool(perms.get("push")) if isinstance(perms, Mapping) else None,
                private=bool(data.get("private")),
                html_url=str(data.get("html_url", "")),
            ),
            new_etag,
            True,
        )

    def branch(self, repo: str, branch: str) -> BranchHead:
        quoted = urllib.parse.quote(branch)
        data = self._json(
            "GET", self._url(repo, f"/branches/{quoted}"), f"reading branch {branch}", repo
        )
        commit = data["commit"]
        return BranchHead(branch, commit["sha"], commit["commit"]["tree"]["sha"])

    def ref(self, repo: str, branch: str, etag: str | None = None) -> Conditional[str]:
        """The commit a branch points at (conditional: 304 while it has not moved)."""
        quoted = urllib.parse.quote(branch)
        data, new_etag, modified = self._conditional(
            self._url(repo, f"/git/ref/heads/{quoted}"), etag, f"reading branch {branch}", repo
        )
        if not modified:
            return Conditional(None, new_etag, False)
        return Conditional(str(data["object"]["sha"]), new_etag, True)

    def create_ref(self, repo: str, branch: str, sha: str) -> None:
        self._json(
            "POST",
            self._url(repo, "/git/refs"),
            f"creating branch {branch}",
            repo,
            input={"ref": f"refs/heads/{branch}", "sha": sha},
        )

    def update_ref(self, repo: str, branch: str, sha: str, *, force: bool = False) -> None:
        """Move a branch; without ``force`` GitHub refuses anything but a fast-forward, which
        makes this a compare-and-swap against whoever else pushes to the branch."""
        quoted = urllib.parse.quote(branch)
        self._json(
            "PATCH",
            self._url(repo, f"/git/refs/heads/{quoted}"),
            f"updating branch {branch}",
            repo,
            input={"sha": sha, "force": force},
        )

    # -- git data ----------------------------------------------------------------------------
    def tree(self, repo: str, sha: str, *, recursive: bool = True) -> Tree:
        params = {"recursive": 1} if recursive else None
        data = self._json(
            "GET",
            self._url(repo, f"/git/trees/{sha}"),
            "reading the catalog tree",
            repo,
            parameters=params,
        )
        items = tuple(
            TreeItem(str(i["path"]), str(i["type"]), str(i["sha"]), i.get("size"))
            for i in data.get("tree") or []
        )
        return Tree(str(data["sha"]), items, bool(data.get("truncated")))

    def blob(self, repo: str, sha: str) -> bytes:
        data = self._json("GET", self._url(repo, f"/git/blobs/{sha}"), f"reading blob {sha}", repo)
        if data.get("encoding") == "base64":
            return base64.b64decode(str(data.get("content", "")))
        return str(data.get("content", "")).encode()

    def create_blob(self, repo: str, content: bytes) -> str:
        data = self._json(
            "POST",
            self._url(repo, "/git/blobs"),
            "writing a blob",
            repo,
            input={"content": base64.b64encode(content).decode(), "encoding": "base64"},
        )
        return str(data["sha"])

    def create_tree(self, repo: str, base_tree: str | None, files: Mapping[str, str | None]) -> str:
        """A tree: ``base_tree`` with ``files`` (path -> blob sha, None deletes the path)."""
        entries = [
            {"path": path, "mode": "100644", "type": "blob", "sha": sha}
            for path, sha in sorted(files.items())
        ]
        body: dict[str, Any] = {"tree": entries}
        if base_tree:
            body["base_tree"] = base_tree
        data = self._json("POST", self._url(repo, "/git/trees"), "writing a tree", repo, input=body)
        return str(data["sha"])

    def create_commit(
        self,
        repo: str,
        message: str,
        tree: str,
        parents: Sequence[str],
        author: tuple[str, str] | None = None,
    ) -> str:
        body: dict[str, Any] = {"message": message, "tree": tree, "parents": list(parents)}
        if author is not None:
            body["author"] = {"name": author[0], "email": author[1]}
        data = self._json(
            "POST", self._url(repo, "/git/commits"), "writing a commit", repo, input=body
        )
        return str(data["sha"])

    def commit(self, repo: str, sha: str) -> CommitInfo:
        data = self._json(
            "GET", self._url(repo, f"/git/commits/{sha}"), f"reading commit {sha[:7]}", repo
        )
        author = data.get("author") or {}
        return CommitInfo(
            sha=str(data["sha"]),
            tree_sha=str(data["tree"]["sha"]),
            parents=tuple(str(p["sha"]) for p in data.get("parents") or []),
            message=str(data.get("message", "")),
            author_name=str(author.get("name", "")),
            author_email=str(author.get("email", "")),
        )

    # -- pull requests -----------------------------------------------------------------------
    def pulls(
        self,
        repo: str,
        *,
        state: str = "open",
        head: str | None = None,
        base: str | None = None,
        sort: str | None = None,
        direction: str | None = None,
        per_page: int = 100,
        etag: str | None = None,
    ) -> Conditional[list[PullInfo]]:
        """One page of pull requests (``head``: a branch of this repo)."""
        params: dict[str, Any] = {"state": state, "per_page": per_page}
        if head:
            params["head"] = f"{repo.split('/')[0]}:{head}"
        if base:
            params["base"] = base
        if sort:
            params["sort"] = sort
        if direction:
            params["direction"] = direction
        data, new_etag, modified = self._conditional(
            self._url(repo, "/pulls"), etag, "listing pull requests", repo, params
        )
        if not modified:
            return Conditional(None, new_etag, False)
        return Conditional([_pull(p) for p in data or []], new_etag, True)

    def pull(self, repo: str, number: int) -> PullInfo:
        data = self._json(
            "GET", self._url(repo, f"/pulls/{number}"), f"reading pull request #{number}", repo
        )
        return _pull(data)

    def create_pull(self, repo: str, *, head: str, base: str, title: str, body: str) -> PullInfo:
        data = self._json(
            "POST",
            self._url(repo, "/pulls"),
            f"opening a pull request from {head}",
            repo,
            input={
                "title": title,
                "head": head,
                "base": base,
                "body": body,
                "maintainer_can_modify": True,
            },
        )
        return _pull(data)

    def update_pull(
        self,
        repo: str,
        number: int,
        *,
        title: str | None = None,
        body: str | None = None,
        state: str | None = None,
    ) -> PullInfo:
        values = {k: v for k, v in (("title", title), ("body", body), ("state", state)) if v}
        data = self._json(
            "PATCH",
            self._url(repo, f"/pulls/{number}"),
            f"updating pull request #{number}",
            repo,
            input=values,
        )
        return _pull(data)

    def add_labels(self, repo: str, number: int, labels: Sequence[str]) -> tuple[str, ...]:
        """Add labels to an issue or pull request; GitHub creates unknown ones."""
        data = self._json(
            "POST",
            self._url(repo, f"/issues/{number}/labels"),
            f"labelling #{number}",
            repo,
            input={"labels": list(labels)},
        )
        return tuple(str(label["name"]) for label in data or [])

    def set_labels(self, repo: str, number: int, labels: Sequence[str]) -> tuple[str, ...]:
        """Replace the labels of an issue or pull request."""
        data = self._json(
            "PUT",
            self._url(repo, f"/issues/{number}/labels"),
            f"labelling #{number}",
            repo,
            input={"labels": list(labels)},
        )
        return tuple(str(label["name"]) for label in data or [])

    def create_label(self, repo: str, name: str, color: str, description: str = "") -> None:
        self._json(
            "POST",
            self._url(repo, "/labels"),
            f"creating label {name}",
            repo,
            input={"name": name, "color": color, "description": description},
        )

    def comment(self, repo: str, number: int, body: str) -> None:
        self._json(
            "POST",
            self._url(repo, f"/issues/{number}/comments"),
            f"commenting on #{number}",
            repo,
            input={"body": body},
        )


def _pull(data: Mapping[str, Any]) -> PullInfo:
    head = data.get("head") or {}
    base = data.get("base") or {}
    merged = data.get("merged")
    if merged is None:  # list answers carry merged_at, not merged
        merged = data.get("merged_at") is not None
    return PullInfo(
        number=int(data["number"]),
        state=str(data["state"]),
        merged=bool(merged),
        html_url=str(data.get("html_url", "")),
        title=str(data.get("title") or ""),
        body=str(data.get("body") or ""),
        head_ref=str(head.get("ref", "")),
        head_sha=head.get("sha"),
        base_ref=str(base.get("ref", "")),
        labels=tuple(str(label["name"]) for label in data.get("labels") or []),
        user=str((data.get("user") or {}).get("login", "")),
        updated_at=data.get("updated_at"),
    )


def _is_rate_limit(status: int, message: str, headers: Mapping[str, str]) -> bool:
    from github.Requester import Requester

    if status == 429:
        return True
    if status != 403:
        return False
    return (
        Requester.isRateLimitError(message)
        or "retry-after" in headers
        or headers.get("x-ratelimit-remaining") == "0"
    )


def _retry_after(exc: GithubException, headers: Mapping[str, str]) -> float:
    wait = getattr(exc, "wait", None)
    if isinstance(wait, int | float):
        return max(1.0, float(wait))
    after = _seconds(headers.get("retry-after"))
    if after is not None:
        return max(1.0, after)
    reset = headers.get("x-ratelimit-reset")
    if reset and reset.isdigit():
        return max(1.0, int(reset) - time.time() + 1)
    return SECONDARY_RATE_WAIT


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:160]}" if text else type(exc).__name__


def github_client(settings: Settings) -> GitHubClient:
    return GitHubClient(settings)
