"""Fake Hugging Face Hub: the real ``huggingface_hub`` client (and raw ``httpx``) talk to it.

It follows "Minimal fake-Hub contract" and "Pitfalls" of
``/work/shared/reference/slack-and-hf-protocols.md`` (huggingface_hub 2.4.0 / 1.33.0):

- ``GET /api/models`` (search, filter, author, pipeline_tag, gated, num_parameters, sort, limit,
  full, config, cardData, expand; cursor pagination with an absolute ``Link: <…>; rel="next"``);
- ``GET /api/models/{repo}[/revision/{rev}]`` (``blobs=true`` siblings with ``lfs.pointerSize``,
  ``expand``), ``/tree/{rev}[/{path}]`` (recursive, paginated), ``/refs``, ``/commits/{rev}``,
  ``POST /paths-info/{rev}``, ``GET /api/whoami-v2``;
- ``HEAD``/``GET /{repo}/resolve/{rev}/{path}`` with ``X-Repo-Commit``, ``ETag``
  (git blob sha1, or sha256 for LFS), Range → 206. LFS files are served directly or, like the
  real Hub, via a 302 to a "CDN" on another port (another origin, so the client reads the
  metadata from the 302 and drops the Authorization header);
- errors carry ``X-Error-Code`` (RepoNotFound, RevisionNotFound, EntryNotFound + X-Repo-Commit,
  GatedRepo) and ``X-Error-Message``, since over ``http://`` that header is all the client uses.
  Never any ``X-Xet-*`` header, so the client stays on plain HTTP.

Hashes are real: git blob sha1 of regular files and of LFS pointer files, sha256 of LFS content,
git tree and commit objects. Large content can be generated from a seed (:func:`random_content`,
:func:`safetensors_content`, :meth:`FakeHub.add_generated_model`) so a multi-GB repo costs no
memory: bytes are produced on the fly for any range; the sha256 is computed once per content.

Faults: :meth:`FakeHub.fail_next` (429 + Retry-After, 503, …), :meth:`~FakeHub.drop_after`
(cut a transfer after N bytes), :meth:`~FakeHub.corrupt` (same size, other bytes),
:meth:`~FakeHub.throttle` (bytes/s), :meth:`~FakeHub.delay` (per-request latency),
:meth:`~FakeHub.go_down` (refuse, reset or hang) / :meth:`~FakeHub.come_up`.
Inspection: :attr:`FakeHub.log` (method, path, query, headers, Range, status, bytes sent) and
:meth:`FakeHub.bytes_served`.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import math
import mimetypes
import random
import re
import struct
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Self
from urllib.parse import parse_qs, quote, unquote, urlencode

import pytest

from tests.fakes.streaming import Link, Request, Response, StreamingFakeServer, StreamResponse

__all__ = [
    "DEFAULT_TOKEN",
    "Content",
    "FakeHub",
    "GeneratedContent",
    "HubBlob",
    "HubCommit",
    "HubRepo",
    "HubRequest",
    "fake_hub",
    "random_content",
    "safetensors_content",
]

DEFAULT_TOKEN = "hf_fake_0123456789abcdefghijklmnopqrstuv"
"""The token :class:`FakeHub` accepts unless told otherwise (user ``fake-user``)."""

MiB = 1 << 20
#: Suffixes Hugging Face's default ``.gitattributes`` stores in LFS.
LFS_SUFFIXES = (
    ".7z", ".arrow", ".bin", ".bz2", ".ckpt", ".ftz", ".gguf", ".gz", ".h5", ".joblib",
    ".mlmodel", ".model", ".msgpack", ".npy", ".npz", ".onnx", ".ot", ".parquet", ".pb",
    ".pickle", ".pkl", ".pt", ".pth", ".rar", ".safetensors", ".tar", ".tflite", ".tgz",
    ".wasm", ".xz", ".zip", ".zst",
)  # fmt: skip
#: Properties ``expand=`` accepts (``ExpandModelProperty_T`` in huggingface_hub 2.4.0).
EXPAND_PROPERTIES = frozenset(
    {
        "author", "baseModels", "cardData", "childrenModelCount", "config", "createdAt",
        "disabled", "downloads", "downloadsAllTime", "evalResults", "gated", "gguf", "inference",
        "inferenceProviderMapping", "lastModified", "library_name", "likes", "mask_token",
        "model-index", "pipeline_tag", "private", "resourceGroup", "safetensors", "sha",
        "siblings", "spaces", "tags", "transformersInfo", "trendingScore", "usedStorage",
        "widgetData",
    }
)  # fmt: skip
_SORT_KEYS = {"downloads", "likes", "lastModified", "createdAt", "trendingScore"}
_DTYPE_SIZES = {
    "F64": 8, "I64": 8, "U64": 8, "F32": 4, "I32": 4, "U32": 4, "F16": 2, "BF16": 2,
    "I16": 2, "U16": 2, "F8_E4M3": 1, "F8_E5M2": 1, "I8": 1, "U8": 1, "BOOL": 1,
}  # fmt: skip
_EPOCH = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


# ---------------------------------------------------------------------------------------------
# Content: bytes held in memory, or generated from a seed for any byte range
# ---------------------------------------------------------------------------------------------
class Content:
    """File content readable by range; subclasses decide where the bytes come from."""

    size: int

    def chunks(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Yield the bytes of ``[start, end)`` (``end`` defaults to the size) in pieces."""
        raise NotImplementedError

    def read(self, start: int = 0, end: int | None = None) -> bytes:
        """The bytes of ``[start, end)`` at once (for small ranges and small files)."""
        return b"".join(self.chunks(start, end))

    def digest_key(self) -> tuple[Any, ...] | None:
        """A key under which hashes of identical generated content are cached (None: no cache)."""
        return None


