"""A local fake of Slack for tests: the Web API, response_url hooks and file-upload URLs.

Why: the bot must be tested through the *real* ``slack_sdk`` / ``slack_bolt`` code paths (request
encoding, retries, error raising), so this fake speaks Slack's wire protocol over HTTP instead of
mocking the client. Point a client at it with ``WebClient(token=fake.token,
base_url=fake.api_url)``.

It models the parts of Slack whose rules our code must respect (see
``/work/shared/reference/slack-and-hf-protocols.md``): Bearer auth and scopes, HTTP-200 error
envelopes, Block Kit limits (``invalid_blocks`` for messages, ``invalid_arguments`` for views),
trigger ids (single use, 3 s), response_url (5 uses, 30 min), rate limits (429 + Retry-After),
message state with edit history, and the three-step external file upload.

The test side of the conversation (Slack calling the app) is covered by
:class:`SlackRequestSigner` and the ``FakeSlack.slash_command`` / ``block_actions`` /
``view_submission`` / ``event`` builders, which produce the exact bytes Slack would send.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import itertools
import json
import re
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from tests.fakes.http import FakeHTTPServer, Request, Response
from tests.fakes.slack_socket import SocketModeServer

__all__ = [
    "DEFAULT_SCOPES",
    "Call",
    "Ephemeral",
    "FakeSlack",
    "HttpReply",
    "Message",
    "ResponsePost",
    "SlackInbound",
    "SlackRequestSigner",
    "UploadedFile",
    "fake_slack",
]

T = TypeVar("T")

#: The bot scopes of our app manifest; ``auth.test`` reports them in ``x-oauth-scopes``.
DEFAULT_SCOPES: tuple[str, ...] = (
    "commands",
    "chat:write",
    "chat:write.public",
    "users:read",
    "users:read.email",
    "usergroups:read",
    "im:write",
    "files:write",
)

# Scope each modelled method needs; views.* need none (the trigger id is the authorisation).
_METHOD_SCOPES: dict[str, str] = {
    "chat.postMessage": "chat:write",
    "chat.update": "chat:write",
    "chat.postEphemeral": "chat:write",
    "chat.delete": "chat:write",
    "conversations.open": "im:write",
    "users.info": "users:read",
    "usergroups.users.list": "usergroups:read",
    "files.getUploadURLExternal": "files:write",
    "files.completeUploadExternal": "files:write",
}

TRIGGER_TTL = 3.0  # seconds a trigger_id stays usable
RESPONSE_URL_TTL = 30 * 60.0  # seconds a response_url stays usable
RESPONSE_URL_MAX_USES = 5
MAX_TEXT = 40_000  # message text above this is truncated (or msg_too_long)
MAX_VIEW_BYTES = 250_000  # views above this get view_too_large
MAX_MODAL_STACK = 3

_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]+$")
_USER_ID = re.compile(r"^[UW][A-Z0-9]+$")


# ---------------------------------------------------------------------------------------------
# Records handed to tests
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Call:
    """One Web API call as the fake saw it (including rejected and fault-injected ones)."""

    method: str
    params: dict[str, Any]
    headers: dict[str, str]
    timestamp: float
    http_method: str = "POST"
    status: int = 200
    response: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether Slack answered ``ok: true``."""
        return bool(self.response.get("ok"))


@dataclass
class Message:
    """A channel message's current state; ``history`` holds earlier versions, oldest first."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]] | None = None
    thread_ts: str | None = None
    user: str = ""
    bot_id: str | None = None
    metadata: dict[str, Any] | None = None
    files: list[str] = field(default_factory=list)
    source: str = "chat.postMessage"
    history: list[dict[str, Any]] = field(default_factory=list)
    edited_ts: str | None = None
    deleted: bool = False

    def as_slack(self) -> dict[str, Any]:
        """The message object as Slack returns it in API responses and interaction payloads."""
        out: dict[str, Any] = {"type": "message", "ts": self.ts, "text": self.text}
        if self.user:
            out["user"] = self.user
        if self.bot_id:
            out["bot_id"] = self.bot_id
        if self.blocks is not None:
            out["blocks"] = copy.deepcopy(self.blocks)
        if self.thread_ts:
            out["thread_ts"] = self.thread_ts
        if self.metadata is not None:
            out["metadata"] = copy.deepcopy(self.metadata)
        if self.files:
            out["files"] = [{"id": f} for f in self.files]
        if self.edited_ts:
            out["edited"] = {"user": self.user, "ts": self.edited_ts}
        return out


@dataclass
class Ephemeral:
    """An ephemeral message shown to one user (chat.postEphemeral or an ephemeral response_url)."""

    channel: str
    user: str
    text: str
    blocks: list[dict[str, Any]] | None
    ts: str
    thread_ts: str | None = None
    source: str = "chat.postEphemeral"
    history: list[dict[str, Any]] = field(default_factory=list)
    """Earlier contents, oldest first, when a response_url replaced this message."""
    deleted: bool = False


@dataclass(frozen=True)
class ResponsePost:
    """One POST to a response_url: the JSON payload sent and what the fake answered."""

    url: str
    payload: dict[str, Any]
    status: int
    error: str | None
    timestamp: float

    @property
    def text(self) -> str | None:
        return self.payload.get("text")

    @property
    def blocks(self) -> list[dict[str, Any]] | None:
        return self.payload.get("blocks")

    @property
    def response_type(self) -> str:
        return str(self.payload.get("response_type") or "ephemeral")

    @property
    def replace_original(self) -> bool:
        return _truthy(self.payload.get("replace_original"))

    @property
    def delete_original(self) -> bool:
        return _truthy(self.payload.get("delete_original"))


@dataclass
class UploadedFile:
    """A file uploaded through files.getUploadURLExternal → upload URL → completeUploadExternal."""

    id: str
    filename: str
    length: int
    content: bytes | None = None
    title: str | None = None
    alt_txt: str | None = None
    snippet_type: str | None = None
    completed: bool = False
    channels: list[str] = field(default_factory=list)
    initial_comment: str | None = None
    thread_ts: str | None = None


@dataclass(frozen=True)
class SlackInbound:
    """A request Slack would send to the app: sign and POST exactly ``body``."""

    body: bytes
    content_type: str
    fields: dict[str, str] = field(default_factory=dict)
    payload: dict[str, Any] | None = None
    response_url: str | None = None
    trigger_id: str | None = None


@dataclass(frozen=True)
class HttpReply:
    """The app's HTTP answer to a request sent by :meth:`SlackRequestSigner.post`."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body.strip() else None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


