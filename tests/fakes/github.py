"""Fake GitHub REST API (v3): the REAL PyGithub client talks to it through ``base_url``.

What it serves, with the shapes GitHub sends (``{"message", "documentation_url"}`` errors,
``422 Validation Failed`` with ``errors: [...]``, absolute ``url`` fields built on the fake's own
base so PyGithub follows them):

- ``GET /user``, ``GET /rate_limit``, ``GET /repos/{o}/{r}`` (``default_branch``, ``permissions``);
- ``GET /repos/{o}/{r}/branches/{b}`` (head commit with its tree);
- git refs: ``GET /git/ref/{ref}`` and ``/git/refs/{ref}``, ``POST /git/refs`` (422 "Reference
  already exists"), ``PATCH /git/refs/{ref}`` (422 "Update is not a fast forward" without
  ``force``), ``DELETE``;
- git blobs, trees (``base_tree``, nested paths, ``sha: null`` deletes, inline ``content``,
  ``?recursive=1``) and commits, with REAL git object ids (sha1 of ``blob N\\0...`` etc.);
- ``GET/PUT /contents/{path}`` (a person committing through the web UI);
- pulls: list (``state``, ``head=owner:branch``, ``base``, ``sort``, ``direction``, paginated with
  ``Link``), create (422 "A pull request already exists for owner:branch."), get, update;
  tests merge or close them (:meth:`FakeGitHub.merge_pull`, :meth:`FakeGitHub.close_pull`);
- labels (create; adding or setting unknown labels on an issue creates them, colour
  ``ededed``), issue comments;
- ``ETag`` on every 200 GET and ``304 Not Modified`` for a matching ``If-None-Match`` (not
  counted against the rate limit, as GitHub does for authenticated conditional requests);
- ``X-RateLimit-Limit/Remaining/Used/Reset/Resource`` on every answer; a primary limit
  (:meth:`FakeGitHub.exhaust_rate_limit`: 403 "API rate limit exceeded ...") and secondary limits
  (:meth:`FakeGitHub.secondary_limit`: 403 or 429 with ``Retry-After``);
- tokens: ``Authorization: token X`` or ``Bearer X``; an unknown token gets 401 "Bad
  credentials"; a token without push rights gets 403 "Resource not accessible by personal access
  token" on writes; a private repo is 404 to strangers;
- faults: :meth:`FakeGitHub.go_down` (every request 5xx with an HTML body, like GitHub's unicorn
  page), :meth:`FakeGitHub.fail_next`;
- measuring: :attr:`FakeGitHub.calls` (method, endpoint template, status) and
  :meth:`FakeGitHub.count`.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple
from urllib.parse import quote, unquote, urlencode

import pytest

from tests.fakes.http import FakeHTTPServer, Request, Response

__all__ = [
    "DEFAULT_TOKEN",
    "Call",
    "FakeGitHub",
    "fake_github",
    "git_blob_sha",
]

DEFAULT_TOKEN = "ghp_fakeFAKEfake0123456789abcdefghijklmn"
"""The token :class:`FakeGitHub` accepts unless told otherwise (user ``modelarium-bot``)."""
DEFAULT_LOGIN = "modelarium-bot"
DOCS = "https://docs.github.com/rest"
_EPOCH = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
_UNICORN = (
    "<!DOCTYPE html><html><head><title>Unicorn! &middot; GitHub</title></head>"
    "<body><p>No server is currently available to service your request.</p></body></html>"
)


# ---------------------------------------------------------------------------------------------
# git objects, hashed as git hashes them
# ---------------------------------------------------------------------------------------------
def _git_sha(kind: str, body: bytes) -> str:
    return hashlib.sha1(f"{kind} {len(body)}\0".encode() + body).hexdigest()


def git_blob_sha(data: bytes) -> str:
    """The id git gives a blob with this content (what ``git hash-object`` prints)."""
    return _git_sha("blob", data)


@dataclass(frozen=True)
class _Entry:
    mode: str  # "100644", "100755", "040000", "160000", "120000"
    type: str  # "blob", "tree", "commit"
    sha: str


def _tree_body(entries: Mapping[str, _Entry]) -> bytes:
    def order(name: str) -> bytes:
        # git sorts tree entries by name, comparing a subtree as if its name ended in "/"
        return (name + "/" if entries[name].type == "tree" else name).encode()

    out = b""
    for name in sorted(entries, key=order):
        entry = entries[name]
        mode = entry.mode.lstrip("0") or "0"
        out += f"{mode} {name}".encode() + b"\0" + bytes.fromhex(entry.sha)
    return out


@dataclass
class _Commit:
    sha: str
    tree: str
    parents: list[str]
    message: str
    author: dict[str, str]
    committer: dict[str, str]


def _signature(person: Mapping[str, str]) -> str:
    when = datetime.fromisoformat(person["date"].replace("Z", "+00:00"))
    return f"{person['name']} <{person['email']}> {int(when.timestamp())} +0000"


@dataclass
class _Pull:
    number: int
    title: str
    body: str | None
    head_ref: str
    head_owner: str
    base_ref: str
    user: str
    created_at: datetime
    updated_at: datetime
    draft: bool = False
    maintainer_can_modify: bool = True
    state: str = "open"
    merged_at: datetime | None = None
    closed_at: datetime | None = None
    merge_commit_sha: str | None = None
    frozen_head_sha: str | None = None  # a closed PR keeps the head it had
    frozen_base_sha: str | None = None


@dataclass
class _Repo:
    id: int
    owner: str
    name: str
    default_branch: str
    private: bool
    created_at: datetime
    blobs: dict[str, bytes] = field(default_factory=dict)
    trees: dict[str, dict[str, _Entry]] = field(default_factory=dict)
    commits: dict[str, _Commit] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)  # "heads/main" -> sha
    pulls: dict[int, _Pull] = field(default_factory=dict)
    labels: dict[str, dict[str, Any]] = field(default_factory=dict)  # lower name -> label
    issue_labels: dict[int, list[str]] = field(default_factory=dict)  # number -> lower names
    comments: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    readers: set[str] = field(default_factory=set)
    writers: set[str] = field(default_factory=set)
    next_number: int = 1

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


class Call(NamedTuple):
    """One answered request: method, endpoint template (``/repos/{owner}/{repo}/pulls``), status."""

    method: str
    endpoint: str
    status: int


class _Fail(Exception):
    """Raised by handlers: becomes a GitHub-shaped error answer."""

    def __init__(
        self,
        status: int,
        message: str,
        docs: str = DOCS,
        errors: list[dict[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.docs = docs
        self.errors = errors
        self.headers = dict(headers or {})


def _not_found(docs: str = DOCS) -> _Fail:
    return _Fail(404, "Not Found", docs)


def _invalid(resource: str, field_: str | None, code: str, message: str | None = None) -> _Fail:
    error: dict[str, Any] = {"resource": resource, "code": code}
    if field_ is not None:
        error["field"] = field_
    if message is not None:
        error["message"] = message
    return _Fail(422, "Validation Failed", DOCS, [error])


@dataclass
class _Fault:
    status: int
    remaining: int
    retry_after: int | None = None
    message: str | None = None
    method: str | None = None
    endpoint_contains: str | None = None

    def matches(self, method: str, endpoint: str) -> bool:
        if self.method is not None and self.method != method:
            return False
        return self.endpoint_contains is None or self.endpoint_contains in endpoint


_Params = dict[str, str]
_Login = str | None
_Decorator = Callable[[Callable[..., Response]], Callable[..., Response]]
_ROUTES: list[tuple[str, re.Pattern[str], str, str]] = []


def _route(
    method: str, template: str
) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
    """Register a handler for ``template`` (``{ref+}`` matches slashes, ``{x}`` does not)."""
    pattern = re.escape(template)
    pattern = re.sub(r"\\\{(\w+)\\\+\\\}", r"(?P<\1>.+)", pattern)
    pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", pattern)

    def deco(fn: Callable[..., Response]) -> Callable[..., Response]:
        _ROUTES.append((method, re.compile(f"^{pattern}$"), template, fn.__name__))
        return fn

    return deco


class FakeGitHub(FakeHTTPServer):
    """A local GitHub: :meth:`create_repo`, then point PyGithub at :attr:`api_url`.

    ``prefix="/api/v3"`` serves the API under a path, as GitHub Enterprise Server does.
    """

    def __init__(self, *, prefix: str = "", rate_limit: int = 5000) -> None:
        super().__init__()
        self.prefix = prefix.rstrip("/")
        self.tokens: dict[str, str] = {DEFAULT_TOKEN: DEFAULT_LOGIN}
        self.repos: dict[str, _Repo] = {}
        self.calls: list[Call] = []
        self.rate_limit = rate_limit
        self.rate_used: dict[str, int] = {}
        self.rate_reset = int(time.time()) + 3600
        self.no_push_status = 403
        self._faults: list[_Fault] = []
        self._down: int | None = None
        self._ids = itertools.count(1000)
        self._clock = itertools.count()
        self._lock = threading.RLock()

    # -- addresses ----------------------------------------------------------------------------
    @property
    def api_url(self) -> str:
        """What to give PyGithub as ``base_url`` (and Modelarium as MODELARIUM_GITHUB_API_URL)."""
        return self.url + self.prefix

    def _api(self, path: str) -> str:
        return f"{self.api_url}{path}"

    def _html(self, path: str) -> str:
        return f"{self.url}/html{path}"  # where github.com would be

    # -- setting up ---------------------------------------------------------------------------
    def add_token(self, token: str, login: str) -> None:
        with self._lock:
            self.tokens[token] = login

    def create_repo(
        self,
        full_name: str,
        *,
        default_branch: str = "main",
        private: bool = False,
        files: Mapping[str, bytes | str] | None = None,
        writers: set[str] | None = None,
    ) -> None:
        """A repository with one initial commit on ``default_branch`` holding ``files``."""
        owner, name = full_name.split("/")
        with self._lock:
            repo = _Repo(
                id=next(self._ids),
                owner=owner,
                name=name,
                default_branch=default_branch,
                private=private,
                created_at=_EPOCH,
                writers=set(writers) if writers is not None else {DEFAULT_LOGIN},
            )
            repo.readers = set(repo.writers)
            self.repos[full_name.lower()] = repo
            tree = self._apply(repo, None, {p: _bytes(c) for p, c in (files or {}).items()})
            sha = self._new_commit(repo, tree, [], "Initial commit", self._person("octocat"))
            repo.refs[f"heads/{default_branch}"] = sha

    def set_push(self, full_name: str, login: str, allowed: bool) -> None:
        """Give or take push rights (read rights stay)."""
        with self._lock:
            repo = self.repos[full_name.lower()]
            repo.readers.add(login)
            (repo.writers.add if allowed else repo.writers.discard)(login)

    def push(
        self,
        full_name: str,
        branch: str,
        files: Mapping[str, bytes | str | None],
        *,
        message: str = "Edit files",
        author: str = "a-person",
    ) -> str:
        """A person pushes one commit to ``branch`` (created from the default branch if new);
        ``None`` deletes a file. Returns the commit sha."""
        with self._lock:
            repo = self.repos[full_name.lower()]
            parent = repo.refs.get(f"heads/{branch}") or repo.refs[f"heads/{repo.default_branch}"]
            base = repo.commits[parent].tree
            changes = {p: (None if c is None else _bytes(c)) for p, c in files.items()}
            tree = self._apply(repo, base, changes)
            sha = self._new_commit(repo, tree, [parent], message, self._person(author))
            repo.refs[f"heads/{branch}"] = sha
            return sha

    def file(self, full_name: str, path: str, ref: str | None = None) -> bytes | None:
        """A file's content at a branch (default branch) or commit, or None."""
        with self._lock:
            repo = self.repos[full_name.lower()]
            sha = self._resolve(repo, ref or repo.default_branch)
            if sha is None:
                return None
            entry = self._lookup(repo, repo.commits[sha].tree, path)
            return repo.blobs[entry.sha] if entry and entry.type == "blob" else None

    def head(self, full_name: str, branch: str) -> str | None:
        with self._lock:
            return self.repos[full_name.lower()].refs.get(f"heads/{branch}")

    def commit_message(self, full_name: str, sha: str) -> str:
        with self._lock:
            return self.repos[full_name.lower()].commits[sha].message

    def commit_parents(self, full_name: str, sha: str) -> list[str]:
        with self._lock:
            return list(self.repos[full_name.lower()].commits[sha].parents)

    def pulls(self, full_name: str) -> list[dict[str, Any]]:
        """Every pull request of a repo as GitHub renders one (tests inspect these)."""
        with self._lock:
            repo = self.repos[full_name.lower()]
            return [self._pull_json(repo, p, full=True) for p in repo.pulls.values()]

    def issue_labels(self, full_name: str, number: int) -> list[str]:
        with self._lock:
            repo = self.repos[full_name.lower()]
            return [repo.labels[n]["name"] for n in repo.issue_labels.get(number, [])]

    def merge_pull(self, full_name: str, number: int, *, delete_branch: bool = False) -> str:
        """Merge an open PR as the merge button would: a merge commit on the base branch whose
        tree is the base plus what the head changed since their merge base."""
        with self._lock:
            repo = self.repos[full_name.lower()]
            pull = repo.pulls[number]
            assert pull.state == "open", "only an open pull request can be merged"
            head = repo.refs[f"heads/{pull.head_ref}"]
            base = repo.refs[f"heads/{pull.base_ref}"]
            ancestor = self._merge_base(repo, head, base)
            changes = self._diff(
                repo, repo.commits[ancestor].tree if ancestor else None, repo.commits[head].tree
            )
            tree = self._apply(repo, repo.commits[base].tree, changes)
            message = f"Merge pull request #{number} from {pull.head_owner}/{pull.head_ref}"
            sha = self._new_commit(repo, tree, [base, head], message, self._person("reviewer"))
            repo.refs[f"heads/{pull.base_ref}"] = sha
            now = self._now()
            pull.frozen_head_sha, pull.frozen_base_sha = head, base
            pull.state, pull.merged_at, pull.closed_at = "closed", now, now
            pull.merge_commit_sha = sha
            pull.updated_at = now
            if delete_branch:
                del repo.refs[f"heads/{pull.head_ref}"]
            return sha

    def close_pull(self, full_name: str, number: int) -> None:
        """Close a PR without merging it."""
        with self._lock:
            repo = self.repos[full_name.lower()]
            self._close(repo, repo.pulls[number])

    # -- faults ------------------------------------------------------------------------------
    def go_down(self, status: int = 503) -> None:
        """Every request answers ``status`` with GitHub's HTML error page until :meth:`come_up`."""
        self._down = status

    def come_up(self) -> None:
        self._down = None

    def fail_next(
        self,
        status: int,
        *,
        times: int = 1,
        retry_after: int | None = None,
        message: str | None = None,
        method: str | None = None,
        endpoint: str | None = None,
    ) -> None:
        """The next ``times`` matching requests answer ``status`` (a 403/429 with
        ``retry_after`` is a secondary rate limit)."""
        with self._lock:
            self._faults.append(_Fault(status, times, retry_after, message, method, endpoint))

    def secondary_limit(self, *, retry_after: int = 60, status: int = 403, times: int = 1) -> None:
        """GitHub's secondary rate limit: 403 (or 429) with ``Retry-After``."""
        self.fail_next(
            status,
            times=times,
            retry_after=retry_after,
            message=(
                "You have exceeded a secondary rate limit. Please wait a few minutes before you "
                "try again. If you reach out to GitHub Support for help, please include the "
                "request ID 0000:FAKE."
            ),
        )

    def exhaust_rate_limit(self, login: str = DEFAULT_LOGIN, *, reset_in: int = 600) -> None:
        """The primary limit is used up until ``reset_in`` seconds from now."""
        with self._lock:
            self.rate_used[login] = self.rate_limit
            self.rate_reset = int(time.time()) + reset_in

    # -- measuring ---------------------------------------------------------------------------
    def count(self, method: str | None = None, endpoint: str | None = None) -> int:
        """Answered requests, optionally of one method and/or endpoint template."""
        with self._lock:
            return sum(
                1
                for c in self.calls
                if (method is None or c.method == method)
                and (endpoint is None or c.endpoint == endpoint)
            )

    def counter(self) -> Counter[str]:
        """``"METHOD /endpoint/template"`` -> number of requests."""
        with self._lock:
            return Counter(f"{c.method} {c.endpoint}" for c in self.calls)

    def reset_calls(self) -> None:
        with self._lock:
            self.calls.clear()

    # -- HTTP --------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        path = unquote(request.route)
        if self.prefix:
            if not path.startswith(self.prefix + "/"):
                return self._finish(request, "?", None, self._error(_not_found()))
            path = path[len(self.prefix) :]
        method = request.method
        for route_method, pattern, template, name in _ROUTES:  # noqa: B007 (used after break)
            if route_method != method:
                continue
            match = pattern.match(path)
            if match:
                break
        else:
            return self._finish(request, path, None, self._error(_not_found()))
        with self._lock:
            login: str | None = None
            try:
                if self._down is not None:
                    body = _UNICORN.encode()
                    resp = Response(self._down, body, {"Content-Type": "text/html; charset=utf-8"})
                    return self._finish(request, template, None, resp, count_rate=False)
                login = self._authenticate(request)
                fault = self._take_fault(method, template)
                if fault is not None:
                    return self._finish(request, template, login, self._fault_response(fault))
                self._check_rate(login)
                handler = getattr(self, name)
                response = handler(request, match.groupdict(), login)
            except _Fail as fail:
                response = self._error(fail)
            return self._finish(request, template, login, response)

    def _finish(
        self,
        request: Request,
        template: str,
        login: str | None,
        response: Response,
        *,
        count_rate: bool = True,
    ) -> Response:
        if request.method == "GET" and response.status == 200 and isinstance(response.body, bytes):
            etag = 'W/"' + hashlib.sha256(response.body).hexdigest()[:32] + '"'
            response.headers["ETag"] = etag
            wanted = {
                t.strip().removeprefix("W/")
                for t in request.headers.get("if-none-match", "").split(",")
            }
            if etag.removeprefix("W/") in wanted:
                response = Response(304, b"", {"ETag": etag})
        free = response.status == 304 and login is not None
        key = login or "anonymous"
        if count_rate and not free and template != "/rate_limit" and response.status < 500:
            self.rate_used[key] = self.rate_used.get(key, 0) + 1
        limit = self.rate_limit if login else 60
        used = min(self.rate_used.get(key, 0), limit)
        response.headers.update(
            {
                "X-RateLimit-Limit": str(limit),
                "X-RateLimit-Remaining": str(limit - used),
                "X-RateLimit-Used": str(used),
                "X-RateLimit-Reset": str(self.rate_reset),
                "X-RateLimit-Resource": "core",
                "X-GitHub-Media-Type": "github.v3; format=json",
                "X-GitHub-Request-Id": f"FAKE:{len(self.calls):06d}",
            }
        )
        with self._lock:
            self.calls.append(Call(request.method, template, response.status))
        return response

    def _error(self, fail: _Fail) -> Response:
        body: dict[str, Any] = {"message": fail.message}
        if fail.errors is not None:
            body["errors"] = fail.errors
        body["documentation_url"] = fail.docs
        body["status"] = str(fail.status)
        return Response.json(body, status=fail.status, headers=fail.headers)

    def _authenticate(self, request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        if not header:
            return None
        scheme, _, credential = header.partition(" ")
        login = self.tokens.get(credential.strip())
        if scheme.lower() not in ("token", "bearer") or login is None:
            raise _Fail(401, "Bad credentials", DOCS)
        return login

    def _check_rate(self, login: str | None) -> None:
        key = login or "anonymous"
        limit = self.rate_limit if login else 60
        if self.rate_used.get(key, 0) >= limit:
            who = f"user ID {_stable_id(key)}" if login else "127.0.0.1"
            raise _Fail(
                403,
                f"API rate limit exceeded for {who}. (But here's the good news: Authenticated "
                "requests get a higher rate limit. Check out the documentation for more details.)",
                "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
            )

    def _take_fault(self, method: str, template: str) -> _Fault | None:
        for fault in self._faults:
            if fault.remaining > 0 and fault.matches(method, template):
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._faults.remove(fault)
                return fault
        return None

    def _fault_response(self, fault: _Fault) -> Response:
        headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
        if fault.status >= 500 and fault.message is None:
            return Response(
                fault.status, _UNICORN.encode(), {"Content-Type": "text/html", **headers}
            )
        message = fault.message or {401: "Bad credentials", 404: "Not Found"}.get(
            fault.status, "Server Error"
        )
        return self._error(_Fail(fault.status, message, DOCS, headers=headers))

    # -- access ------------------------------------------------------------------------------
    def _repo(self, params: Mapping[str, str], login: str | None, *, write: bool = False) -> _Repo:
        repo = self.repos.get(f"{params['owner']}/{params['repo']}".lower())
        if repo is None or (repo.private and login not in repo.readers):
            raise _not_found("https://docs.github.com/rest/repos/repos#get-a-repository")
        if write:
            if login is None:
                raise _Fail(401, "Requires authentication", DOCS)
            if login not in repo.writers:
                if self.no_push_status == 404:
                    raise _not_found()
                raise _Fail(403, "Resource not accessible by personal access token", DOCS)
        return repo

    # -- git object helpers --------------------------------------------------------------------
    def _now(self) -> datetime:
        return _EPOCH + timedelta(minutes=next(self._clock))

    def _person(self, login: str) -> dict[str, str]:
        return {
            "name": login,
            "email": f"{login}@users.noreply.github.com",
            "date": self._now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        }

    def _store_tree(self, repo: _Repo, entries: dict[str, _Entry]) -> str:
        sha = _git_sha("tree", _tree_body(entries))
        repo.trees[sha] = dict(entries)
        return sha

    def _store_blob(self, repo: _Repo, data: bytes) -> str:
        sha = git_blob_sha(data)
        repo.blobs[sha] = data
        return sha

    def _new_commit(
        self,
        repo: _Repo,
        tree: str,
        parents: list[str],
        message: str,
        author: dict[str, str],
        committer: dict[str, str] | None = None,
    ) -> str:
        committer = committer or author
        body = f"tree {tree}\n"
        body += "".join(f"parent {p}\n" for p in parents)
        body += f"author {_signature(author)}\ncommitter {_signature(committer)}\n\n{message}"
        sha = _git_sha("commit", body.encode())
        repo.commits[sha] = _Commit(sha, tree, list(parents), message, author, committer)
        return sha

    def _apply(self, repo: _Repo, base: str | None, changes: Mapping[str, Any]) -> str:
        """A new tree: ``base`` with ``changes`` (path -> bytes | _Entry | None to delete)."""
        entries = dict(repo.trees[base]) if base else {}
        nested: dict[str, dict[str, Any]] = {}
        for path, change in changes.items():
            head, sep, rest = path.strip("/").partition("/")
            if sep:
                nested.setdefault(head, {})[rest] = change
            elif change is None:
                if head not in entries:
                    raise _invalid("Tree", "tree", "invalid", f"{path} does not exist")
                del entries[head]
            elif isinstance(change, _Entry):
                entries[head] = change
            else:
                entries[head] = _Entry("100644", "blob", self._store_blob(repo, change))
        for name, sub in nested.items():
            current = entries.get(name)
            sub_base = current.sha if current is not None and current.type == "tree" else None
            sha = self._apply(repo, sub_base, sub)
            if repo.trees[sha]:
                entries[name] = _Entry("040000", "tree", sha)
            else:
                entries.pop(name, None)  # git has no empty directories
        return self._store_tree(repo, entries)

    def _walk(self, repo: _Repo, tree: str, prefix: str = "") -> Iterator[tuple[str, _Entry]]:
        for name, entry in sorted(repo.trees[tree].items()):
            path = f"{prefix}{name}"
            yield path, entry
            if entry.type == "tree":
                yield from self._walk(repo, entry.sha, path + "/")

    def _lookup(self, repo: _Repo, tree: str, path: str) -> _Entry | None:
        entry: _Entry | None = _Entry("040000", "tree", tree)
        for part in [p for p in path.strip("/").split("/") if p]:
            if entry is None or entry.type != "tree":
                return None
            entry = repo.trees[entry.sha].get(part)
        return entry

    def _diff(self, repo: _Repo, old: str | None, new: str) -> dict[str, Any]:
        before = {p: e for p, e in self._walk(repo, old) if e.type != "tree"} if old else {}
        after = {p: e for p, e in self._walk(repo, new) if e.type != "tree"}
        changes: dict[str, Any] = {p: e for p, e in after.items() if before.get(p) != e}
        changes.update({p: None for p in before if p not in after})
        return changes

    def _ancestors(self, repo: _Repo, sha: str) -> list[str]:
        seen: list[str] = []
        queue = [sha]
        while queue:
            current = queue.pop(0)
            if current in seen or current not in repo.commits:
                continue
            seen.append(current)
            queue.extend(repo.commits[current].parents)
        return seen

    def _merge_base(self, repo: _Repo, a: str, b: str) -> str | None:
        ours = set(self._ancestors(repo, b))
        return next((sha for sha in self._ancestors(repo, a) if sha in ours), None)

    def _resolve(self, repo: _Repo, ref: str) -> str | None:
        """A commit sha from a sha, a branch name or ``heads/branch``."""
        if ref in repo.commits:
            return ref
        for candidate in (ref, f"heads/{ref}", f"tags/{ref}"):
            if candidate in repo.refs:
                return repo.refs[candidate]
        return None

    def _close(self, repo: _Repo, pull: _Pull) -> None:
        if pull.state != "open":
            return
        pull.frozen_head_sha = repo.refs.get(f"heads/{pull.head_ref}")
        pull.frozen_base_sha = repo.refs.get(f"heads/{pull.base_ref}")
        pull.state, pull.closed_at = "closed", self._now()
        pull.updated_at = pull.closed_at

    # -- JSON renderings -----------------------------------------------------------------------
    def _user_json(self, login: str) -> dict[str, Any]:
        return {
            "login": login,
            "id": _stable_id(login),
            "type": "Bot" if login.endswith("-bot") else "User",
            "url": self._api(f"/users/{login}"),
            "html_url": self._html(f"/{login}"),
        }

    def _repo_json(self, repo: _Repo, login: str | None) -> dict[str, Any]:
        base = f"/repos/{repo.full_name}"
        data: dict[str, Any] = {
            "id": repo.id,
            "node_id": f"R_{repo.id}",
            "name": repo.name,
            "full_name": repo.full_name,
            "owner": self._user_json(repo.owner),
            "private": repo.private,
            "visibility": "private" if repo.private else "public",
            "html_url": self._html(f"/{repo.full_name}"),
            "url": self._api(base),
            "pulls_url": self._api(base + "/pulls{/number}"),
            "git_refs_url": self._api(base + "/git/refs{/sha}"),
            "default_branch": repo.default_branch,
            "created_at": repo.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        if login is not None:
            push = login in repo.writers
            data["permissions"] = {
                "admin": False,
                "maintain": False,
                "push": push,
                "triage": push,
                "pull": login in repo.readers or not repo.private,
            }
        return data

    def _ref_json(self, repo: _Repo, name: str) -> dict[str, Any]:
        sha = repo.refs[name]
        return {
            "ref": f"refs/{name}",
            "node_id": f"REF_{hashlib.sha1(name.encode()).hexdigest()[:12]}",
            "url": self._api(f"/repos/{repo.full_name}/git/refs/{quote(name)}"),
            "object": {
                "sha": sha,
                "type": "commit",
                "url": self._api(f"/repos/{repo.full_name}/git/commits/{sha}"),
            },
        }

    def _commit_json(self, repo: _Repo, commit: _Commit) -> dict[str, Any]:
        base = f"/repos/{repo.full_name}/git"
        return {
            "sha": commit.sha,
            "node_id": f"C_{commit.sha[:12]}",
            "url": self._api(f"{base}/commits/{commit.sha}"),
            "html_url": self._html(f"/{repo.full_name}/commit/{commit.sha}"),
            "author": dict(commit.author),
            "committer": dict(commit.committer),
            "message": commit.message,
            "tree": {"sha": commit.tree, "url": self._api(f"{base}/trees/{commit.tree}")},
            "parents": [
                {
                    "sha": p,
                    "url": self._api(f"{base}/commits/{p}"),
                    "html_url": self._html(f"/{repo.full_name}/commit/{p}"),
                }
                for p in commit.parents
            ],
            "verification": {
                "verified": False,
                "reason": "unsigned",
                "signature": None,
                "payload": None,
            },
        }

    def _tree_json(self, repo: _Repo, sha: str, recursive: bool) -> dict[str, Any]:
        base = f"/repos/{repo.full_name}/git"
        items = self._walk(repo, sha) if recursive else sorted(repo.trees[sha].items())
        tree = []
        for path, entry in items:
            item: dict[str, Any] = {
                "path": path,
                "mode": entry.mode,
                "type": entry.type,
                "sha": entry.sha,
            }
            if entry.type == "blob":
                item["size"] = len(repo.blobs[entry.sha])
                item["url"] = self._api(f"{base}/blobs/{entry.sha}")
            else:
                item["url"] = self._api(f"{base}/trees/{entry.sha}")
            tree.append(item)
        return {
            "sha": sha,
            "url": self._api(f"{base}/trees/{sha}"),
            "tree": tree,
            "truncated": False,
        }

    def _label_json(self, repo: _Repo, label: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": label["id"],
            "node_id": f"LA_{label['id']}",
            "url": self._api(f"/repos/{repo.full_name}/labels/{quote(label['name'])}"),
            "name": label["name"],
            "color": label["color"],
            "default": False,
            "description": label["description"],
        }

    def _branch_json(self, repo: _Repo, branch: str) -> dict[str, Any]:
        pull_head = repo.refs.get(f"heads/{branch}")
        return {"label": f"{repo.owner}:{branch}", "ref": branch, "sha": pull_head}

    def _pull_json(self, repo: _Repo, pull: _Pull, *, full: bool) -> dict[str, Any]:
        base = f"/repos/{repo.full_name}"
        head_sha = (
            pull.frozen_head_sha
            if pull.state != "open"
            else repo.refs.get(f"heads/{pull.head_ref}")
        )
        base_sha = (
            pull.frozen_base_sha
            if pull.state != "open"
            else repo.refs.get(f"heads/{pull.base_ref}")
        )
        repo_json = self._repo_json(repo, None)
        labels = [repo.labels[n] for n in repo.issue_labels.get(pull.number, [])]
        data: dict[str, Any] = {
            "url": self._api(f"{base}/pulls/{pull.number}"),
            "id": repo.id * 100000 + pull.number,
            "node_id": f"PR_{repo.id}_{pull.number}",
            "html_url": self._html(f"/{repo.full_name}/pull/{pull.number}"),
            "diff_url": self._html(f"/{repo.full_name}/pull/{pull.number}.diff"),
            "issue_url": self._api(f"{base}/issues/{pull.number}"),
            "comments_url": self._api(f"{base}/issues/{pull.number}/comments"),
            "number": pull.number,
            "state": pull.state,
            "locked": False,
            "title": pull.title,
            "user": self._user_json(pull.user),
            "body": pull.body,
            "labels": [self._label_json(repo, label) for label in labels],
            "created_at": _iso(pull.created_at),
            "updated_at": _iso(pull.updated_at),
            "closed_at": _iso(pull.closed_at),
            "merged_at": _iso(pull.merged_at),
            "merge_commit_sha": pull.merge_commit_sha,
            "draft": pull.draft,
            "head": {
                "label": f"{pull.head_owner}:{pull.head_ref}",
                "ref": pull.head_ref,
                "sha": head_sha,
                "user": self._user_json(pull.head_owner),
                "repo": repo_json,
            },
            "base": {
                "label": f"{repo.owner}:{pull.base_ref}",
                "ref": pull.base_ref,
                "sha": base_sha,
                "user": self._user_json(repo.owner),
                "repo": repo_json,
            },
        }
        if full:  # only the single-PR endpoints carry these; lists do not
            data.update(
                {
                    "merged": pull.merged_at is not None,
                    "mergeable": True if pull.state == "open" else None,
                    "comments": len(repo.comments.get(pull.number, [])),
                    "maintainer_can_modify": pull.maintainer_can_modify,
                }
            )
        return data

    def _paginate(self, request: Request, items: list[Any]) -> Response:
        query = request.query
        per_page = max(1, min(100, int(query.get("per_page", ["30"])[0] or 30)))
        page = max(1, int(query.get("page", ["1"])[0] or 1))
        last = max(1, -(-len(items) // per_page))
        chunk = items[(page - 1) * per_page : page * per_page]
        headers: dict[str, str] = {}
        if last > 1:
            params = {k: v[0] for k, v in query.items()}
            links = []
            for rel, number in (
                ("prev", page - 1),
                ("next", page + 1),
                ("first", 1),
                ("last", last),
            ):
                if 1 <= number <= last and not (rel in ("first", "prev") and page == 1):
                    params["page"] = str(number)
                    url = f"{self.url}{request.route}?{urlencode(params)}"
                    links.append(f'<{url}>; rel="{rel}"')
            headers["Link"] = ", ".join(links)
        return Response.json(chunk, headers=headers)

    # -- handlers: users, rate limit, repos ---------------------------------------------------
    @_route("GET", "/user")
    def get_user(self, request: Request, params: _Params, login: _Login) -> Response:
        if login is None:
            raise _Fail(401, "Requires authentication", DOCS)
        return Response.json(self._user_json(login))

    @_route("GET", "/rate_limit")
    def get_rate_limit(self, request: Request, params: _Params, login: _Login) -> Response:
        limit = self.rate_limit if login else 60
        used = min(self.rate_used.get(login or "anonymous", 0), limit)
        core = {
            "limit": limit,
            "used": used,
            "remaining": limit - used,
            "reset": self.rate_reset,
        }
        return Response.json({"resources": {"core": core}, "rate": core})

    @_route("GET", "/repos/{owner}/{repo}")
    def get_repo(self, request: Request, params: _Params, login: _Login) -> Response:
        return Response.json(self._repo_json(self._repo(params, login), login))

    @_route("GET", "/repos/{owner}/{repo}/branches/{branch+}")
    def get_branch(self, request: Request, params: _Params, login: _Login) -> Response:
        repo = self._repo(params, login)
        sha = repo.refs.get(f"heads/{params['branch']}")
        if sha is None:
            raise _Fail(404, "Branch not found", f"{DOCS}/branches/branches#get-a-branch")
        commit = repo.commits[sha]
        base = f"/repos/{repo.full_name}"
        git_commit = self._commit_json(repo, commit)
        return Response.json(
            {
                "name": params["branch"],
                "commit": {
                    "sha": sha,
                    "node_id": git_commit["node_id"],
                    "commit": {
                        k: git_commit[k]
                        for k in ("author", "committer", "message", "tree", "url", "verification")
                    },
                    "url": self._api(f"{base}/commits/{sha}"),
                    "html_url": git_commit["html_url"],
                    "parents": git_commit["parents"],
                },
                "_links": {
                    "self": self._api(f"{base}/branches/{params['branch']}"),
                    "html": self._html(f"/{repo.full_name}/tree/{params['branch']}"),
                },
                "protected": False,
            }
        )

    # -- handlers: refs ---------------------------------------------------------------------------
    @_route("GET", "/repos/{owner}/{repo}/git/ref/{ref+}")
    def get_ref(self, request: Request, params: _Params, login: _Login) -> Response:
        repo = self._repo(params, login)
        if params["ref"] not in repo.refs:
            raise _not_found(f"{DOCS}/git/refs#get-a-reference")
        return Response.json(self._ref_json(repo, params["ref"]))

    @_route("GET", "/repos/{owner}/{repo}/git/refs/{ref+}")
    def get_refs(self, request: Request, params: _Params, login: _Login) -> Response:
        repo = self._repo(params, login)
        name = params["ref"]
        if name in repo.refs:
            return Response.json(self._ref_json(repo, name))
        matching = sorted(r for r in repo.refs if r.startswith(name.rstrip("/") + "/"))
        if not matching:
            raise _not_found(f"{DOCS}/git/refs#get-a-reference")
        return Response.json([self._ref_json(repo, r) for r in matching])

    @_route("POST", "/repos/{owner}/{repo}/git/refs")
    def create_ref(self, request: Request, params: _Params, login: _Login) -> Response:
        repo = self._repo(params, login, write=True)
        body = request.json() or {}
        ref, sha = str(body.get("ref", "")), str(body.get("sha", ""))
        docs = f"{DOCS}/git/refs#create-a-reference"
        if not ref.startswith("refs/") or ref.count("/") < 2:
            raise _Fail(422, f"{ref} is not a valid ref name.", docs)
        if sha not in repo.commits:
            raise _Fail(422, "Object does not exist", docs)
        name = ref.removeprefix("refs/")
        if name in repo.refs:
            raise _Fail(422, "Reference already exists", docs)
        repo.refs[name] = sha
        return Response.json(self._ref_json(repo, name), status=201)

    @_route("PATCH", "/repos/{owner}/{repo}/git/refs/{ref+}")
    def update_ref(self, request: Request, params: _Params, login: _Login) -> Response:
        repo = self._repo(params, login, write=True)
        body = request.json() or {}
        name, sha = params["ref"], str(body.get("sha", ""))
        docs = f"{DOCS}/git/refs#update-a-reference"
        if name not in repo.refs:
            raise _Fail(422, "Reference does not exist", docs)
        if sha not in repo.commits:
            raise _Fail(422, "Object does not exist", docs)
        current = repo.refs[name]
        if not body.get("force") and current not in self._ancestors(repo, sha):
            raise _Fail(422, "Update is not a fast forward", docs)
        repo.refs[name] = sha
        return Response.json(self._ref_json(repo, name))

    @_route("DELETE", "/repos/{owner}/{repo}/git/refs/{ref+}")
    def delete_ref(self, request: Request, params: _Params, login: _Login) -> Response:
        repo = self._repo(params, login, write=True)
        name = params["ref"]
        if name not in repo.refs:
            raise _Fail(422, "Reference does not exist", f"{DOCS}/git/refs#delete-a-reference")
        for pull in repo.pulls.values():  # GitHub closes the PRs of a deleted head branch
            if pull.state == "open" and f"heads/{pull.head_ref}" == name:
                self._close(repo, pull)
        del repo.refs[name]
        return Response(204)

    # -- handlers: blobs, trees, commits -----------------------------------------------------
    @_route("POST", "/repos/{owner}/{repo}/git/blobs")
    def create_blob(self, request: Request, params: _Params, login: _Login) -> Response:
        repo = self._repo(params, login, write=True)
        body = request.json() or {}
        content = body.get("content")
        if not isinstance(content, str):
            raise _invalid("Blob", "content", "missing_field")
        encoding = body.get("encoding", "utf-8")
        if encoding == "base64":
            data = base64.b64decode(content)
        elif encoding in ("utf-8", "utf8"):
            data = content.encode()
        else:
            raise _Fail(422, f"encoding {encoding!r} is not supported", DOCS)
        sha = self._store_blob(repo, data)
        url = self._api(f"/repos/{repo.full_name}/git/blobs/{sha}")
        return Response.json({"url": url, "sha": sha}, status=201)

    @_route("GET", "/repos/{owner}/{repo}/git/blobs/{sha}")
    def get_blob(self, request: Request, params: _Params, login: _Login) -> Response:
        repo = self._repo(params, login)
        data = repo.blobs.get(params["sha"])
        if data is None:
            raise _not_found(f"{DOCS}/git/blobs#get-a-blob")
        return Response.json(
            {
                "sha": params["sha"],
                "node_id": f"B_{params['sha'][:12]}",
                "size": len(data),
                "url": self._api(f"/repos/{repo.full_name}/git/blobs/{params['sha']}"),
                "content": _b64_lines(data),
                "encoding": "base64",
            }
        )

    @_route("POST", "/repos/{owner}/{repo}/git/trees")
    def create_tree(self, request: Request, params: _Params, login: _Login) -> Response:
        repo = self._repo(params, login, write=True)
        body = request.json() or {}
        base = body.get("base_tree")
        if base is not None and base not in repo.trees:
            raise _Fail(422, "base_tree is not a valid tree oid", f"{DOCS}/git/trees")
        changes: dict[str, Any] = {}
        for item in body.get("tree") or []:
            path, mode, kind = item.get("path"), str(item.get("mode", "")), item.get("type")
            if not path or mode not in ("100644", "100755", "040000", "160000", "120000"):
                raise _invalid("Tree", "tree", "invalid", "tree.mode or tree.path is invalid")
            if "content" in item and item["content"] is not None:
                sha = self._store_blob(repo, str(item["content"]).encode())
                changes[path] = _Entry(mode, "blob", sha)
            elif item.get("sha") is None:
                changes[path] = None
            else:
                sha = str(item["sha"])
                known = repo.blobs if kind == "blob" else repo.trees
                if sha not in known:
                    raise _Fail(422, f"tree.sha {sha} is not a valid {kind}", f"{DOCS}/git/trees")
                changes[path] = _Entry(mode, str(kind), sha)
        sha = self._apply(repo, base, changes)
        return Response.json(self._tree_json(repo, sha, recursive=False), status=201)

    @_route("GET", "/repos/{owner}/{repo}/git/trees/{sha+}")
    def get_tree(self, request: Request, params: _Params, login: _Login) -> Response:
        repo = self._repo(params, login)
        sha = params["sha"]
        if sha not in repo.trees:
            commit = self._resolve(repo, sha)  # GitHub also takes a commit or a branch name
            if commit is None:
                raise _not_found(f"{DOCS}/git/trees#get-a-tree")
            sha = repo.commits[commit].tree
        recursive = bool(request.query.get("recursive"))
        return Response.json(self._tree_json(repo, sha, recursive))

    @_route("POST", "/repos/{owner}/{repo}/git/commits")
    def create_commit(self, request: Request, params: _Params, login: _Login) -> Response:
        repo = self._repo(params, login, write=True)
        body = request.json() or {}
        docs = f"{DOCS}/git/commits#create-a-commit"
        tree = body.get("tree")
        if tree not in repo.trees:
            raise _Fail(422, "Tree SHA does not exist", docs)
        parents = list(body.get("parents") or [])
        for parent in parents:
            if parent not in repo.commits:
                raise _Fail(422, "Parent SHA does not exist or is not a commit object", docs)
        message = body.get("message")
        if not isinstance(message, str):
            raise _invalid("Commit", "message", "missing_field")
        assert login is not None
        author = self._person(login)
        author.update({k: v for k, v in (body.get("author") or {}).items() if v})
        committer = dict(author)
        committer.update({k: v for k, v in (body.get("committer") or {}).items() if v})
        sha = self._new_commit(repo, str(tree), parents, message, author, committer)
        return Response.json(self._commit_json(repo, repo.commits[sha]), status=201)

    @_route("GET", "/repos/{owner}/{repo}/git/commits/{sha}")
    def get_commit(self, request: Request, params: _Params, login: _Login) -> Response:
        repo = self._repo(params, login)
        commit = repo.commits.get(params["sha"])
        if commit is None:
            raise _not_found(f"{DOCS}/git/commits#get-a-commit-object")
        return Response.json(self._commit_json(repo, commit))

    # -- handlers: contents ------------------------------------------------------------------
    def _content_json(self, repo: _Repo, path: str, entry: _Entry, ref: str) -> dict[str, Any]:
        base = f"/repos/{repo.full_name}"
        data: dict[str, Any] = {
            "type": "file" if entry.type == "blob" else "dir",
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "sha": entry.sha,
            "size": len(repo.blobs[entry.sha]) if entry.type == "blob" else 0,
            "url": self._api(f"{base}/contents/{quote(path)}?ref={quote(ref)}"),
            "html_url": self._html(f"/{repo.full_name}/blob/{ref}/{path}"),
            "git_url": self._api(f"{base}/git/{entry.type}s/{entry.sha}"),
            "download_url": f"{self.url}/raw/{repo.full_name}/{ref}/{path}"
            if entry.type == "blob"
            else None,
        }
        data["_links"] = {"self": data["url"], "git": data["git_url"], "html": data["html_url"]}
        return data

    @_route("GET", "/repos/{owner}/{repo}/contents/{path+}")
    def get_contents(self, request: Request, params: _Params, login: _Login) -> Response:
        repo = self._repo(params, login)
        ref = request.query.get("ref", [repo.default_branch])[0]
        docs = f"{DOCS}/repos/contents#get-repository-content"
        sha = self._resolve(repo, ref)
        if sha is None:
            raise _Fail(404, f"No commit found for the ref {ref}", docs)
        path = params["path"].strip("/")
        entry = self._lookup(repo, repo.commits[sha].tree, path)
        if entry is None:
            raise _not_found(docs)
        if entry.type == "tree":
            listing = [
                self._content_json(repo, f"{path}/{name}", child, ref)
                for name, child in sorted(repo.trees[entry.sha].items())
            ]
            return Response.json(listing)
        data = self._content_json(repo, path, entry, ref)
        data.update({"content": _b64_lines(repo.blobs[entry.sha]), "encoding": "base64"})
        return Response.json(data)

    @_route("PUT", "/repos/{owner}/{repo}/contents/{path+}")
    def put_contents(self, request: Request, params: _Params, login: _Login) -> Response:
        repo = self._repo(params, login, write=True)
        body = request.json() or {}
        branch = body.get("branch") or repo.default_branch
        docs = f"{DOCS}/repos/contents#create-or-update-file-contents"
        parent = repo.refs.get(f"heads/{branch}")
        if parent is None:
            raise _Fail(404, f"Branch {branch} not found", docs)
        path = params["path"].strip("/")
        existing = self._lookup(repo, repo.commits[parent].tree, path)
        if existing is not None and body.get("sha") != existing.sha:
            if not body.get("sha"):
                raise _Fail(422, 'Invalid request.\n\n"sha" wasn\'t supplied.', docs)
            raise _Fail(409, f"{path} does not match {body.get('sha')}", docs)
        data = base64.b64decode(str(body.get("content", "")))
        tree = self._apply(repo, repo.commits[parent].tree, {path: data})
        assert login is not None
        sha = self._new_commit(repo, tree, [parent], str(body.get("message")), self._person(login))
        repo.refs[f"heads/{branch}"] = sha
        entry = self._lookup(repo, tree, path)
        assert entry is not None
        return Response.json(
            {
                "content": self._content_json(repo, path, entry, branch),
                "commit": self._commit_json(repo, repo.commits[sha]),
            },
            status=200 if existing else 201,
        )

    # -- handlers: pulls ---------------------------------------------------------------------
    def _find_pull(self, repo: _Repo, number: str) -> _Pull:
        pull = repo.pulls.get(int(number)) if number.isdigit() else None
        if pull is None:
            raise _not_found(f"{DOCS}/pulls/pulls#get-a-pull-request")
        return pull

    @_route("GET", "/repos/{owner}/{repo}/pulls")
    def list_pulls(self, request: Request, params: _Params, login: _Login) -> Response:
        repo = self._repo(params, login)
        query = {k: v[0] for k, v in request.query.items()}
        state = query.get("state", "open")
        pulls = [p for p in repo.pulls.values() if state == "all" or p.state == state]
        head = query.get("head")
        if head and ":" in head:  # filter format is user:ref-name (or org:ref-name)
            owner, _, ref = head.partition(":")
            pulls = [
                p for p in pulls if p.head_owner.lower() == owner.lower() and p.head_ref == ref
            ]
        if query.get("base"):
            pulls = [p for p in pulls if p.base_ref == query["base"]]
        sort = query.get("sort", "created")
        direction = query.get("direction", "desc" if sort == "created" else "asc")
        key = (lambda p: p.updated_at) if sort == "updated" else (lambda p: p.created_at)
        pulls.sort(key=lambda p: (key(p), p.number), reverse=direction == "desc")
        return self._paginate(request, [self._pull_json(repo, p, full=False) for p in pulls])

    @_route("POST", "/repos/{owner}/{repo}/pulls")
    def create_pull(self, request: Request, params: _Params, login: _Login) -> Response:
        repo = self._repo(params, login, write=True)
        body = request.json() or {}
        head, base = str(body.get("head", "")), str(body.get("base", ""))
        head_owner, _, head_ref = head.rpartition(":")
        head_owner = head_owner or repo.owner
        if f"heads/{base}" not in repo.refs:
            raise _invalid("PullRequest", "base", "invalid")
        if head_owner.lower() != repo.owner.lower() or f"heads/{head_ref}" not in repo.refs:
            raise _invalid("PullRequest", "head", "invalid")
        if not body.get("title") and not body.get("issue"):
            raise _invalid("PullRequest", "title", "missing_field")
        for pull in repo.pulls.values():
            if pull.state == "open" and pull.head_ref == head_ref and pull.base_ref == base:
                raise _invalid(
                    "PullRequest",
                    None,
                    "custom",
                    f"A pull request already exists for {head_owner}:{head_ref}.",
                )
        head_sha, base_sha = repo.refs[f"heads/{head_ref}"], repo.refs[f"heads/{base}"]
        if head_sha in self._ancestors(repo, base_sha):
            raise _invalid(
                "PullRequest", None, "custom", f"No commits between {base} and {head_ref}"
            )
        assert login is not None
        now = self._now()
        number = repo.next_number
        repo.next_number += 1
        pull = _Pull(
            number=number,
            title=str(body.get("title")),
            body=body.get("body"),
            head_ref=head_ref,
            head_owner=repo.owner,
            base_ref=base,
            user=login,
            created_at=now,
            updated_at=now,
            draft=bool(body.get("draft", False)),
            maintainer_can_modify=bool(body.get("maintainer_can_modify", True)),
        )
        repo.pulls[number] = pull
        return Response.json(self._pull_json(repo, pull, full=True), status=201)

    @_route("GET", "/repos/{owner}/{repo}/pulls/{number}")
    def get_pull(self, request: Request, params: _Params, login: _Login) -> Response:
        repo = self._repo(params, login)
        return Response.json(
            self._pull_json(repo, self._find_pull(repo, params["number"]), full=True)
        )

    @_route("PATCH", "/repos/{owner}/{repo}/pulls/{number}")
    def update_pull(self, request: Request, params: _Params, login: _Login) -> Response:
        repo = self._repo(params, login, write=True)
        pull = self._find_pull(repo, params["number"])
        body = request.json() or {}
        if "title" in body:
            pull.title = str(body["title"])
        if "body" in body:
            pull.body = body["body"]
        if "base" in body:
            if f"heads/{body['base']}" not in repo.refs:
                raise _invalid("PullRequest", "base", "invalid")
            pull.base_ref = str(body["base"])
        state = body.get("state")
        if state == "closed":
            self._close(repo, pull)
        elif state == "open" and pull.state == "closed":
            if pull.merged_at is not None:
                raise _Fail(422, "Cannot reopen a merged pull request", DOCS)
            if f"heads/{pull.head_ref}" not in repo.refs:
                raise _invalid("PullRequest", "state", "invalid", "The head branch is gone")
            pull.state, pull.closed_at = "open", None
        pull.updated_at = self._now()
        return Response.json(self._pull_json(repo, pull, full=True))

    # -- handlers: labels and comments ----------------------------------------------------
    def _ensure_label(
        self, repo: _Repo, name: str, color: str = "ededed", description: str | None = None
    ) -> dict[str, Any]:
        key = name.lower()
        if key not in repo.labels:
            repo.labels[key] = {
                "id": next(self._ids),
                "name": name,
                "color": color,
                "description": description,
            }
        return repo.labels[key]

    @_route("GET", "/repos/{owner}/{repo}/labels")
    def list_labels(self, request: Request, params: _Params, login: _Login) -> Response:
        repo = self._repo(params, login)
        return self._paginate(request, [self._label_json(repo, x) for x in repo.labels.values()])

    @_route("GET", "/repos/{owner}/{repo}/labels/{name}")
    def get_label(self, request: Request, params: _Params, login: _Login) -> Response:
        repo = self._repo(params, login)
        label = repo.labels.get(params["name"].lower())
        if label is None:
            raise _not_found(f"{DOCS}/issues/labels#get-a-label")
        return Response.json(self._label_json(repo, label))

    @_route("POST", "/repos/{owner}/{repo}/labels")
    def create_label(self, request: Request, params: _Params, login: _Login) -> Response:
        repo = self._repo(params, login, write=True)
        body = request.json() or {}
        name = str(body.get("name", "")).strip()
        if not name:
            raise _invalid("Label", "name", "missing_field")
        if name.lower() in repo.labels:
            raise _invalid("Label", "name", "already_exists")
        color = str(body.get("color", "ededed")).lstrip("#")
        label = self._ensure_label(repo, name, color, body.get("description"))
        return Response.json(self._label_json(repo, label), status=201)

    def _issue(self, repo: _Repo, number: str) -> int:
        if not number.isdigit() or int(number) not in repo.pulls:
            raise _not_found(f"{DOCS}/issues/issues#get-an-issue")
        return int(number)

    @_route("GET", "/repos/{owner}/{repo}/issues/{number}/labels")
    def list_issue_labels(self, request: Request, params: _Params, login: _Login) -> Response:
        repo = self._repo(params, login)
        number = self._issue(repo, params["number"])
        labels = [repo.labels[n] for n in repo.issue_labels.get(number, [])]
        return self._paginate(request, [self._label_json(repo, x) for x in labels])

    @_route("POST", "/repos/{owner}/{repo}/issues/{number}/labels")
    def add_issue_labels(self, request: Request, params: _Params, login: _Login) -> Response:
        repo = self._repo(params, login, write=True)
        number = self._issue(repo, params["number"])
        body = request.json()
        names = body.get("labels") if isinstance(body, dict) else body
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise _invalid("Label", "labels", "invalid")
        current = repo.issue_labels.setdefault(number, [])
        for name in names:
            key = self._ensure_label(repo, name)["name"].lower()
            if key not in current:
                current.append(key)
        repo.pulls[number].updated_at = self._now()
        return Response.json([self._label_json(repo, repo.labels[n]) for n in current])

    @_route("PUT", "/repos/{owner}/{repo}/issues/{number}/labels")
    def set_issue_labels(self, request: Request, params: _Params, login: _Login) -> Response:
        repo = self._repo(params, login, write=True)
        number = self._issue(repo, params["number"])
        repo.issue_labels[number] = []
        return self.add_issue_labels(request, params, login)

    @_route("GET", "/repos/{owner}/{repo}/issues/{number}/comments")
    def list_comments(self, request: Request, params: _Params, login: _Login) -> Response:
        repo = self._repo(params, login)
        number = self._issue(repo, params["number"])
        return self._paginate(request, list(repo.comments.get(number, [])))

    @_route("POST", "/repos/{owner}/{repo}/issues/{number}/comments")
    def create_comment(self, request: Request, params: _Params, login: _Login) -> Response:
        repo = self._repo(params, login, write=True)
        number = self._issue(repo, params["number"])
        body = request.json() or {}
        if not isinstance(body.get("body"), str):
            raise _invalid("IssueComment", "body", "missing_field")
        assert login is not None
        comment_id = next(self._ids)
        now = _iso(self._now())
        comment = {
            "id": comment_id,
            "node_id": f"IC_{comment_id}",
            "url": self._api(f"/repos/{repo.full_name}/issues/comments/{comment_id}"),
            "html_url": self._html(f"/{repo.full_name}/pull/{number}#issuecomment-{comment_id}"),
            "issue_url": self._api(f"/repos/{repo.full_name}/issues/{number}"),
            "body": body["body"],
            "user": self._user_json(login),
            "created_at": now,
            "updated_at": now,
        }
        repo.comments.setdefault(number, []).append(comment)
        return Response.json(comment, status=201)


def _stable_id(name: str) -> int:
    return int(hashlib.sha1(name.encode()).hexdigest()[:6], 16)


def _bytes(content: bytes | str) -> bytes:
    return content.encode() if isinstance(content, str) else bytes(content)


def _b64_lines(data: bytes) -> str:
    """Base64 with a newline every 60 characters, as GitHub sends blob and file content."""
    text = base64.b64encode(data).decode()
    return "".join(text[i : i + 60] + "\n" for i in range(0, len(text), 60))


def _iso(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


@pytest.fixture
def fake_github() -> Iterator[FakeGitHub]:
    """A running :class:`FakeGitHub` (token :data:`DEFAULT_TOKEN`); fails the test if a handler
    crashed."""
    with FakeGitHub() as fake:
        yield fake
        if fake.errors:
            raise AssertionError(f"FakeGitHub handler crashed: {fake.errors!r}")