class BytesContent(Content):
    def __init__(self, data: bytes) -> None:
        self.data = bytes(data)
        self.size = len(self.data)

    def chunks(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        end = self.size if end is None else min(end, self.size)
        view = memoryview(self.data)
        for pos in range(start, end, MiB):
            yield bytes(view[pos : min(pos + MiB, end)])


_POOL = MiB
_MULT = 2654435761  # odd, so block rotations are distinct for 2**20 blocks (1 TiB)


class GeneratedContent(Content):
    """``prefix`` followed by deterministic pseudo-random bytes derived from ``seed``.

    Blocks of 1 MiB are rotations of one random 1 MiB pool, stamped with their block index, so
    any range is produced at memcpy speed without storing the file, yet every block differs
    (a server that sends the wrong range is caught by the sha256).
    """

    def __init__(self, size: int, seed: int | str = 0, *, prefix: bytes = b"") -> None:
        if size < len(prefix):
            raise ValueError("size is smaller than the prefix")
        self.size = size
        self.seed = seed
        self.prefix = bytes(prefix)
        self._pool: bytes | None = None

    def _seed_int(self) -> int:
        if isinstance(self.seed, int):
            return self.seed
        return int.from_bytes(hashlib.sha256(self.seed.encode()).digest()[:8], "little")

    def _doubled_pool(self) -> bytes:
        if self._pool is None:
            pool = random.Random(self._seed_int()).randbytes(_POOL)
            self._pool = pool + pool
        return self._pool

    def _random(self, start: int, end: int) -> Iterator[bytes]:
        pool = memoryview(self._doubled_pool())
        pos = start
        while pos < end:
            block, within = divmod(pos, _POOL)
            off = (block * _MULT) % _POOL
            upto = min(end - pos, _POOL - within)
            stamp = block.to_bytes(8, "little")
            if within < 8:
                head = stamp[within : min(8, within + upto)]
                rest = upto - len(head)
                yield head + bytes(pool[off + 8 : off + 8 + rest]) if rest else head
            else:
                yield bytes(pool[off + within : off + within + upto])
            pos += upto

    def chunks(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        end = self.size if end is None else min(end, self.size)
        n = len(self.prefix)
        if start < n:
            yield self.prefix[start : min(n, end)]
        if end > n:
            yield from self._random(max(start, n) - n, end - n)

    def digest_key(self) -> tuple[Any, ...]:
        return ("gen", self.size, self.seed, hashlib.sha256(self.prefix).hexdigest())


def random_content(size: int, seed: int | str = 0, *, prefix: bytes = b"") -> GeneratedContent:
    """``size`` bytes of reproducible pseudo-random data (optionally after ``prefix``)."""
    return GeneratedContent(size, seed, prefix=prefix)


def safetensors_content(
    tensors: Mapping[str, tuple[str, Sequence[int]]],
    seed: int | str = 0,
    *,
    metadata: Mapping[str, str] | None = None,
) -> GeneratedContent:
    """A valid ``.safetensors`` file: a real header for ``tensors`` ({name: (dtype, shape)}),
    then pseudo-random tensor data. Readers that parse the header (e.g. ``get_safetensors_metadata``
    via a Range request, or a parameter count) see real metadata."""
    header: dict[str, Any] = {"__metadata__": dict(metadata or {"format": "pt"})}
    offset = 0
    for name, (dtype, shape) in tensors.items():
        nbytes = math.prod(shape) * _DTYPE_SIZES[dtype]
        header[name] = {
            "dtype": dtype,
            "shape": list(shape),
            "data_offsets": [offset, offset + nbytes],
        }
        offset += nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    prefix = struct.pack("<Q", len(raw)) + raw
    return GeneratedContent(len(prefix) + offset, seed, prefix=prefix)


_HASH_CACHE: dict[tuple[Any, ...], str] = {}
_HASH_LOCK = threading.Lock()


def _digests(content: Content, git: bool = True) -> tuple[str, str]:
    """(git blob sha1 or "", sha256) in one pass; the sha256 of generated data is cached, so a
    multi-GB file is hashed once per process however many hubs serve it."""
    key = content.digest_key()
    if key is not None and not git:
        with _HASH_LOCK:
            if key in _HASH_CACHE:
                return "", _HASH_CACHE[key]
    sha1 = hashlib.sha1(b"blob %d\0" % content.size) if git else None
    sha256 = hashlib.sha256()
    for chunk in content.chunks():
        if sha1 is not None:
            sha1.update(chunk)
        sha256.update(chunk)
    if key is not None:
        with _HASH_LOCK:
            _HASH_CACHE[key] = sha256.hexdigest()
    return (sha1.hexdigest() if sha1 is not None else ""), sha256.hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    """The git-lfs pointer file git stores in place of an LFS file."""
    return (
        f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()
    )


def _git_sha1(kind: str, body: bytes) -> str:
    return hashlib.sha1(b"%s %d\0" % (kind.encode(), len(body)) + body).hexdigest()


# ---------------------------------------------------------------------------------------------
# Repository model
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HubBlob:
    """One file's content and its hashes (``git_oid`` is the pointer's sha1 for LFS files)."""

    content: Content
    size: int
    lfs: bool
    git_oid: str
    sha256: str

    @property
    def etag(self) -> str:
        """What the Hub puts in ETag / X-Linked-Etag, and the client's blob file name."""
        return self.sha256 if self.lfs else self.git_oid

    @property
    def pointer_size(self) -> int:
        return len(lfs_pointer(self.sha256, self.size))


@dataclass
class HubCommit:
    sha: str
    parent: str | None
    files: dict[str, HubBlob]
    trees: dict[str, str]  # directory path ("" = root) -> git tree sha
    title: str
    date: datetime
    author: str


@dataclass
class HubRepo:
    """A model repository: git history plus the metadata the API reports."""

    repo_id: str
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    commits: dict[str, HubCommit] = field(default_factory=dict)
    model_tags: list[str] = field(default_factory=list)
    pipeline_tag: str | None = None
    library_name: str | None = None
    license: str | None = None
    gated: bool | str = False
    private: bool = False
    disabled: bool = False
    downloads: int = 0
    likes: int = 0
    trending_score: int = 0
    safetensors: dict[str, Any] | None = None
    gguf: dict[str, Any] | None = None
    card_data: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    created_at: datetime = _EPOCH
    last_modified: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    denied_users: set[str] = field(default_factory=set)

    @property
    def author(self) -> str | None:
        return self.repo_id.split("/")[0] if "/" in self.repo_id else None

    @property
    def mongo_id(self) -> str:
        return hashlib.sha1(self.repo_id.encode()).hexdigest()[:24]

    def resolve(self, revision: str) -> HubCommit | None:
        """Branch, tag, ``refs/heads/…``/``refs/tags/…`` or full commit sha -> commit."""
        rev = revision.removeprefix("refs/heads/")
        if rev in self.branches:
            return self.commits[self.branches[rev]]
        rev = revision.removeprefix("refs/tags/")
        if rev in self.tags:
            return self.commits[self.tags[rev]]
        return self.commits.get(revision)

    @property
    def head(self) -> HubCommit:
        return self.commits[self.branches["main"]]


@dataclass
class HubRequest:
    """One request as the fake saw it, with what it answered."""

    server: str  # "hub" or "cdn"
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    range: str | None
    status: int = 0
    bytes_sent: int = 0
    complete: bool = False
    file: tuple[str, str] | None = None  # (repo_id, path) for file transfers
    finished: bool = False  # the server thread has recorded what it sent


@dataclass
class _StatusFault:
    status: int
    remaining: int | None
    pattern: str | None
    method: str | None
    server: str
    headers: dict[str, str]
    body: Any


@dataclass
class _DropFault:
    after: int
    remaining: int | None


class _HubError(Exception):
    def __init__(
        self, status: int, message: str, code: str | None = None, commit: str | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.commit = status, message, code, commit

    def response(self) -> StreamResponse:
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "X-Error-Message": self.message,
        }
        if self.code:
            headers["X-Error-Code"] = self.code
        if self.commit:
            headers["X-Repo-Commit"] = self.commit
        body = json.dumps({"error": self.message}).encode()
        return StreamResponse(status=self.status, body=body, headers=headers)


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _as_datetime(value: datetime | str | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _truthy(values: list[str] | None) -> bool:
    return bool(values) and values[-1].lower() in ("1", "true", "yes")


def _parse_count(text: str) -> float:
    m = re.fullmatch(r"\s*([0-9.]+)\s*([KMBT]?)\s*", text, re.IGNORECASE)
    if not m:
        raise ValueError(text)
    scale = {"": 1, "K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}[m.group(2).upper()]
    return float(m.group(1)) * scale


def _match(pattern: str | None, route: str) -> bool:
    if pattern is None:
        return True
    if any(c in pattern for c in "*?["):
        return fnmatch.fnmatchcase(route, pattern)
    return route.startswith(pattern)


def _parse_range(header: str | None, size: int) -> tuple[int, int] | bool | None:
    """``(start, end_inclusive)``, ``None`` (no/ignored Range) or ``False`` (unsatisfiable)."""
    if not header:
        return None
    m = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header)
    if not m or (not m.group(1) and not m.group(2)):
        return None  # multi-range or garbage: a 200 with the whole body is allowed
    if not m.group(1):  # suffix: the last N bytes
        n = int(m.group(2))
        return (max(0, size - n), size - 1) if n and size else False
    start = int(m.group(1))
    end = int(m.group(2)) if m.group(2) else size - 1
    if start >= size or end < start:
        return False
    return start, min(end, size - 1)


def _corrupted(chunks: Iterable[bytes], start: int) -> Iterator[bytes]:
    """Flip every byte whose offset is a multiple of 4096: same size, different content."""
    pos = start
    for chunk in chunks:
        first = -pos % 4096
        if first < len(chunk):
            buf = bytearray(chunk)
            for i in range(first, len(buf), 4096):
                buf[i] ^= 0xFF
            chunk = bytes(buf)
        pos += len(chunk)
        yield chunk


FileSpec = bytes | str | Content


# ---------------------------------------------------------------------------------------------
# The fake
# ---------------------------------------------------------------------------------------------
class _HubCdn(StreamingFakeServer):
    """The "CDN" origin LFS downloads are redirected to; all state lives in the hub."""

    def __init__(self, hub: FakeHub) -> None:
        super().__init__(hub.host)
        self.hub = hub

    def handle(self, request: Request) -> Response:
        return self.hub._dispatch(request, "cdn")


class FakeHub(StreamingFakeServer):
    """A Hugging Face Hub on 127.0.0.1 with a second port as its LFS "CDN".

    ``tokens`` maps accepted bearer tokens to user names (default: :data:`DEFAULT_TOKEN` →
    ``fake-user``); a valid token sees private repos and may download gated ones, any other
    ``Authorization`` is refused with 401 like the real Hub. ``lfs_mode`` is ``"cdn"`` (LFS files
    answered with a 302 to the CDN, as huggingface.co does) or ``"direct"``. Files at least
    ``lfs_threshold`` bytes, or with an :data:`LFS_SUFFIXES` suffix, are LFS. ``page_size`` and
    ``tree_page_size`` set the pagination of ``/api/models`` and ``/tree``.
    """

    def __init__(
        self,
        *,
        tokens: Mapping[str, str] | Iterable[str] | None = None,
        lfs_mode: str = "cdn",
        lfs_threshold: int = 10 * MiB,
        page_size: int = 1000,
        tree_page_size: int = 1000,
        host: str = "127.0.0.1",
    ) -> None:
        super().__init__(host)
        if tokens is None:
            tokens = {DEFAULT_TOKEN: "fake-user"}
        elif not isinstance(tokens, Mapping):
            tokens = {t: f"user{i}" for i, t in enumerate(tokens)}
        self.tokens: dict[str, str] = dict(tokens)
        if lfs_mode not in ("cdn", "direct"):
            raise ValueError("lfs_mode must be 'cdn' or 'direct'")
        self.lfs_mode = lfs_mode
        self.lfs_threshold = lfs_threshold
        self.page_size = page_size
        self.tree_page_size = tree_page_size
        self.cdn = _HubCdn(self)
        self._repos: dict[str, HubRepo] = {}
        self._lfs_index: dict[str, HubBlob] = {}
        self._clock = 0
        self._log: list[HubRequest] = []
        self._served: dict[tuple[str, str], int] = {}
        self._status_faults: list[_StatusFault] = []
        self._drops: dict[tuple[str, str], _DropFault] = {}
        self._corrupt: set[tuple[str, str]] = set()
        self._shorts: dict[tuple[str, str], _DropFault] = {}
        self._rates: dict[tuple[str, str] | None, float] = {}
        self._link: Link | None = None
        self._delays: list[tuple[str | None, float]] = []
        self.down: str | None = None
        self._cond = threading.Condition(self._lock)

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> Self:
        super().start()
        self.cdn.start()
        return self

    def stop(self) -> None:
        self.cdn.stop()
        super().stop()

    def _wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    # -- building repositories ----------------------------------------------------------------
    def _blob(self, path: str, spec: FileSpec, lfs: bool | None) -> HubBlob:
        content: Content
        if isinstance(spec, Content):
            content = spec
        else:
            content = BytesContent(spec.encode() if isinstance(spec, str) else spec)
        if lfs is None:
            lfs = (
                path.lower().endswith(LFS_SUFFIXES)
                or content.size >= self.lfs_threshold
                or isinstance(content, GeneratedContent)
            )
        sha1, sha256 = _digests(content, git=not lfs)
        if lfs:
            sha1 = _git_sha1("blob", lfs_pointer(sha256, content.size))
        return HubBlob(content=content, size=content.size, lfs=lfs, git_oid=sha1, sha256=sha256)

    def _blobs(
        self, files: Mapping[str, FileSpec], lfs: Mapping[str, bool] | None
    ) -> dict[str, HubBlob]:
        """Hash every file; big generated ones in parallel (hashlib releases the GIL)."""
        lfs = lfs or {}
        items = [(p.lstrip("/"), s) for p, s in files.items()]
        big = [s for _, s in items if isinstance(s, Content) and s.size > 64 * MiB]
        if len(big) > 1:
            with ThreadPoolExecutor(max_workers=4) as pool:
                list(pool.map(lambda c: _digests(c, git=False), big))
        return {p: self._blob(p, s, lfs.get(p)) for p, s in items}

    def _commit(
        self,
        repo: HubRepo,
        files: dict[str, HubBlob],
        parent: str | None,
        title: str,
        date: datetime | None,
        author: str = "fake-user",
    ) -> HubCommit:
        children: dict[str, dict[str, str | None]] = {"": {}}
        for path in files:
            parts = path.split("/")
            for i, name in enumerate(parts):
                parent_dir = "/".join(parts[:i])
                children.setdefault(parent_dir, {})[name] = path if i == len(parts) - 1 else None
        trees: dict[str, str] = {}

        def tree(directory: str) -> str:
            entries = []
            for name, fpath in children.get(directory, {}).items():
                if fpath is None:
                    sub = f"{directory}/{name}" if directory else name
                    oid, mode, key = tree(sub), b"40000", name + "/"
                else:
                    oid, mode, key = files[fpath].git_oid, b"100644", name
                entries.append(
                    (key.encode(), mode + b" " + name.encode() + b"\0" + bytes.fromhex(oid))
                )
            body = b"".join(e for _, e in sorted(entries))
            trees[directory] = _git_sha1("tree", body)
            return trees[directory]

        root = tree("")
        if date is None:
            self._clock += 1
            date = _EPOCH + timedelta(minutes=self._clock)
        ts = int(date.timestamp())
        who = f"{author} <{author}@users.noreply.huggingface.co> {ts} +0000"
        text = f"tree {root}\n" + (f"parent {parent}\n" if parent else "")
        text += f"author {who}\ncommitter {who}\n\n{title}\n"
        commit = HubCommit(
            sha=_git_sha1("commit", text.encode()),
            parent=parent,
            files=files,
            trees=trees,
            title=title,
            date=date,
            author=author,
        )
        repo.commits[commit.sha] = commit
        for blob in files.values():
            if blob.lfs:
                self._lfs_index[blob.sha256] = blob
        return commit

    def add_model(
        self,
        repo_id: str,
        files: Mapping[str, FileSpec] | None = None,
        *,
        config: Mapping[str, Any] | None = None,
        tags: Iterable[str] = (),
        pipeline_tag: str | None = None,
        library_name: str | None = None,
        license: str | None = None,
        gated: bool | str = False,
        private: bool = False,
        downloads: int = 0,
        likes: int = 0,
        trending_score: int = 0,
        safetensors: Mapping[str, Any] | None = None,
        gguf: Mapping[str, Any] | None = None,
        card_data: Mapping[str, Any] | None = None,
        created_at: datetime | str | None = None,
        last_modified: datetime | str | None = None,
        branches: Mapping[str, Mapping[str, FileSpec]] | None = None,
        lfs: Mapping[str, bool] | None = None,
        message: str = "initial commit",
        extra: Mapping[str, Any] | None = None,
    ) -> HubRepo:
        """Add (or replace) a model repo whose ``main`` holds ``files`` ({path: content}).

        ``config`` is reported by the API and, unless ``files`` has one, served as
        ``config.json`` (a ``config.json`` in ``files`` is reported when ``config`` is None).
        ``tags`` get ``library_name``, ``pipeline_tag`` and ``license:<x>`` appended, as on the
        Hub. ``gated`` is ``False``, ``True`` (= ``"auto"``), ``"auto"`` or ``"manual"``.
        ``safetensors`` is ``{"parameters": {dtype: n}, "total": n}`` or just ``{dtype: n}``;
        when None it is computed from the headers of the ``.safetensors`` files, like the Hub.
        ``branches`` adds other branches ({name: files}, children of main's commit); ``lfs``
        forces LFS on/off per path; ``extra`` is merged into every API answer about the repo.
        """
        files = dict(files or {})
        if config is not None and "config.json" not in files:
            files["config.json"] = json.dumps(config, indent=2).encode()
        blobs = self._blobs(files, lfs)
        if config is None and "config.json" in blobs and blobs["config.json"].size < MiB:
            try:
                config = json.loads(blobs["config.json"].content.read())
            except ValueError:
                config = None
        all_tags = list(dict.fromkeys(tags))
        for tag in (library_name, pipeline_tag, f"license:{license}" if license else None):
            if tag and tag not in all_tags:
                all_tags.append(tag)
        card = dict(card_data or {})
        if license and "license" not in card:
            card["license"] = license
        if safetensors is not None and "parameters" not in safetensors:
            safetensors = {"parameters": dict(safetensors), "total": sum(safetensors.values())}
        repo = HubRepo(
            repo_id=repo_id,
            model_tags=all_tags,
            pipeline_tag=pipeline_tag,
            library_name=library_name,
            license=license,
            gated="auto" if gated is True else gated,
            private=private,
            downloads=downloads,
            likes=likes,
            trending_score=trending_score,
            safetensors=dict(safetensors) if safetensors is not None else None,
            gguf=dict(gguf) if gguf is not None else None,
            card_data=card or None,
            config=dict(config) if config is not None else None,
            created_at=_as_datetime(created_at) or _EPOCH,
            last_modified=_as_datetime(last_modified),
            extra=dict(extra or {}),
        )
        with self._lock:
            head = self._commit(repo, blobs, None, message, repo.created_at if created_at else None)
            repo.branches["main"] = head.sha
            for name, branch_files in (branches or {}).items():
                commit = self._commit(repo, self._blobs(branch_files, lfs), head.sha, name, None)
                repo.branches[name] = commit.sha
            if repo.safetensors is None:
                repo.safetensors = _safetensors_info(head.files)
            self._repos[repo_id] = repo
        return repo

    def add_generated_model(
        self,
        repo_id: str,
        *,
        total_bytes: int,
        shards: int = 1,
        seed: int | str = 0,
        dtype: str = "BF16",
        tensors_per_shard: int = 4,
        config: Mapping[str, Any] | None = None,
        extra_files: Mapping[str, FileSpec] | None = None,
        **metadata: Any,
    ) -> HubRepo:
        """A transformers-style repo of about ``total_bytes`` of generated safetensors shards.

        Shards are real safetensors files (valid headers, pseudo-random weights) plus
        ``model.safetensors.index.json`` when sharded, ``config.json``, a tokenizer config and
        a README. Nothing is held in memory; the sha256 of each shard is computed once (in
        parallel) when the repo is added. ``metadata`` goes to :meth:`add_model`.
        """
        itemsize = _DTYPE_SIZES[dtype]
        per_tensor = max(1, total_bytes // shards // tensors_per_shard // itemsize)
        files: dict[str, FileSpec] = {}
        weight_map: dict[str, str] = {}
        for s in range(shards):
            name = (
                "model.safetensors"
                if shards == 1
                else f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
            )
            tensors = {
                f"model.layers.{s * tensors_per_shard + t}.mlp.weight": (dtype, [per_tensor])
                for t in range(tensors_per_shard)
            }
            weight_map.update(dict.fromkeys(tensors, name))
            files[name] = safetensors_content(tensors, f"{seed}:{repo_id}:{name}")
        if shards > 1:
            index = {
                "metadata": {"total_size": per_tensor * itemsize * tensors_per_shard * shards},
                "weight_map": weight_map,
            }
            files["model.safetensors.index.json"] = json.dumps(index, indent=2)
        files["tokenizer_config.json"] = json.dumps({"model_max_length": 4096})
        files["README.md"] = (
            f"---\nlicense: apache-2.0\n---\n# {repo_id}\n\nGenerated test model.\n"
        )
        files.update(extra_files or {})
        config = config or {
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "torch_dtype": {"BF16": "bfloat16", "F16": "float16", "F32": "float32"}.get(dtype),
        }
        metadata.setdefault("library_name", "transformers")
        metadata.setdefault("pipeline_tag", "text-generation")
        metadata.setdefault("tags", ["safetensors", str(config.get("model_type", "llama"))])
        return self.add_model(repo_id, files, config=config, **metadata)

    def commit(
        self,
        repo_id: str,
        files: Mapping[str, FileSpec] | None = None,
        *,
        delete: Iterable[str] = (),
        branch: str = "main",
        message: str = "Update",
        date: datetime | str | None = None,
        lfs: Mapping[str, bool] | None = None,
    ) -> str:
        """Commit changes on ``branch`` (created from main if new); returns the new commit sha."""
        with self._lock:
            repo = self._repos[repo_id]
            parent = repo.resolve(branch) or repo.head
            blobs = dict(parent.files)
            for path in delete:
                blobs.pop(path, None)
            blobs.update(self._blobs(files or {}, lfs))
            commit = self._commit(repo, blobs, parent.sha, message, _as_datetime(date))
            repo.branches[branch] = commit.sha
            return commit.sha

    def create_branch(self, repo_id: str, branch: str, *, revision: str = "main") -> str:
        with self._lock:
            repo = self._repos[repo_id]
            sha = self._require_commit(repo, revision).sha
            repo.branches[branch] = sha
            return sha

    def create_tag(self, repo_id: str, tag: str, *, revision: str = "main") -> str:
        with self._lock:
            repo = self._repos[repo_id]
            sha = self._require_commit(repo, revision).sha
            repo.tags[tag] = sha
            return sha

    @staticmethod
    def _require_commit(repo: HubRepo, revision: str) -> HubCommit:
        commit = repo.resolve(revision)
        if commit is None:
            raise KeyError(f"{repo.repo_id}: no revision {revision!r}")
        return commit

    def remove_model(self, repo_id: str) -> None:
        with self._lock:
            self._repos.pop(repo_id, None)

    def repo(self, repo_id: str) -> HubRepo:
        with self._lock:
            return self._repos[repo_id]

    def blob(self, repo_id: str, path: str, revision: str = "main") -> HubBlob:
        """The served file (its ``sha256``, ``git_oid``, ``etag``, ``content``)."""
        with self._lock:
            return self._require_commit(self._repos[repo_id], revision).files[path]

    def deny_access(self, repo_id: str, user: str = "fake-user") -> None:
        """Make a gated repo answer 403 GatedRepo to ``user`` (the terms were not accepted)."""
        with self._lock:
            self._repos[repo_id].denied_users.add(user)

    # -- faults -------------------------------------------------------------------------------
    def fail_next(
        self,
        status: int = 503,
        *,
        times: int | None = 1,
        path: str | None = None,
        method: str | None = None,
        server: str = "any",
        retry_after: float | None = None,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
    ) -> None:
        """Answer the next ``times`` matching requests (None: all) with ``status``.

        ``path`` is a route prefix (``/api/models``) or a glob (``*/resolve/*``); ``server`` is
        ``"hub"``, ``"cdn"`` or ``"any"``; ``retry_after`` sets ``Retry-After`` (429/503).
        """
        hdrs = dict(headers or {})
        if retry_after is not None:
            hdrs["Retry-After"] = (
                str(int(retry_after)) if retry_after == int(retry_after) else str(retry_after)
            )
        with self._lock:
            self._status_faults.append(
                _StatusFault(status, times, path, method and method.upper(), server, hdrs, body)
            )

    def drop_after(
        self, repo_id: str, filename: str, nbytes: int, *, times: int | None = 1
    ) -> None:
        """Cut the next ``times`` transfers of the file (None: every one) after ``nbytes`` body
        bytes of that response: the client sees the connection close mid-body."""
        with self._lock:
            self._drops[(repo_id, filename)] = _DropFault(nbytes, times)

    def short_response(
        self, repo_id: str, filename: str, nbytes: int, *, times: int | None = None
    ) -> None:
        """Answer the next ``times`` transfers of the file (None: every one) with a complete,
        well-formed ``200`` holding only its first ``nbytes`` bytes (``Content-Length: nbytes``),
        whatever ``Range`` was asked: a broken cache or proxy that the client must not trust."""
        with self._lock:
            self._shorts[(repo_id, filename)] = _DropFault(nbytes, times)

    def corrupt(self, repo_id: str, filename: str, enabled: bool = True) -> None:
        """Serve the file with altered bytes and the same size (and the advertised hashes)."""
        with self._lock:
            if enabled:
                self._corrupt.add((repo_id, filename))
            else:
                self._corrupt.discard((repo_id, filename))

    def throttle(
        self,
        bytes_per_second: float | None,
        *,
        repo_id: str | None = None,
        filename: str | None = None,
    ) -> None:
        """Limit file transfers to ``bytes_per_second`` (None lifts it), for one file or all."""
        key = (repo_id, filename) if repo_id and filename else None
        with self._lock:
            if bytes_per_second is None:
                self._rates.pop(key, None)
            else:
                self._rates[key] = bytes_per_second

    def limit_link(self, bytes_per_second: float | None) -> None:
        """Send every file transfer (hub and CDN) through one link of ``bytes_per_second``
        shared by all of them, like a network path (None lifts it); :meth:`throttle` limits
        each transfer on its own instead."""
        with self._lock:
            self._link = Link(bytes_per_second) if bytes_per_second else None

    def delay(self, seconds: float | None, *, path: str | None = None) -> None:
        """Add ``seconds`` of latency before answering requests matching ``path`` (None: all);
        ``seconds=None`` removes the delays for that ``path``."""
        with self._lock:
            self._delays = [(p, s) for p, s in self._delays if p != path]
            if seconds is not None:
                self._delays.append((path, seconds))

    def go_down(self, how: str = "refuse") -> None:
        """Take the hub and its CDN down: ``"refuse"`` (ports closed: connection refused),
        ``"reset"`` (connections accepted, then reset) or ``"hang"`` (never answered)."""
        if how not in ("refuse", "reset", "hang"):
            raise ValueError("how must be 'refuse', 'reset' or 'hang'")
        with self._lock:
            self.down = how
        if how == "refuse":
            self.stop()

    def come_up(self) -> None:
        """Undo :meth:`go_down`; a refused hub listens again on the same ports."""
        with self._cond:
            self.down = None
            self._cond.notify_all()
        self.start()

    def reset_faults(self) -> None:
        """Remove every injected fault (not the repos, not the log)."""
        with self._cond:
            self._status_faults.clear()
            self._drops.clear()
            self._shorts.clear()
            self._corrupt.clear()
            self._rates.clear()
            self._link = None
            self._delays.clear()
            self.down = None
            self._cond.notify_all()

    # -- inspection ---------------------------------------------------------------------------
    @property
    def log(self) -> list[HubRequest]:
        """Every request to the hub and the CDN, oldest first (a snapshot)."""
        with self._lock:
            return list(self._log)

    def settle(self, timeout: float = 5.0) -> bool:
        """Wait until every logged request's server thread has recorded what it sent.

        A client can hold a whole body a moment before the thread that wrote it counts the
        bytes; call this before asserting on ``bytes_sent``, ``complete`` or ``bytes_served``.
        """
        with self._cond:
            return self._cond.wait_for(lambda: all(r.finished for r in self._log), timeout)

    def requests_to(self, pattern: str, method: str | None = None) -> list[HubRequest]:
        """Logged requests whose path matches ``pattern`` (prefix or glob)."""
        return [
            r
            for r in self.log
            if _match(pattern, r.path) and (method is None or r.method == method.upper())
        ]

    def bytes_served(self, repo_id: str | None = None, filename: str | None = None) -> int:
        """Body bytes actually sent for one file (or all files)."""
        with self._lock:
            if repo_id is None:
                return sum(self._served.values())
            return self._served.get((repo_id, filename or ""), 0)

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()
            self._served.clear()
        self.clear_requests()
        self.cdn.clear_requests()

    # -- HTTP ---------------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        return self._dispatch(request, "hub")

    def _dispatch(self, request: Request, server: str) -> Response:
        entry = HubRequest(
            server=server,
            method=request.method,
            path=request.route,
            query=request.query,
            headers=dict(request.headers),
            range=request.headers.get("range"),
        )
        with self._lock:
            self._log.append(entry)
            delay = sum(s for p, s in self._delays if _match(p, request.route))
        if self.down == "hang":
            with self._cond:
                self._cond.wait_for(lambda: self.down != "hang" or self.stopping.is_set())
        if self.down == "reset" or self.stopping.is_set() or (delay and not self.sleep(delay)):
            entry.status, entry.finished = 0, True
            return StreamResponse(reset=True)
        response = self._injected(request, server)
        if response is None:
            try:
                if server == "cdn":
                    response = self._cdn(request, entry)
                else:
                    response = self._route(request, entry)
            except _HubError as err:
                response = err.response()
        if not isinstance(response, StreamResponse):
            response = StreamResponse(response.status, response.body, response.headers)
        entry.status = response.status
        previous = response.on_sent

        def on_sent(nbytes: int, complete: bool) -> None:
            entry.bytes_sent, entry.complete = nbytes, complete
            if entry.file is not None and request.method == "GET":
                with self._lock:
                    self._served[entry.file] = self._served.get(entry.file, 0) + nbytes
            if previous is not None:
                previous(nbytes, complete)
            with self._cond:
                entry.finished = True
                self._cond.notify_all()

        response.on_sent = on_sent
        return response

    def _injected(self, request: Request, server: str) -> StreamResponse | None:
        with self._lock:
            for fault in self._status_faults:
                if fault.server not in ("any", server):
                    continue
                if fault.method is not None and fault.method != request.method:
                    continue
                if not _match(fault.pattern, request.route):
                    continue
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._status_faults.remove(fault)
                body = (
                    fault.body if fault.body is not None else {"error": f"injected {fault.status}"}
                )
                headers = {"Content-Type": "application/json; charset=utf-8", **fault.headers}
                return StreamResponse(fault.status, json.dumps(body).encode(), headers)
        return None

    def _user(self, request: Request) -> str | None:
        auth = request.headers.get("authorization")
        if auth is None:
            return None
        scheme, _, token = auth.partition(" ")
        user = self.tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if user is None:
            raise _HubError(401, "Invalid credentials in Authorization header")
        return user

    def _visible(self, repo_id: str, user: str | None) -> HubRepo:
        with self._lock:
            repo = self._repos.get(repo_id)
        if repo is None or (repo.private and user is None):
            raise _HubError(401 if user is None else 404, "Repository not found", "RepoNotFound")
        return repo

    @staticmethod
    def _commit_of(repo: HubRepo, revision: str) -> HubCommit:
        commit = repo.resolve(revision)
        if commit is None:
            raise _HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return commit

    def _route(self, request: Request, entry: HubRequest) -> Response:
        route = request.route
        segments = [unquote(s) for s in route.strip("/").split("/")]
        user = self._user(request)
        if route == "/api/whoami-v2":
            return self._whoami(user)
        if route.rstrip("/") == "/api/models":
            return self._only(request, "GET") or self._list_models(request)
        if route.startswith("/api/models/"):
            return self._model_api(request, segments[2:], user)
        i = self._split_repo(segments, ("resolve",), 2)
        if i is not None:
            if request.method not in ("GET", "HEAD"):
                return self._json({"error": "Method not allowed"}, 405)
            repo_id = "/".join(segments[:i])
            path = "/".join(segments[i + 2 :])
            return self._resolve(request, entry, repo_id, segments[i + 1], path, user)
        return self._json({"error": "Sorry, we can't find the page you are looking for."}, 404)

    def _split_repo(self, segments: list[str], markers: Sequence[str], after: int) -> int | None:
        """Index of the marker ending the repo id (``ns/name`` preferred, then ``name``), given
        at least ``after`` segments follow it: ``org/tree/tree/main`` is repo ``org/tree``."""
        found = [i for i in (2, 1) if len(segments) >= i + 1 + after and segments[i] in markers]
        with self._lock:
            for i in found:
                if "/".join(segments[:i]) in self._repos:
                    return i
        return found[0] if found else None

    @staticmethod
    def _only(request: Request, *methods: str) -> Response | None:
        if request.method in methods:
            return None
        return FakeHub._json({"error": "Method not allowed"}, 405)

    @staticmethod
    def _json(
        data: Any, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> StreamResponse:
        hdrs = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
        return StreamResponse(status, json.dumps(data).encode(), hdrs)

    def _whoami(self, user: str | None) -> Response:
        if user is None:
            raise _HubError(401, "Invalid credentials in Authorization header")
        return self._json(
            {
                "type": "user",
                "id": hashlib.sha1(user.encode()).hexdigest()[:24],
                "name": user,
                "fullname": user,
                "email": f"{user}@example.com",
                "emailVerified": True,
                "isPro": False,
                "orgs": [],
                "auth": {
                    "type": "access_token",
                    "accessToken": {"displayName": "fake", "role": "read"},
                },
            }
        )

    # -- /api/models ----------------------------------------------------------------------------
    def _list_models(self, request: Request) -> Response:
        q = request.query
        expand = q.get("expand", [])
        if bad := [e for e in expand if e not in EXPAND_PROPERTIES]:
            return self._json({"error": f'"expand" contains invalid values: {bad}'}, 400)
        sort = (q.get("sort") or ["trendingScore"])[-1]
        if sort not in _SORT_KEYS:
            return self._json({"error": f'"sort" must be one of {sorted(_SORT_KEYS)}'}, 400)
        user = self._user(request)
        with self._lock:
            repos = [r for r in self._repos.values() if not r.private or user is not None]
        search = (q.get("search") or [""])[-1].lower()
        author = (q.get("author") or [""])[-1].lower()
        pipeline = (q.get("pipeline_tag") or [""])[-1]
        filters = q.get("filter", [])
        gated = q.get("gated")
        num_min, num_max = 0.0, math.inf
        for part in ",".join(q.get("num_parameters", [])).split(","):
            key, _, value = part.partition(":")
            try:
                if key.strip() == "min":
                    num_min = _parse_count(value)
                elif key.strip() == "max":
                    num_max = _parse_count(value)
            except ValueError:
                return self._json({"error": f"invalid num_parameters: {part}"}, 400)
        num_filter = bool(q.get("num_parameters"))

        def keep(r: HubRepo) -> bool:
            if search and search not in r.repo_id.lower():
                return False
            if author and (r.author or "").lower() != author:
                return False
            if pipeline and r.pipeline_tag != pipeline:
                return False
            if any(f not in r.model_tags for f in filters):
                return False
            if gated is not None and bool(r.gated) != _truthy(gated):
                return False
            if num_filter:
                n = _param_count(r)
                if n is None or not num_min <= n <= num_max:
                    return False
            return True

        selected = [r for r in repos if keep(r)]
        selected.sort(key=lambda r: _sort_value(r, sort), reverse=True)  # stable: ties keep order
        try:
            offset = int(base64.urlsafe_b64decode((q.get("cursor") or [""])[-1] + "==") or 0)
        except ValueError:
            return self._json({"error": "invalid cursor"}, 400)
        size = self.page_size
        if q.get("limit"):
            try:
                size = max(1, min(size, int(q["limit"][-1])))
            except ValueError:
                return self._json({"error": '"limit" must be an integer'}, 400)
        page = selected[offset : offset + size]
        full, config, card = (
            _truthy(q.get("full")),
            _truthy(q.get("config")),
            _truthy(q.get("cardData")),
        )
        items = [
            self._model_payload(
                r, r.head, listing=True, full=full, config=config, card=card, expand=expand
            )
            for r in page
        ]
        headers = {}
        if offset + size < len(selected):
            cursor = base64.urlsafe_b64encode(str(offset + size).encode()).decode().rstrip("=")
            params = {k: v for k, v in q.items() if k != "cursor"} | {"cursor": [cursor]}
            host = request.headers.get("host", f"{self.host}:{self.port}")
            headers["Link"] = (
                f'<http://{host}/api/models?{urlencode(params, doseq=True)}>; rel="next"'
            )
        return self._json(items, headers=headers)

    def _model_api(self, request: Request, segments: list[str], user: str | None) -> Response:
        markers = ("revision", "tree", "refs", "commits", "paths-info")
        cut = self._split_repo(segments, markers, 0)
        if cut is None:
            if len(segments) not in (1, 2):
                return self._json({"error": "Not Found"}, 404)
            return self._only(request, "GET") or self._model_info(
                request, self._visible("/".join(segments), user), None
            )
        repo = self._visible("/".join(segments[:cut]), user)
        kind, rest = segments[cut], segments[cut + 1 :]
        if kind == "paths-info":
            return self._only(request, "POST") or self._paths_info(request, repo, rest)
        if bad := self._only(request, "GET"):
            return bad
        if kind == "revision" and len(rest) == 1:
            return self._model_info(request, repo, rest[0])
        if kind == "tree" and rest:
            return self._tree(request, repo, rest[0], "/".join(rest[1:]))
        if kind == "refs" and not rest:
            return self._refs(repo)
        if kind == "commits" and len(rest) == 1:
            return self._commits(request, repo, rest[0])
        return self._json({"error": "Not Found"}, 404)

    def _model_info(self, request: Request, repo: HubRepo, revision: str | None) -> Response:
        commit = repo.head if revision is None else self._commit_of(repo, revision)
        expand = request.query.get("expand", [])
        if bad := [e for e in expand if e not in EXPAND_PROPERTIES]:
            return self._json({"error": f'"expand" contains invalid values: {bad}'}, 400)
        payload = self._model_payload(
            repo,
            commit,
            listing=False,
            blobs=_truthy(request.query.get("blobs")),
            expand=expand,
            at_revision=revision is not None,
        )
        return self._json(payload)

    def _model_payload(
        self,
        repo: HubRepo,
        commit: HubCommit,
        *,
        listing: bool,
        full: bool = False,
        config: bool = False,
        card: bool = False,
        blobs: bool = False,
        expand: Sequence[str] = (),
        at_revision: bool = False,
    ) -> dict[str, Any]:
        if blobs:
            siblings = [
                {
                    "rfilename": path,
                    "size": b.size,
                    "blobId": b.git_oid,
                    **(
                        {"lfs": {"sha256": b.sha256, "size": b.size, "pointerSize": b.pointer_size}}
                        if b.lfs
                        else {}
                    ),
                }
                for path, b in sorted(commit.files.items())
            ]
        else:
            siblings = [{"rfilename": path} for path in sorted(commit.files)]
        modified = commit.date if at_revision or repo.last_modified is None else repo.last_modified
        standard: dict[str, Any] = {
            "author": repo.author,
            "cardData": repo.card_data,
            "config": repo.config,
            "createdAt": _iso(repo.created_at),
            "disabled": repo.disabled,
            "downloads": repo.downloads,
            "downloadsAllTime": repo.downloads,
            "gated": repo.gated,
            "gguf": repo.gguf,
            "lastModified": _iso(modified),
            "library_name": repo.library_name,
            "likes": repo.likes,
            "pipeline_tag": repo.pipeline_tag,
            "private": repo.private,
            "safetensors": repo.safetensors,
            "sha": commit.sha,
            "siblings": siblings,
            "spaces": [],
            "tags": list(repo.model_tags),
            "trendingScore": repo.trending_score,
            "usedStorage": sum(b.size for b in commit.files.values()),
        }
        every = standard | repo.extra
        custom = {k: v for k, v in repo.extra.items() if k not in standard}
        head = {"_id": repo.mongo_id, "id": repo.repo_id}
        if expand:
            chosen = {k: every.get(k) for k in expand}
        elif listing:
            keys = ["likes", "trendingScore", "private", "downloads", "tags", "pipeline_tag"]
            keys += ["library_name", "createdAt"]
            if full:
                keys += ["author", "sha", "lastModified", "gated", "disabled", "siblings"]
            if config:
                keys.append("config")
            if card:
                keys.append("cardData")
            chosen = {k: every[k] for k in keys} | {"modelId": repo.repo_id} | custom
        else:
            chosen = every | {"modelId": repo.repo_id}
        return head | {k: v for k, v in chosen.items() if v is not None or k in expand}

    def _tree_entries(
        self, repo: HubRepo, commit: HubCommit, base: str, recursive: bool, expand: bool
    ) -> list[dict[str, Any]]:
        base = base.strip("/")
        if base and base not in commit.trees:
            if base in commit.files:
                raise _HubError(400, f"{base} is a file, not a directory")
            raise _HubError(404, f"Entry not found: {base}", "EntryNotFound", commit.sha)
        prefix = f"{base}/" if base else ""
        entries: list[dict[str, Any]] = []
        for directory, oid in commit.trees.items():
            if directory and directory.startswith(prefix):
                rel = directory[len(prefix) :]
                if recursive or "/" not in rel:
                    entries.append({"type": "directory", "oid": oid, "size": 0, "path": directory})
        for path, blob in commit.files.items():
            if path.startswith(prefix) and (recursive or "/" not in path[len(prefix) :]):
                entry: dict[str, Any] = {
                    "type": "file",
                    "oid": blob.git_oid,
                    "size": blob.size,
                    "path": path,
                }
                if blob.lfs:
                    entry["lfs"] = {
                        "oid": blob.sha256,
                        "size": blob.size,
                        "pointerSize": blob.pointer_size,
                    }
                entries.append(entry)
        if expand:
            for entry in entries:
                last = self._last_commit(repo, commit, entry["path"], entry["oid"])
                entry["lastCommit"] = {"id": last.sha, "title": last.title, "date": _iso(last.date)}
        return sorted(entries, key=lambda e: e["path"].encode())

    @staticmethod
    def _last_commit(repo: HubRepo, commit: HubCommit, path: str, oid: str) -> HubCommit:
        """The oldest ancestor in the unbroken run of commits where ``path`` had ``oid``."""
        while commit.parent is not None:
            parent = repo.commits[commit.parent]
            same = parent.files.get(path) or parent.trees.get(path)
            same_oid = same.git_oid if isinstance(same, HubBlob) else same
            if same_oid != oid:
                break
            commit = parent
        return commit

    def _tree(self, request: Request, repo: HubRepo, revision: str, path: str) -> Response:
        commit = self._commit_of(repo, revision)
        expand = _truthy(request.query.get("expand"))
        entries = self._tree_entries(
            repo, commit, path, _truthy(request.query.get("recursive")), expand
        )
        size = min(self.tree_page_size, 50) if expand else self.tree_page_size
        return self._paginated(request, entries, size)

    def _paginated(self, request: Request, items: list[Any], size: int) -> Response:
        q = request.query
        try:
            offset = int(base64.urlsafe_b64decode((q.get("cursor") or [""])[-1] + "==") or 0)
        except ValueError:
            return self._json({"error": "invalid cursor"}, 400)
        headers = {}
        if offset + size < len(items):
            cursor = base64.urlsafe_b64encode(str(offset + size).encode()).decode().rstrip("=")
            params = {k: v for k, v in q.items() if k != "cursor"} | {"cursor": [cursor]}
            host = request.headers.get("host", f"{self.host}:{self.port}")
            link = f"http://{host}{request.route}?{urlencode(params, doseq=True)}"
            headers["Link"] = f'<{link}>; rel="next"'
        return self._json(items[offset : offset + size], headers=headers)

    def _paths_info(self, request: Request, repo: HubRepo, rest: list[str]) -> Response:
        if len(rest) != 1:
            return self._json({"error": "Not Found"}, 404)
        commit = self._commit_of(repo, rest[0])
        if "json" in request.headers.get("content-type", ""):
            form = request.json() or {}
            paths, expand = list(form.get("paths", [])), bool(form.get("expand"))
        else:
            form = parse_qs(request.body.decode(), keep_blank_values=True)
            paths, expand = form.get("paths", []), _truthy(form.get("expand"))
        out = []
        for path in paths:
            parent, _, _ = path.rpartition("/")
            if path in commit.files or path in commit.trees:
                out += [
                    e
                    for e in self._tree_entries(repo, commit, parent, False, expand)
                    if e["path"] == path
                ]
        return self._json(out)

    def _refs(self, repo: HubRepo) -> Response:
        def refs(kind: str, names: Mapping[str, str]) -> list[dict[str, str]]:
            return [
                {"name": n, "ref": f"refs/{kind}/{n}", "targetCommit": sha}
                for n, sha in names.items()
            ]

        return self._json(
            {
                "branches": refs("heads", repo.branches),
                "converts": [],
                "tags": refs("tags", repo.tags),
                "pullRequests": [],
            }
        )

    def _commits(self, request: Request, repo: HubRepo, revision: str) -> Response:
        commit: HubCommit | None = self._commit_of(repo, revision)
        items = []
        while commit is not None:
            items.append(
                {
                    "id": commit.sha,
                    "title": commit.title,
                    "message": "",
                    "authors": [{"user": commit.author}],
                    "date": _iso(commit.date),
                }
            )
            commit = repo.commits[commit.parent] if commit.parent else None
        return self._paginated(request, items, 50)

    # -- file downloads -------------------------------------------------------------------------
    def _resolve(
        self,
        request: Request,
        entry: HubRequest,
        repo_id: str,
        revision: str,
        path: str,
        user: str | None,
    ) -> Response:
        repo = self._visible(repo_id, user)
        commit = self._commit_of(repo, revision)
        if repo.gated:
            if user is None:
                raise _HubError(
                    401,
                    f"Access to model {repo_id} is restricted. You must have access to it and be "
                    "authenticated to access it. Please log in.",
                    "GatedRepo",
                )
            if user in repo.denied_users:
                raise _HubError(
                    403,
                    f"Access to model {repo_id} is restricted and you are not in the authorized "
                    f"list. Visit https://huggingface.co/{repo_id} to ask for access.",
                    "GatedRepo",
                )
        blob = commit.files.get(path)
        if blob is None:
            raise _HubError(404, "Entry not found", "EntryNotFound", commit.sha)
        headers = {"X-Repo-Commit": commit.sha, "Accept-Ranges": "bytes", "Vary": "Origin"}
        if blob.lfs and self.lfs_mode == "cdn":
            query = urlencode({"filename": path, "response-content-disposition": "attachment"})
            location = f"{self.cdn.url}/repos/{quote(repo_id)}/{blob.sha256}?{query}"
            headers |= {
                "Location": location,
                "ETag": f'"{blob.git_oid}"',
                "X-Linked-Etag": f'"{blob.sha256}"',
                "X-Linked-Size": str(blob.size),
                "Content-Type": "text/plain; charset=utf-8",
            }
            body = f"Found. Redirecting to {location}".encode()
            return StreamResponse(302, body, headers)
        entry.file = (repo_id, path)
        return self._serve_blob(request, entry, blob, headers)

    def _cdn(self, request: Request, entry: HubRequest) -> Response:
        m = re.fullmatch(r"/repos/(?P<repo>.+)/(?P<sha>[0-9a-f]{64})", request.route)
        with self._lock:
            blob = self._lfs_index.get(m.group("sha")) if m else None
        if m is None or blob is None or request.method not in ("GET", "HEAD"):
            body = b"<?xml version='1.0'?><Error><Code>NoSuchKey</Code></Error>"
            return StreamResponse(404, body, {"Content-Type": "application/xml"})
        entry.file = (unquote(m.group("repo")), (request.query.get("filename") or [""])[-1])
        return self._serve_blob(request, entry, blob, {"Accept-Ranges": "bytes"})

    def _serve_blob(
        self, request: Request, entry: HubRequest, blob: HubBlob, headers: dict[str, str]
    ) -> Response:
        assert entry.file is not None
        name = entry.file[1]
        headers = {
            **headers,
            "ETag": f'"{blob.etag}"',
            "Content-Type": mimetypes.guess_type(name)[0] or "application/octet-stream",
            "Content-Disposition": f'inline; filename="{name.rsplit("/", 1)[-1]}"',
        }
        rng = _parse_range(request.headers.get("range"), blob.size)
        with self._lock:
            short = self._shorts.get(entry.file) if request.method == "GET" else None
            if short is not None and short.remaining is not None:
                short.remaining -= 1
                if short.remaining <= 0:
                    del self._shorts[entry.file]
        if rng is False and short is None:
            headers["Content-Range"] = f"bytes */{blob.size}"
            return StreamResponse(416, b"", headers)
        status, start, end = 200, 0, blob.size
        if short is not None:
            end = min(short.after, blob.size)
        elif isinstance(rng, tuple):
            status, start, end = 206, rng[0], rng[1] + 1
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{blob.size}"
        headers["Content-Length"] = str(end - start)
        with self._lock:
            drop = self._drops.get(entry.file) if request.method == "GET" else None
            abort_after = None
            if drop is not None:
                abort_after = drop.after
                if drop.remaining is not None:
                    drop.remaining -= 1
                    if drop.remaining <= 0:
                        del self._drops[entry.file]
            corrupt = entry.file in self._corrupt
            rate = self._rates.get(entry.file, self._rates.get(None))
            link = self._link

        def body() -> Iterator[bytes]:
            chunks = blob.content.chunks(start, end)
            yield from _corrupted(chunks, start) if corrupt else chunks

        return StreamResponse(
            status, body(), headers, abort_after=abort_after, rate=rate, link=link
        )


def _sort_value(repo: HubRepo, key: str) -> Any:
    if key == "lastModified":
        return repo.last_modified or repo.head.date
    if key == "createdAt":
        return repo.created_at
    return {"downloads": repo.downloads, "likes": repo.likes, "trendingScore": repo.trending_score}[
        key
    ]


def _param_count(repo: HubRepo) -> int | None:
    if repo.safetensors:
        return int(repo.safetensors["total"])
    if repo.gguf and "total" in repo.gguf:
        return int(repo.gguf["total"])
    return None


def _safetensors_info(files: Mapping[str, HubBlob]) -> dict[str, Any] | None:
    """``{"parameters": {dtype: n}, "total": n}`` from the headers, as the Hub computes it."""
    params: dict[str, int] = {}
    found = False
    for path, blob in files.items():
        if not path.endswith(".safetensors") or blob.size < 8:
            continue
        try:
            (n,) = struct.unpack("<Q", blob.content.read(0, 8))
            if n > 100 * MiB or 8 + n > blob.size:
                continue
            header = json.loads(blob.content.read(8, 8 + n))
        except (ValueError, struct.error):
            continue
        found = True
        for name, info in header.items():
            if name != "__metadata__":
                params[info["dtype"]] = params.get(info["dtype"], 0) + math.prod(info["shape"])
    return {"parameters": params, "total": sum(params.values())} if found else None


@pytest.fixture
def fake_hub() -> Iterator[FakeHub]:
    """A running :class:`FakeHub` (token :data:`DEFAULT_TOKEN`, LFS via the CDN); fails the test
    if a handler crashed."""
    with FakeHub() as hub:
        yield hub
        errors = hub.errors + hub.cdn.errors
        if errors:
            raise AssertionError(f"FakeHub handler crashed: {errors!r}")
    # huggingface_hub keeps one process-wide HTTP client: its pooled connections to this hub
    # must not meet the next test's hub on the same (reused) port as a reset connection.
    import huggingface_hub

    huggingface_hub.close_session()