# ---------------------------------------------------------------------------------------------
# Signing (test side: acting as Slack)
# ---------------------------------------------------------------------------------------------
class SlackRequestSigner:
    """Signs requests the way Slack does (v0 HMAC-SHA256 over ``v0:<ts>:<raw body>``).

    Written independently of ``slack_sdk.signature`` so a bug there cannot hide in both sides.
    """

    user_agent = "Slackbot 1.0 (+https://api.slack.com/robots)"

    def __init__(self, signing_secret: str, clock: Callable[[], float] = time.time) -> None:
        self.signing_secret = signing_secret
        self.clock = clock

    def signature(self, timestamp: str | int, body: bytes | str) -> str:
        """``v0=<hex digest>`` for exactly these body bytes."""
        raw = body.encode() if isinstance(body, str) else body
        base = b"v0:" + str(timestamp).encode() + b":" + raw
        digest = hmac.new(self.signing_secret.encode(), base, hashlib.sha256).hexdigest()
        return f"v0={digest}"

    def headers(
        self,
        body: bytes | str,
        *,
        timestamp: str | int | None = None,
        content_type: str = "application/x-www-form-urlencoded",
    ) -> dict[str, str]:
        """Headers Slack sends with ``body``; ``timestamp`` defaults to now."""
        ts = str(int(self.clock()) if timestamp is None else timestamp)
        return {
            "Content-Type": content_type,
            "User-Agent": self.user_agent,
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": self.signature(ts, body),
        }

    def post(
        self,
        url: str,
        request: SlackInbound | bytes,
        *,
        timestamp: str | int | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
    ) -> HttpReply:
        """POST a signed request to the app and return its answer (HTTP errors included)."""
        if isinstance(request, SlackInbound):
            body, ctype = request.body, request.content_type
        else:
            body, ctype = request, "application/x-www-form-urlencoded"
        hdrs = {**self.headers(body, timestamp=timestamp, content_type=ctype), **(headers or {})}
        req = urllib.request.Request(url, data=body, headers=hdrs, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return HttpReply(resp.status, dict(resp.headers.items()), resp.read())
        except urllib.error.HTTPError as err:
            return HttpReply(err.code, dict(err.headers.items()), err.read())


# ---------------------------------------------------------------------------------------------
# Block Kit validation (the subset of Slack's schema our UI can trip over)
# ---------------------------------------------------------------------------------------------
def _too_long(value: Any, limit: int, ptr: str) -> list[str]:
    if isinstance(value, str) and len(value) > limit:
        return [f"must be less than {limit + 1} characters [json-pointer:{ptr}]"]
    return []


def _text_object(obj: Any, limit: int, ptr: str, *, plain_only: bool = False) -> list[str]:
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
        return [f"must provide an object with a text field [json-pointer:{ptr}]"]
    allowed = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
    if obj.get("type") not in allowed:
        return [f"must be one of {', '.join(allowed)} [json-pointer:{ptr}/type]"]
    return _too_long(obj["text"], limit, f"{ptr}/text")


def _element(el: Any, ptr: str) -> list[str]:
    if not isinstance(el, dict) or not isinstance(el.get("type"), str):
        return [f"must provide an element object with a type [json-pointer:{ptr}]"]
    errs = _too_long(el.get("action_id"), 255, f"{ptr}/action_id")
    if el["type"] == "button":
        errs += _text_object(el.get("text"), 75, f"{ptr}/text", plain_only=True)
        errs += _too_long(el.get("value"), 2000, f"{ptr}/value")
        errs += _too_long(el.get("url"), 3000, f"{ptr}/url")
    for key in ("options", "option_groups"):
        if isinstance(el.get(key), list) and len(el[key]) > 100:
            errs.append(f"must be less than 101 items [json-pointer:{ptr}/{key}]")
    for i, opt in enumerate(el.get("options") or []):
        if isinstance(opt, dict):
            errs += _too_long(opt.get("value"), 150, f"{ptr}/options/{i}/value")
            if isinstance(opt.get("text"), dict):
                errs += _too_long(opt["text"].get("text"), 75, f"{ptr}/options/{i}/text/text")
    if isinstance(el.get("placeholder"), dict):
        errs += _too_long(el["placeholder"].get("text"), 150, f"{ptr}/placeholder/text")
    return errs


def validate_blocks(blocks: Any, max_blocks: int, ptr: str = "/blocks") -> list[str]:
    """Slack-style error messages (without the ``[ERROR]`` prefix) for ``blocks``."""
    if not isinstance(blocks, list):
        return [f"must be an array [json-pointer:{ptr}]"]
    errs: list[str] = []
    if len(blocks) > max_blocks:
        errs.append(f"must be less than {max_blocks + 1} items [json-pointer:{ptr}]")
    for i, block in enumerate(blocks):
        bp = f"{ptr}/{i}"
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            errs.append(f"must provide a block object with a type [json-pointer:{bp}]")
            continue
        errs += _too_long(block.get("block_id"), 255, f"{bp}/block_id")
        kind = block["type"]
        if kind == "section":
            if "text" not in block and "fields" not in block:
                errs.append(f"must provide text or fields [json-pointer:{bp}]")
            if "text" in block:
                errs += _text_object(block["text"], 3000, f"{bp}/text")
            fields = block.get("fields")
            if fields is not None:
                if not isinstance(fields, list) or len(fields) > 10:
                    errs.append(f"must be less than 11 items [json-pointer:{bp}/fields]")
                else:
                    for j, fld in enumerate(fields):
                        errs += _text_object(fld, 2000, f"{bp}/fields/{j}")
            if "accessory" in block:
                errs += _element(block["accessory"], f"{bp}/accessory")
        elif kind == "header":
            errs += _text_object(block.get("text"), 150, f"{bp}/text", plain_only=True)
        elif kind in ("actions", "context"):
            limit = 25 if kind == "actions" else 10
            elements = block.get("elements")
            if not isinstance(elements, list) or not elements:
                errs.append(f"must provide a non-empty array [json-pointer:{bp}/elements]")
            elif len(elements) > limit:
                errs.append(f"must be less than {limit + 1} items [json-pointer:{bp}/elements]")
            elif kind == "actions":
                for j, el in enumerate(elements):
                    errs += _element(el, f"{bp}/elements/{j}")
        elif kind == "input":
            errs += _text_object(block.get("label"), 2000, f"{bp}/label", plain_only=True)
            errs += _element(block.get("element"), f"{bp}/element")
            if "hint" in block:
                errs += _text_object(block["hint"], 2000, f"{bp}/hint", plain_only=True)
        elif kind == "markdown":
            errs += _too_long(block.get("text"), 12_000, f"{bp}/text")
        elif kind == "image":
            errs += _too_long(block.get("image_url"), 3000, f"{bp}/image_url")
            errs += _too_long(block.get("alt_text"), 2000, f"{bp}/alt_text")
    return errs


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


def _maybe_json(value: Any) -> Any:
    """Form-encoded calls carry blocks/view/files as JSON strings; JSON calls carry objects."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


class _ApiError(Exception):
    """Raised inside a method to answer ``{"ok": false, "error": ...}`` (HTTP 200)."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


@dataclass
class _Fault:
    status: int
    retry_after: int | None
    error: str | None
    remaining: int


@dataclass
class _Trigger:
    issued: float
    view_id: str | None
    used: bool = False


@dataclass
class _ResponseUrl:
    url: str
    created: float
    channel: str
    user: str
    message_ts: str | None
    uses: int = 0
    posted_ts: list[str] = field(default_factory=list)
    ephemeral_ts: list[str] = field(default_factory=list)
    """Ephemeral messages this URL posted: a later replace/delete_original acts on the last one
    (how Slack treats a slash command's response_url)."""


# ---------------------------------------------------------------------------------------------
# The fake
# ---------------------------------------------------------------------------------------------
class FakeSlack(FakeHTTPServer):
    """Fake Slack workspace with one installed bot; see the module docstring.

    Constructor knobs model the workspace: ``token`` (the only valid bot token), ``scopes``,
    ``channels`` (``None`` accepts any well-formed C/G/D id; a collection restricts posting to
    those plus opened DMs), and ``long_text`` (``"truncate"`` like Slack, or ``"error"`` for
    ``msg_too_long``). ``reset()`` clears runtime state but keeps this configuration, users and
    user groups.
    """

    def __init__(
        self,
        *,
        token: str = "xoxb-fake-bot-token",
        scopes: Iterable[str] = DEFAULT_SCOPES,
        team_id: str = "T0FAKE",
        team_name: str = "Fake Workspace",
        team_domain: str = "fake-workspace",
        app_id: str = "A0FAKE",
        bot_user_id: str = "U0BOT",
        bot_id: str = "B0BOT",
        bot_name: str = "modelarium",
        verification_token: str = "fake-verification-token",
        channels: Iterable[str] | None = None,
        long_text: str = "truncate",
        host: str = "127.0.0.1",
    ) -> None:
        super().__init__(host=host)
        if long_text not in ("truncate", "error"):
            raise ValueError("long_text must be 'truncate' or 'error'")
        self.token = token
        self.tokens: set[str] = {token}
        self.app_token = "xapp-1-A0FAKE-1-fakeapptoken"
        self.socket_mode: SocketModeServer | None = None  # set by enable_socket_mode()
        self.scopes: list[str] = list(scopes)
        self.team_id = team_id
        self.team_name = team_name
        self.team_domain = team_domain
        self.app_id = app_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.bot_name = bot_name
        self.verification_token = verification_token
        self.long_text = long_text
        self.known_channels: set[str] | None = set(channels) if channels is not None else None
        self._users: dict[str, dict[str, Any]] = {}
        self._usergroups: dict[str, list[str]] = {}
        self._time_offset = 0.0
        self._ids = itertools.count(1)
        self.add_user(bot_user_id, bot_name, real_name=bot_name, is_bot=True)
        self._init_state()

    def _init_state(self) -> None:
        self._calls: list[Call] = []
        self._messages: dict[str, list[Message]] = {}
        self._ephemerals: list[Ephemeral] = []
        self._responses: list[ResponsePost] = []
        self._response_urls: dict[str, _ResponseUrl] = {}
        self._triggers: dict[str, _Trigger] = {}
        self._views: dict[str, dict[str, Any]] = {}
        self._stacks: dict[str, list[str]] = {}
        self._home: dict[str, str] = {}
        self._files: dict[str, UploadedFile] = {}
        self._uploads: dict[str, str] = {}  # upload path token -> file id
        self._dms: dict[str, str] = {}  # "U1" or "U1,U2" -> channel id
        self._faults: dict[str, list[_Fault]] = {}
        self._last_ts = 0

    # -- configuration helpers ----------------------------------------------------------------
    @property
    def api_url(self) -> str:
        """``base_url`` for ``WebClient``: ``http://127.0.0.1:PORT/api/``."""
        return f"{self.url}/api/"

    def add_user(
        self,
        user_id: str,
        name: str | None = None,
        *,
        real_name: str | None = None,
        display_name: str | None = None,
        email: str | None = None,
        tz: str = "Europe/Berlin",
        tz_offset: int = 3600,
        is_admin: bool = False,
        is_owner: bool = False,
        is_bot: bool = False,
        deleted: bool = False,
    ) -> dict[str, Any]:
        """Register a workspace member for users.info / conversations.open; returns the object."""
        name = name or user_id.lower()
        user = {
            "id": user_id,
            "team_id": self.team_id,
            "name": name,
            "deleted": deleted,
            "real_name": real_name or name,
            "tz": tz,
            "tz_label": tz,
            "tz_offset": tz_offset,
            "is_admin": is_admin,
            "is_owner": is_owner,
            "is_primary_owner": False,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "is_bot": is_bot,
            "is_app_user": False,
            "updated": 1_700_000_000,
            "profile": {
                "real_name": real_name or name,
                "real_name_normalized": real_name or name,
                "display_name": display_name if display_name is not None else name,
                "display_name_normalized": display_name if display_name is not None else name,
                **({"email": email} if email else {}),
                "team": self.team_id,
            },
        }
        with self._lock:
            self._users[user_id] = user
        return copy.deepcopy(user)

    def set_usergroup(self, usergroup_id: str, users: Iterable[str]) -> None:
        """Define (or redefine) a user group's members for usergroups.users.list."""
        with self._lock:
            self._usergroups[usergroup_id] = list(users)

    def add_channel(self, channel_id: str) -> None:
        """Allow posting to ``channel_id`` when the fake was built with a fixed channel list."""
        with self._lock:
            if self.known_channels is not None:
                self.known_channels.add(channel_id)

    def now(self) -> float:
        """The fake's clock: wall time plus :meth:`advance_time` offsets."""
        return time.time() + self._time_offset

    def advance_time(self, seconds: float) -> None:
        """Move the fake's clock forward to expire triggers/response_urls without sleeping."""
        with self._lock:
            self._time_offset += seconds

    def fail_next(
        self,
        method: str,
        status: int = 429,
        retry_after: int | None = 1,
        count: int = 1,
        error: str | None = None,
    ) -> None:
        """Make the next ``count`` calls of ``method`` fail.

        ``method`` is a Web API method, ``"*"`` for any, ``"response_url"`` or ``"upload"``.
        429 answers ``ratelimited`` with ``Retry-After``; 5xx answers an error body; ``status=200``
        with ``error="..."`` answers a plain Slack error (e.g. ``channel_not_found``).
        """
        with self._lock:
            self._faults.setdefault(method, []).append(
                _Fault(status, retry_after if status == 429 else None, error, count)
            )

    def reset(self) -> None:
        """Forget calls, messages, views, files, URLs, triggers and faults (keep configuration)."""
        with self._lock:
            self._init_state()
            self.clear_requests()

    # -- ids issued to tests ------------------------------------------------------------------
    def new_trigger_id(self, view_id: str | None = None) -> str:
        """A fresh trigger id (valid once, for 3 s); ``view_id`` ties it to a modal for push."""
        trigger = f"{next(self._ids)}.{int(self.now())}.{secrets.token_hex(16)}"
        with self._lock:
            self._triggers[trigger] = _Trigger(issued=self.now(), view_id=view_id)
        return trigger

    def new_response_url(
        self,
        channel: str = "C0GENERAL",
        user: str = "U0USER",
        *,
        message_ts: str | None = None,
        kind: str = "commands",
    ) -> str:
        """A response_url on the fake (5 uses / 30 min); ``message_ts`` is the "original"."""
        url = f"{self.url}/hooks/{kind}/{self.team_id}/{next(self._ids)}/{secrets.token_hex(12)}"
        with self._lock:
            self._response_urls[urlsplit(url).path] = _ResponseUrl(
                url=url, created=self.now(), channel=channel, user=user, message_ts=message_ts
            )
        return url

    # -- inspection ---------------------------------------------------------------------------
    def calls(self, method: str | None = None) -> list[Call]:
        """Web API calls so far (oldest first), optionally only one method."""
        with self._lock:
            return [c for c in self._calls if method is None or c.method == method]

    def messages(self, channel: str, *, include_deleted: bool = False) -> list[Message]:
        """Copies of the channel's messages (oldest first) in their current, edited state."""
        with self._lock:
            return [
                copy.deepcopy(m)
                for m in self._messages.get(channel, [])
                if include_deleted or not m.deleted
            ]

    def message(self, channel: str, ts: str) -> Message | None:
        """One message (even if deleted), or ``None``."""
        with self._lock:
            found = self._find_message(channel, ts)
            return copy.deepcopy(found) if found else None

    def ephemerals(self, channel: str | None = None, user: str | None = None) -> list[Ephemeral]:
        """Ephemeral messages shown so far, optionally filtered."""
        with self._lock:
            return [
                copy.deepcopy(e)
                for e in self._ephemerals
                if (channel is None or e.channel == channel)
                and (user is None or e.user == user)
                and not e.deleted
            ]

    def responses(self, url: str | None = None) -> list[ResponsePost]:
        """POSTs received on response_urls (accepted or not), optionally for one URL."""
        with self._lock:
            return [r for r in self._responses if url is None or r.url == url]

    def views(self, type: str | None = None) -> list[dict[str, Any]]:
        """Current state of every view opened/pushed/updated/published, optionally by type."""
        with self._lock:
            return [
                copy.deepcopy(v) for v in self._views.values() if type is None or v["type"] == type
            ]

    def view(self, view_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._views.get(view_id)
            return copy.deepcopy(found) if found else None

    def home_view(self, user_id: str) -> dict[str, Any] | None:
        """The Home tab currently published for ``user_id``."""
        with self._lock:
            vid = self._home.get(user_id)
            return copy.deepcopy(self._views[vid]) if vid else None

    def files(self) -> list[UploadedFile]:
        with self._lock:
            return [copy.deepcopy(f) for f in self._files.values()]

    def file(self, file_id: str) -> UploadedFile | None:
        with self._lock:
            found = self._files.get(file_id)
            return copy.deepcopy(found) if found else None

    def wait_for(
        self, predicate: Callable[[], T], timeout: float = 5.0, interval: float = 0.02
    ) -> T:
        """Poll ``predicate`` until it returns something truthy (for work done after ``ack()``)."""
        deadline = time.monotonic() + timeout
        while True:
            result = predicate()
            if result:
                return result
            if time.monotonic() >= deadline:
                raise AssertionError(f"condition not met within {timeout}s: {predicate!r}")
            time.sleep(interval)

    # -- builders: Slack calling the app -------------------------------------------------------
    def slash_command(
        self,
        command: str = "/model",
        text: str = "",
        *,
        user_id: str = "U0USER",
        user_name: str = "alice",
        channel_id: str = "C0GENERAL",
        channel_name: str = "general",
        enterprise_id: str | None = None,
        enterprise_name: str | None = None,
    ) -> SlackInbound:
        """The form body of a slash command, with a fresh response_url and trigger_id."""
        response_url = self.new_response_url(channel_id, user_id, kind="commands")
        trigger_id = self.new_trigger_id()
        fields = {"token": self.verification_token, "team_id": self.team_id}
        fields["team_domain"] = self.team_domain
        if enterprise_id:
            fields["enterprise_id"] = enterprise_id
            fields["enterprise_name"] = enterprise_name or "Enterprise"
        fields.update(
            {
                "channel_id": channel_id,
                "channel_name": channel_name,
                "user_id": user_id,
                "user_name": user_name,
                "command": command,
                "text": text,
                "api_app_id": self.app_id,
                "is_enterprise_install": "false",
                "response_url": response_url,
                "trigger_id": trigger_id,
            }
        )
        return SlackInbound(
            body=urlencode(fields).encode(),
            content_type="application/x-www-form-urlencoded",
            fields=fields,
            response_url=response_url,
            trigger_id=trigger_id,
        )

    def _user_obj(self, user_id: str) -> dict[str, Any]:
        name = self._users.get(user_id, {}).get("name", user_id.lower())
        return {"id": user_id, "username": name, "name": name, "team_id": self.team_id}

    def _team_obj(self) -> dict[str, Any]:
        return {"id": self.team_id, "domain": self.team_domain}

    def _interaction(self, payload: dict[str, Any], **extra: Any) -> SlackInbound:
        fields = {"payload": json.dumps(payload)}
        return SlackInbound(
            body=urlencode(fields).encode(),
            content_type="application/x-www-form-urlencoded",
            fields=fields,
            payload=payload,
            **extra,
        )

    def block_actions(
        self,
        action_id: str,
        *,
        value: str | None = None,
        channel_id: str | None = None,
        message_ts: str | None = None,
        view_id: str | None = None,
        user_id: str = "U0USER",
        action: Mapping[str, Any] | None = None,
        state_values: Mapping[str, Any] | None = None,
    ) -> SlackInbound:
        """A block_actions payload: a user clicking ``action_id``.

        The element (type, block_id, value, text) is looked up in a stored message (``message_ts``,
        else the newest message in ``channel_id``/any channel containing ``action_id``) or, with
        ``view_id``, in that view. ``value``/``action`` override what was found.
        """
        with self._lock:
            view: dict[str, Any] | None = None
            msg: Message | None = None
            if view_id is not None:
                view = copy.deepcopy(self._views[view_id])
                element = _find_element(view.get("blocks") or [], action_id)
            else:
                msg, element = self._find_action_message(action_id, channel_id, message_ts)
        found = dict(element or {"type": "button", "block_id": "b1"})
        act: dict[str, Any] = {
            "type": found.get("type", "button"),
            "action_id": action_id,
            "block_id": found.get("block_id", "b1"),
            "action_ts": f"{self.now():.6f}",
        }
        if "text" in found:
            act["text"] = found["text"]
        if value is not None or "value" in found:
            act["value"] = value if value is not None else found["value"]
        act.update(action or {})
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": self._user_obj(user_id),
            "api_app_id": self.app_id,
            "token": self.verification_token,
            "team": self._team_obj(),
            "enterprise": None,
            "is_enterprise_install": False,
            "state": {"values": dict(state_values or {})},
            "actions": [act],
        }
        response_url = None
        if view is not None:
            payload["container"] = {"type": "view", "view_id": view["id"]}
            payload["view"] = view
            trigger_id = self.new_trigger_id(view_id=view["id"])
        else:
            if msg is None:
                raise LookupError(f"no stored message with action_id {action_id!r}")
            response_url = self.new_response_url(
                msg.channel, user_id, message_ts=msg.ts, kind="actions"
            )
            trigger_id = self.new_trigger_id()
            payload["container"] = {
                "type": "message",
                "message_ts": msg.ts,
                "channel_id": msg.channel,
                "is_ephemeral": False,
            }
            payload["channel"] = {"id": msg.channel, "name": msg.channel.lower()}
            payload["message"] = msg.as_slack()
            payload["response_url"] = response_url
        payload["trigger_id"] = trigger_id
        return self._interaction(payload, response_url=response_url, trigger_id=trigger_id)

    def view_submission(
        self,
        view_id: str | None = None,
        *,
        values: Mapping[str, Mapping[str, Any]] | None = None,
        user_id: str = "U0USER",
        response_urls: list[dict[str, Any]] | None = None,
    ) -> SlackInbound:
        """A view_submission payload for a stored modal (default: the newest one).

        ``values`` is ``{block_id: {action_id: value}}``; plain values are wrapped by the input's
        element type (``value`` / ``selected_option`` / ``selected_options`` / ``selected_*``).
        """
        with self._lock:
            if view_id is None:
                modals = [v for v in self._views.values() if v["type"] == "modal"]
                if not modals:
                    raise LookupError("no modal has been opened")
                view_id = modals[-1]["id"]
            view = copy.deepcopy(self._views[view_id])
        state: dict[str, dict[str, Any]] = {}
        for block_id, actions in (values or {}).items():
            for action_id, raw in actions.items():
                element = _find_element(view.get("blocks") or [], action_id, block_id) or {}
                state.setdefault(block_id, {})[action_id] = _state_value(
                    element.get("type", "plain_text_input"), raw
                )
        view["state"] = {"values": state}
        trigger_id = self.new_trigger_id(view_id=view_id)
        payload = {
            "type": "view_submission",
            "team": self._team_obj(),
            "user": self._user_obj(user_id),
            "api_app_id": self.app_id,
            "token": self.verification_token,
            "trigger_id": trigger_id,
            "view": view,
            "response_urls": list(response_urls or []),
            "is_enterprise_install": False,
            "enterprise": None,
        }
        return self._interaction(payload, trigger_id=trigger_id)

    def event(self, event: Mapping[str, Any]) -> SlackInbound:
        """An Events API ``event_callback`` envelope (JSON body) around ``event``."""
        now = self.now()
        body_obj = {
            "token": self.verification_token,
            "team_id": self.team_id,
            "api_app_id": self.app_id,
            "event": {"event_ts": f"{now:.6f}", **event},
            "type": "event_callback",
            "event_id": f"Ev{next(self._ids):08X}",
            "event_time": int(now),
            "authorizations": [
                {"team_id": self.team_id, "user_id": self.bot_user_id, "is_bot": True}
            ],
            "is_ext_shared_channel": False,
        }
        return SlackInbound(
            body=json.dumps(body_obj).encode(),
            content_type="application/json",
            payload=body_obj,
        )

    # -- Socket Mode --------------------------------------------------------------------------
    def enable_socket_mode(self, **options: Any) -> SocketModeServer:
        """Start the WebSocket side (``options`` go to :class:`SocketModeServer`);
        ``apps.connections.open`` then hands out its URLs."""
        if self.socket_mode is None:
            self.socket_mode = SocketModeServer(self.host, **options).start()
        return self.socket_mode

    def stop(self) -> None:
        if self.socket_mode is not None:
            self.socket_mode.stop()
        super().stop()

    def _apps_connections_open(self, token: str) -> dict[str, Any]:
        # Only an app-level token may open a connection; bot tokens are the wrong type.
        if token != self.app_token:
            error = "not_allowed_token_type" if token in self.tokens else "invalid_auth"
            return {"ok": False, "error": error}
        if self.socket_mode is None:
            return {"ok": False, "error": "socket_mode_not_enabled"}
        return {"ok": True, "url": self.socket_mode.issue_url()}

    # -- HTTP dispatch ------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        route = request.route
        with self._lock:
            if route.startswith("/api/"):
                return self._web_api(route[len("/api/") :], request)
            if route.startswith("/hooks/"):
                return self._response_url_post(route, request)
            if route.startswith("/upload/v1/"):
                return self._upload(route[len("/upload/v1/") :], request)
        return Response.json({"ok": False, "error": "not_found"}, status=404)

    def _take_fault(self, key: str) -> _Fault | None:
        for name in (key, "*"):
            queue = self._faults.get(name)
            if queue:
                fault = queue[0]
                fault.remaining -= 1
                if fault.remaining <= 0:
                    queue.pop(0)
                return fault
        return None

    @staticmethod
    def _fault_response(fault: _Fault) -> tuple[int, dict[str, Any], dict[str, str]]:
        headers: dict[str, str] = {}
        if fault.status == 429:
            if fault.retry_after is not None:
                headers["Retry-After"] = str(fault.retry_after)
            return 429, {"ok": False, "error": fault.error or "ratelimited"}, headers
        if fault.status >= 500:
            return fault.status, {"ok": False, "error": fault.error or "internal_error"}, headers
        return fault.status, {"ok": False, "error": fault.error or "fatal_error"}, headers

    @staticmethod
    def _params(request: Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(parse_qsl(urlsplit(request.path).query, True))
        body = request.body
        ctype = request.headers.get("content-type", "").lower()
        if body.strip():
            if "json" in ctype or body.lstrip().startswith(b"{"):
                decoded = json.loads(body)
                if isinstance(decoded, dict):
                    params.update(decoded)
            else:
                params.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        return params

    def _web_api(self, method: str, request: Request) -> Response:
        headers: dict[str, str] = {}
        try:
            params = self._params(request)
        except ValueError:
            params = {}
            status, body = 200, {"ok": False, "error": "invalid_json"}
        else:
            status, body, headers = self._api_result(method, params, request)
        self._calls.append(
            Call(
                method=method,
                params=params,
                headers=request.headers,
                timestamp=self.now(),
                http_method=request.method,
                status=status,
                response=body,
            )
        )
        if method == "auth.test":
            headers["x-oauth-scopes"] = ",".join(self.scopes)
        return Response.json(body, status=status, headers=headers)

    def _api_result(
        self, method: str, params: dict[str, Any], request: Request
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        fault = self._take_fault(method)
        if fault is not None:
            return self._fault_response(fault)
        auth = request.headers.get("authorization", "")
        token = auth[len("Bearer ") :].strip() if auth.startswith("Bearer ") else None
        token = token or params.pop("token", None)
        params.pop("token", None)
        if not token:
            return 200, {"ok": False, "error": "not_authed"}, {}
        if method == "apps.connections.open":
            return 200, self._apps_connections_open(token), {}
        if token == self.app_token:
            return 200, {"ok": False, "error": "not_allowed_token_type"}, {}
        if token not in self.tokens:
            return 200, {"ok": False, "error": "invalid_auth"}, {}
        needed = _METHOD_SCOPES.get(method)
        if needed and needed not in self.scopes:
            body = {
                "ok": False,
                "error": "missing_scope",
                "needed": needed,
                "provided": ",".join(self.scopes),
            }
            return 200, body, {}
        handler = _METHODS.get(method)
        if handler is None:
            return 200, {"ok": False, "error": "unknown_method"}, {}
        try:
            result = handler(self, params)
        except _ApiError as err:
            return 200, {"ok": False, "error": err.error, **err.extra}, {}
        return 200, {"ok": True, **result}, {}

    # -- shared method helpers ----------------------------------------------------------------
    def _next_ts(self) -> str:
        micros = max(int(self.now() * 1_000_000), self._last_ts + 1)
        self._last_ts = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):08X}"

    def _find_message(self, channel: str, ts: str) -> Message | None:
        for msg in self._messages.get(channel, []):
            if msg.ts == ts:
                return msg
        return None

    def _find_action_message(
        self, action_id: str, channel: str | None, ts: str | None
    ) -> tuple[Message | None, dict[str, Any] | None]:
        if channel is not None and ts is not None:
            msg = self._find_message(channel, ts)
            if msg is None:
                return None, None
            return copy.deepcopy(msg), _find_element(msg.blocks or [], action_id)
        candidates = [
            m
            for ch, msgs in self._messages.items()
            if channel is None or ch == channel
            for m in msgs
            if not m.deleted and (ts is None or m.ts == ts)
        ]
        for msg in sorted(candidates, key=lambda m: float(m.ts), reverse=True):
            element = _find_element(msg.blocks or [], action_id)
            if element is not None:
                return copy.deepcopy(msg), element
        return None, None

    def _resolve_channel(self, channel: Any) -> str:
        if not isinstance(channel, str) or not channel:
            raise _ApiError("channel_not_found")
        if _USER_ID.match(channel):
            if channel not in self._users:
                raise _ApiError("channel_not_found")
            return self._dm_for([channel])
        if channel in self._dms.values():
            return channel
        if self.known_channels is None:
            if not _CHANNEL_ID.match(channel):
                raise _ApiError("channel_not_found")
        elif channel not in self.known_channels:
            raise _ApiError("channel_not_found")
        return channel

    def _dm_for(self, users: list[str]) -> str:
        key = ",".join(sorted(users))
        if key not in self._dms:
            if len(users) == 1:
                self._dms[key] = "D" + users[0][1:]
            else:
                self._dms[key] = "G" + hashlib.sha1(key.encode()).hexdigest()[:10].upper()
        return self._dms[key]

    def _content(self, params: dict[str, Any], *, require: bool = True) -> tuple[str, Any]:
        """Validated (text, blocks) of a message call; raises no_text / invalid_blocks."""
        text = params.get("text")
        text = "" if text is None else str(text)
        blocks = _maybe_json(params.get("blocks")) if "blocks" in params else None
        attachments = params.get("attachments")
        if require and not text and not blocks and not attachments:
            raise _ApiError("no_text")
        if blocks is not None:
            errors = validate_blocks(blocks, 50)
            if errors:
                raise _ApiError(
                    "invalid_blocks",
                    errors=errors,
                    response_metadata={"messages": [f"[ERROR] {e}" for e in errors]},
                )
        if len(text) > MAX_TEXT:
            if self.long_text == "error":
                raise _ApiError("msg_too_long")
            text = text[:MAX_TEXT]
        return text, blocks

    # -- Web API methods ----------------------------------------------------------------------
    def _m_auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": f"https://{self.team_domain}.slack.com/",
            "team": self.team_name,
            "user": self.bot_name,
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _m_chat_post_message(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve_channel(params.get("channel"))
        text, blocks = self._content(params)
        msg = Message(
            channel=channel,
            ts=self._next_ts(),
            text=text,
            blocks=blocks,
            thread_ts=params.get("thread_ts") or None,
            user=self.bot_user_id,
            bot_id=self.bot_id,
            metadata=_maybe_json(params.get("metadata")),
        )
        self._messages.setdefault(channel, []).append(msg)
        return {"channel": channel, "ts": msg.ts, "message": msg.as_slack()}

    def _edit(self, msg: Message, text: str | None, blocks: Any, source: str) -> None:
        msg.history.append(
            {"text": msg.text, "blocks": copy.deepcopy(msg.blocks), "edited_ts": msg.edited_ts}
        )
        if text is not None:
            msg.text = text
        if blocks is not None:
            msg.blocks = blocks
        msg.edited_ts = self._next_ts()
        msg.source = source

    def _m_chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve_channel(params.get("channel"))
        ts = params.get("ts")
        if not ts:
            raise _ApiError("message_not_found")
        msg = self._find_message(channel, str(ts))
        if msg is None or msg.deleted:
            raise _ApiError("message_not_found")
        if msg.user != self.bot_user_id:
            raise _ApiError("cant_update_message")
        text, blocks = self._content(params, require=False)
        self._edit(msg, text if "text" in params else None, blocks, "chat.update")
        return {"channel": channel, "ts": msg.ts, "text": msg.text, "message": msg.as_slack()}

    def _m_chat_post_ephemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve_channel(params.get("channel"))
        user = params.get("user")
        if not user or user not in self._users:
            raise _ApiError("user_not_found")
        text, blocks = self._content(params)
        eph = Ephemeral(
            channel=channel,
            user=str(user),
            text=text,
            blocks=blocks,
            ts=self._next_ts(),
            thread_ts=params.get("thread_ts") or None,
        )
        self._ephemerals.append(eph)
        return {"message_ts": eph.ts}

    def _m_chat_delete(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve_channel(params.get("channel"))
        msg = self._find_message(channel, str(params.get("ts")))
        if msg is None or msg.deleted:
            raise _ApiError("message_not_found")
        if msg.user != self.bot_user_id:
            raise _ApiError("cant_delete_message")
        msg.deleted = True
        return {"channel": channel, "ts": msg.ts}

    def _m_conversations_open(self, params: dict[str, Any]) -> dict[str, Any]:
        return_im = _truthy(params.get("return_im"))
        if params.get("channel"):
            channel = str(params["channel"])
            if channel not in self._dms.values():
                raise _ApiError("channel_not_found")
            return {"channel": {"id": channel}, "no_op": True, "already_open": True}
        raw = params.get("users")
        users = raw if isinstance(raw, list) else [u for u in str(raw or "").split(",") if u]
        if not users:
            raise _ApiError("users_list_not_supplied")
        if len(users) > 8:
            raise _ApiError("too_many_users")
        for user in users:
            if user not in self._users:
                raise _ApiError("user_not_found")
        key = ",".join(sorted(users))
        already = key in self._dms
        channel_id = self._dm_for(users)
        out: dict[str, Any] = {}
        if already:
            out.update(no_op=True, already_open=True)
        if return_im and len(users) == 1:
            out["channel"] = {
                "id": channel_id,
                "created": 1_700_000_000,
                "is_im": True,
                "is_org_shared": False,
                "user": users[0],
                "last_read": "0000000000.000000",
                "latest": None,
                "unread_count": 0,
                "unread_count_display": 0,
                "is_open": True,
                "priority": 0,
            }
        else:
            out["channel"] = {"id": channel_id}
        return out

    def _m_users_info(self, params: dict[str, Any]) -> dict[str, Any]:
        user = self._users.get(str(params.get("user")))
        if user is None:
            raise _ApiError("user_not_found")
        user = copy.deepcopy(user)
        if "users:read.email" not in self.scopes:
            user["profile"].pop("email", None)
        if _truthy(params.get("include_locale")):
            user["locale"] = "en-US"
        return {"user": user}

    def _m_usergroups_users_list(self, params: dict[str, Any]) -> dict[str, Any]:
        group = self._usergroups.get(str(params.get("usergroup")))
        if group is None:
            raise _ApiError("no_such_subteam")
        return {"users": list(group)}

    # views --------------------------------------------------------------------------------
    def _check_trigger(self, trigger_id: Any) -> _Trigger:
        trigger = self._triggers.get(str(trigger_id)) if trigger_id else None
        if trigger is None:
            raise _ApiError("invalid_trigger_id")
        if trigger.used:
            raise _ApiError("exchanged_trigger_id")
        if self.now() - trigger.issued > TRIGGER_TTL:
            raise _ApiError("expired_trigger_id")
        trigger.used = True
        return trigger

    def _check_view(self, params: dict[str, Any], allowed: tuple[str, ...]) -> dict[str, Any]:
        raw = params.get("view")
        view = _maybe_json(raw)
        if not isinstance(view, dict):
            raise _ApiError(
                "invalid_arguments",
                response_metadata={"messages": ["[ERROR] missing required field: view"]},
            )
        if len(json.dumps(view)) > MAX_VIEW_BYTES:
            raise _ApiError("view_too_large")
        errors: list[str] = []
        kind = view.get("type")
        if kind not in allowed:
            errors.append(f"must be one of {', '.join(allowed)} [json-pointer:/view/type]")
        if kind == "modal":
            errors += _text_object(view.get("title"), 24, "/view/title", plain_only=True)
            for key in ("submit", "close"):
                if key in view:
                    errors += _text_object(view[key], 24, f"/view/{key}", plain_only=True)
            blocks = view.get("blocks") or []
            has_input = any(isinstance(b, dict) and b.get("type") == "input" for b in blocks)
            if has_input and "submit" not in view:
                errors.append("submit is required when an input block is used [json-pointer:/view]")
        elif kind == "home":
            errors += [
                f"invalid additional property: {key} [json-pointer:/view]"
                for key in ("submit", "close")
                if key in view
            ]
        errors += _too_long(view.get("private_metadata"), 3000, "/view/private_metadata")
        errors += _too_long(view.get("callback_id"), 255, "/view/callback_id")
        errors += _too_long(view.get("external_id"), 255, "/view/external_id")
        errors += validate_blocks(view.get("blocks", []), 100, "/view/blocks")
        if errors:
            raise _ApiError(
                "invalid_arguments",
                response_metadata={"messages": [f"[ERROR] {e}" for e in errors]},
            )
        external_id = view.get("external_id")
        if external_id:
            for other in self._views.values():
                if other.get("external_id") == external_id and other["id"] != view.get("id"):
                    raise _ApiError("duplicate_external_id")
        return view

    def _store_view(
        self,
        view: dict[str, Any],
        *,
        view_id: str | None = None,
        root: str | None = None,
        previous: str | None = None,
    ) -> dict[str, Any]:
        vid = view_id or self._new_id("V")
        stored = {
            "id": vid,
            "team_id": self.team_id,
            "type": view["type"],
            "blocks": copy.deepcopy(view.get("blocks", [])),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "state": {"values": {}},
            "hash": f"{int(self.now())}.{secrets.token_hex(4)}",
            "title": view.get("title"),
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "close": view.get("close"),
            "submit": view.get("submit"),
            "previous_view_id": previous,
            "root_view_id": root or vid,
            "app_id": self.app_id,
            "external_id": view.get("external_id", ""),
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }
        self._views[vid] = stored
        return copy.deepcopy(stored)

    def _m_views_open(self, params: dict[str, Any]) -> dict[str, Any]:
        self._check_trigger(params.get("trigger_id"))
        view = self._check_view(params, ("modal",))
        stored = self._store_view(view)
        self._stacks[stored["id"]] = [stored["id"]]
        return {"view": stored}

    def _m_views_push(self, params: dict[str, Any]) -> dict[str, Any]:
        trigger = self._check_trigger(params.get("trigger_id"))
        view = self._check_view(params, ("modal",))
        if trigger.view_id is not None and trigger.view_id in self._views:
            root = self._views[trigger.view_id]["root_view_id"]
        elif self._stacks:
            root = next(reversed(self._stacks))
        else:
            raise _ApiError("not_found")
        stack = self._stacks.setdefault(root, [root])
        if len(stack) >= MAX_MODAL_STACK:
            raise _ApiError("push_limit_reached")
        stored = self._store_view(view, root=root, previous=stack[-1])
        stack.append(stored["id"])
        return {"view": stored}

    def _m_views_update(self, params: dict[str, Any]) -> dict[str, Any]:
        vid = params.get("view_id")
        if not vid and params.get("external_id"):
            vid = next(
                (
                    v["id"]
                    for v in self._views.values()
                    if v["external_id"] == params["external_id"]
                ),
                None,
            )
        current = self._views.get(str(vid)) if vid else None
        if current is None:
            raise _ApiError("not_found")
        if params.get("hash") and params["hash"] != current["hash"]:
            raise _ApiError("hash_conflict")
        view = self._check_view(params, ("modal", "home"))
        view = {**view, "id": current["id"]}
        stored = self._store_view(
            view,
            view_id=current["id"],
            root=current["root_view_id"],
            previous=current["previous_view_id"],
        )
        return {"view": stored}

    def _m_views_publish(self, params: dict[str, Any]) -> dict[str, Any]:
        user = str(params.get("user_id") or "")
        if user not in self._users:
            raise _ApiError("user_not_found")
        current = self._views.get(self._home.get(user, ""))
        if params.get("hash") and current and params["hash"] != current["hash"]:
            raise _ApiError("hash_conflict")
        view = self._check_view(params, ("home",))
        stored = self._store_view(view, view_id=current["id"] if current else None)
        self._home[user] = stored["id"]
        return {"view": stored}

    # files --------------------------------------------------------------------------------
    def _m_files_get_upload_url_external(self, params: dict[str, Any]) -> dict[str, Any]:
        filename = params.get("filename")
        try:
            length = int(params.get("length", ""))
        except ValueError:
            raise _ApiError("invalid_arguments") from None
        if not filename or length < 0:
            raise _ApiError("invalid_arguments")
        file_id = self._new_id("F")
        token = secrets.token_hex(12)
        self._files[file_id] = UploadedFile(
            id=file_id,
            filename=str(filename),
            length=length,
            alt_txt=params.get("alt_txt"),
            snippet_type=params.get("snippet_type"),
        )
        self._uploads[token] = file_id
        return {"upload_url": f"{self.url}/upload/v1/{token}", "file_id": file_id}

    def _m_files_complete_upload_external(self, params: dict[str, Any]) -> dict[str, Any]:
        entries = _maybe_json(params.get("files"))
        if not isinstance(entries, list) or not entries:
            raise _ApiError("invalid_arguments")
        targets: list[str] = []
        if params.get("channel_id"):
            targets.append(self._resolve_channel(params["channel_id"]))
        for ch in str(params.get("channels") or "").split(","):
            if ch:
                targets.append(self._resolve_channel(ch))
        files: list[UploadedFile] = []
        for entry in entries:
            upload = self._files.get(str(entry.get("id"))) if isinstance(entry, dict) else None
            if upload is None or upload.content is None or upload.completed:
                raise _ApiError("file_not_found")
            files.append(upload)
        out = []
        for upload, entry in zip(files, entries, strict=True):
            upload.completed = True
            upload.title = entry.get("title") or upload.filename
            upload.channels = list(targets)
            upload.initial_comment = params.get("initial_comment")
            upload.thread_ts = params.get("thread_ts")
            out.append(
                {
                    "id": upload.id,
                    "created": int(self.now()),
                    "timestamp": int(self.now()),
                    "name": upload.filename,
                    "title": upload.title,
                    "mimetype": "",
                    "user": self.bot_user_id,
                    "size": len(upload.content or b""),
                    "url_private": f"{self.url}/files-pri/{self.team_id}-{upload.id}/"
                    f"{upload.filename}",
                    "permalink": f"https://{self.team_domain}.slack.com/files/"
                    f"{self.bot_user_id}/{upload.id}/{upload.filename}",
                    "channels": list(targets),
                }
            )
        for channel in targets:  # Slack shares the files as a bot message in each channel
            msg = Message(
                channel=channel,
                ts=self._next_ts(),
                text=str(params.get("initial_comment") or ""),
                thread_ts=params.get("thread_ts") or None,
                user=self.bot_user_id,
                bot_id=self.bot_id,
                files=[f.id for f in files],
                source="files.completeUploadExternal",
            )
            self._messages.setdefault(channel, []).append(msg)
        return {"files": out}

    def _upload(self, token: str, request: Request) -> Response:
        fault = self._take_fault("upload")
        if fault is not None:
            status, body, headers = self._fault_response(fault)
            return Response.json(body, status=status, headers=headers)
        file_id = self._uploads.get(token)
        if request.method != "POST" or file_id is None:
            return Response.text("Not Found", status=404)
        upload = self._files[file_id]
        upload.content = request.body
        return Response.text(f"OK - {len(request.body)}")

    # response_url ------------------------------------------------------------------------
    def _response_url_post(self, route: str, request: Request) -> Response:
        ru = self._response_urls.get(route)
        url = ru.url if ru else f"{self.url}{route}"
        try:
            payload = json.loads(request.body) if request.body.strip() else {}
        except ValueError:
            payload = {"_raw": request.body.decode("utf-8", "replace")}

        def answer(status: int, error: str | None) -> Response:
            self._responses.append(ResponsePost(url, payload, status, error, self.now()))
            body = {"ok": error is None, **({"error": error} if error else {})}
            return Response.json(body, status=status)

        fault = self._take_fault("response_url")
        if fault is not None:
            status, body, headers = self._fault_response(fault)
            self._responses.append(ResponsePost(url, payload, status, body["error"], self.now()))
            return Response.json(body, status=status, headers=headers)
        if ru is None or request.method != "POST":
            return answer(404, "no_service")
        if self.now() - ru.created > RESPONSE_URL_TTL:
            return answer(404, "expired_url")
        if ru.uses >= RESPONSE_URL_MAX_USES:
            return answer(404, "used_url")
        if not isinstance(payload, dict) or "_raw" in payload:
            return answer(400, "invalid_payload")
        ru.uses += 1
        original_ts = ru.message_ts or (ru.posted_ts[-1] if ru.posted_ts else None)
        original = self._find_message(ru.channel, original_ts) if original_ts else None
        own_ephemeral = None
        if original is None and ru.message_ts is None and ru.ephemeral_ts:
            own_ephemeral = next(
                (e for e in self._ephemerals if e.ts == ru.ephemeral_ts[-1] and not e.deleted),
                None,
            )
        if _truthy(payload.get("delete_original")):
            if original is not None:
                original.deleted = True
            elif own_ephemeral is not None:
                own_ephemeral.deleted = True
            return answer(200, None)
        try:
            text, blocks = self._content(payload)
        except _ApiError as err:
            ru.uses -= 1  # Slack does not count rejected payloads
            return answer(400, err.error)
        if _truthy(payload.get("replace_original")) and original is not None:
            self._edit(original, text, blocks, "response_url")
        elif _truthy(payload.get("replace_original")) and own_ephemeral is not None:
            own_ephemeral.history.append(
                {"text": own_ephemeral.text, "blocks": own_ephemeral.blocks}
            )
            own_ephemeral.text, own_ephemeral.blocks = text, blocks
        elif payload.get("response_type") == "in_channel":
            msg = Message(
                channel=ru.channel,
                ts=self._next_ts(),
                text=text,
                blocks=blocks,
                thread_ts=payload.get("thread_ts"),
                user=self.bot_user_id,
                bot_id=self.bot_id,
                source="response_url",
            )
            self._messages.setdefault(ru.channel, []).append(msg)
            ru.posted_ts.append(msg.ts)
        else:
            ephemeral = Ephemeral(
                ru.channel, ru.user, text, blocks, self._next_ts(), source="response_url"
            )
            self._ephemerals.append(ephemeral)
            ru.ephemeral_ts.append(ephemeral.ts)
        return answer(200, None)


def _find_element(
    blocks: list[Any], action_id: str, block_id: str | None = None
) -> dict[str, Any] | None:
    """The interactive element with ``action_id`` (and its block's id) inside ``blocks``."""
    for block in blocks:
        if not isinstance(block, dict):
            continue
        if block_id is not None and block.get("block_id") != block_id:
            continue
        candidates: list[Any] = list(block.get("elements") or [])
        candidates += [block.get("accessory"), block.get("element")]
        for el in candidates:
            if isinstance(el, dict) and el.get("action_id") == action_id:
                return {**el, "block_id": block.get("block_id", "b1")}
    return None


def _option(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    return {"text": {"type": "plain_text", "text": str(value), "emoji": True}, "value": str(value)}


def _state_value(element_type: str, raw: Any) -> dict[str, Any]:
    """Wrap a plain test value the way Slack reports that element type in ``state.values``."""
    if isinstance(raw, dict) and "type" in raw:
        return raw
    if element_type in ("static_select", "external_select", "radio_buttons"):
        return {"type": element_type, "selected_option": _option(raw)}
    if element_type in ("multi_static_select", "multi_external_select", "checkboxes"):
        return {"type": element_type, "selected_options": [_option(v) for v in raw]}
    selected = {
        "users_select": "selected_user",
        "conversations_select": "selected_conversation",
        "channels_select": "selected_channel",
        "datepicker": "selected_date",
        "timepicker": "selected_time",
        "multi_users_select": "selected_users",
        "multi_conversations_select": "selected_conversations",
        "multi_channels_select": "selected_channels",
    }.get(element_type)
    if selected:
        return {"type": element_type, selected: raw}
    return {"type": element_type, "value": None if raw is None else str(raw)}


_METHODS: dict[str, Callable[[FakeSlack, dict[str, Any]], dict[str, Any]]] = {
    "auth.test": FakeSlack._m_auth_test,
    "chat.postMessage": FakeSlack._m_chat_post_message,
    "chat.update": FakeSlack._m_chat_update,
    "chat.postEphemeral": FakeSlack._m_chat_post_ephemeral,
    "chat.delete": FakeSlack._m_chat_delete,
    "conversations.open": FakeSlack._m_conversations_open,
    "users.info": FakeSlack._m_users_info,
    "usergroups.users.list": FakeSlack._m_usergroups_users_list,
    "views.open": FakeSlack._m_views_open,
    "views.push": FakeSlack._m_views_push,
    "views.update": FakeSlack._m_views_update,
    "views.publish": FakeSlack._m_views_publish,
    "files.getUploadURLExternal": FakeSlack._m_files_get_upload_url_external,
    "files.completeUploadExternal": FakeSlack._m_files_complete_upload_external,
}


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    """A running :class:`FakeSlack`; fails the test if the fake itself crashed."""
    with FakeSlack() as fake:
        yield fake
        if fake.errors:
            raise AssertionError(f"FakeSlack handler crashed: {fake.errors!r}")
