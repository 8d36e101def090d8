"""KServe's inference logger into a group's table: CloudEvents parsed, paired, written in batches.

The logger (``spec.predictor.logger``, mode ``all``) posts one CloudEvent per request and one per
response, both with the request's id (``ce-id``) and the time each was sent: binary content mode
(``ce-*`` headers, the body is the payload) as KServe sends them, structured mode
(``application/cloudevents+json``) and batches (``application/cloudevents-batch+json``) as other
senders do. A request and its response become one row: latency is the response's time minus the
request's, tokens come from the OpenAI-compatible response's ``usage``. Whichever arrives first
waits in ``model_group_pending`` (so the two may reach different replicas).

Writes are batched: each HTTP request hands its events to :class:`Ingestor` and waits for the
batch they joined to be committed (a group commit), so a 2xx always means stored, and many
concurrent posts cost one transaction and one ``executemany`` per batch.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import orjson
import sqlalchemy as sa
from prometheus_client import Counter
from sqlalchemy.dialects import postgresql, sqlite

from modelarium.core.db.models.groups import PendingEvent
from modelarium.core.errors import UsageError
from modelarium.core.groups.tables import table
from modelarium.core.logging import get_logger

log = get_logger(__name__)

REQUEST = "org.kubeflow.serving.inference.request"
RESPONSE = "org.kubeflow.serving.inference.response"
TYPES = {REQUEST: "request", RESPONSE: "response"}
STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
MAX_BATCH_EVENTS = 1000
# The context attributes read are specversion, id, type, source and time; the logger's
# extensions (inferenceservicename, namespace, component, endpoint, metadata) are not needed:
# the URL names the group and member.

EVENTS = Counter(
    "modelarium_inference_events_total",
    "Inference logger events accepted at POST /inference/events, by type.",
    ["type"],
)
REJECTED = Counter(
    "modelarium_inference_events_rejected_total",
    "Inference logger posts refused, by reason (malformed, auth, unknown_member, too_large).",
    ["reason"],
)


class MalformedEvent(UsageError):
    """The post is not a CloudEvent of the inference logger's (answered 400, counted)."""


class Outcome(NamedTuple):
    """What a response says: read at parse time, so a queued event holds no JSON tree (thousands
    of queued dicts made the garbage collector the ingest's largest cost)."""

    ok: bool
    prompt_tokens: int | None
    completion_tokens: int | None
    completion: str | None
    error: str | None


class Event(NamedTuple):
    """One CloudEvent (a tuple: one is made per event, at the rate events arrive)."""

    id: str
    kind: str
    """request | response."""
    ts: float | None
    data: Outcome | str | None
    """A response's :class:`Outcome`; a request's prompt text (None while ``raw`` holds it)."""
    raw: bytes | None = None
    """A request's body, parsed only when the payload setting keeps something of it."""

    def prompt(self) -> str | None:
        if self.raw is None:
            return self.data if isinstance(self.data, str) else None
        try:
            return _prompt(_payload(self.raw, "application/json"))
        except MalformedEvent:
            return None


def _time(value: Any) -> float | None:
    """RFC 3339 with up to nanoseconds (Go's time format) -> epoch seconds."""
    if value in (None, ""):
        return None
    try:  # Python 3.11+ reads "Z" and any number of fractional digits itself
        moment = datetime.fromisoformat(str(value))
        if moment.tzinfo is not None:
            return moment.timestamp()
    except ValueError:
        pass
    text = str(value).strip().replace("Z", "+00:00").replace("z", "+00:00")
    if "." in text:
        head, _, rest = text.partition(".")
        digits = rest[: len(rest) - len(rest.lstrip("0123456789"))]
        zone = rest[len(digits) :]
        text = f"{head}.{digits[:6].ljust(6, '0')}{zone}"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise MalformedEvent(f"the event time {str(value)[:40]!r} is not RFC 3339") from None
    if moment.tzinfo is None:
        raise MalformedEvent("the event time has no time zone")
    return moment.timestamp()


def _payload(body: bytes, content_type: str) -> Any:
    if not body:
        return None
    if "json" in content_type or not content_type:
        try:
            return orjson.loads(body)  # ~3x json's speed: one response per request logged
        except orjson.JSONDecodeError:
            try:  # what orjson refuses and json reads (integers beyond 64 bits)
                return json.loads(body)
            except (ValueError, UnicodeDecodeError):
                if "json" in content_type:
                    raise MalformedEvent("the event data is not valid JSON") from None
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _event(
    spec: Any, event_id: Any, type_: Any, source: Any, at: Any, data: Any, raw: bytes | None = None
) -> Event:
    """One validated event from its context attributes (positional: called for every event)."""
    if spec != "1.0":
        raise MalformedEvent(f"specversion must be 1.0, not {str(spec or '')[:10]!r}")
    event_id = str(event_id or "").strip()
    if not event_id or len(event_id) > 255:
        raise MalformedEvent("the event has no id (1-255 characters)")
    if not source:
        raise MalformedEvent("the event has no source")
    kind = TYPES.get(type_)  # type: ignore[arg-type]
    if kind is None:
        raise MalformedEvent(
            f"the event type must be {REQUEST} or {RESPONSE}, not {str(type_)[:60]!r}"
        )
    if kind == "response":
        return Event(event_id, kind, _time(at), _response(data))
    if raw is not None:
        return Event(event_id, kind, _time(at), None, raw)
    return Event(event_id, kind, _time(at), _prompt(data))


def _structured(item: Any) -> Event:
    if not isinstance(item, dict):
        raise MalformedEvent("a structured event is a JSON object")
    if "data_base64" in item:
        try:
            raw = base64.b64decode(str(item["data_base64"]), validate=True)
        except ValueError:
            raise MalformedEvent("data_base64 is not base64") from None
        data = _payload(raw, str(item.get("datacontenttype") or "application/json"))
    else:
        data = item.get("data")
        if isinstance(data, str) and "json" in str(item.get("datacontenttype") or ""):
            data = _payload(data.encode(), "application/json")
    get = item.get
    return _event(get("specversion"), get("id"), get("type"), get("source"), get("time"), data)


def parse(headers: Mapping[str, str], body: bytes) -> list[Event]:
    """The events of one POST (``headers`` with lower-case names)."""
    content_type = (headers.get("content-type") or "").split(";")[0].strip().lower()
    if content_type == STRUCTURED:
        try:
            return [_structured(json.loads(body))]
        except (ValueError, UnicodeDecodeError):
            raise MalformedEvent("the structured event is not valid JSON") from None
    if content_type == BATCH:
        try:
            items = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise MalformedEvent("the event batch is not valid JSON") from None
        if not isinstance(items, list) or not items:
            raise MalformedEvent("an event batch is a non-empty JSON array")
        if len(items) > MAX_BATCH_EVENTS:
            raise MalformedEvent(f"at most {MAX_BATCH_EVENTS} events per batch")
        return [_structured(item) for item in items]
    if "ce-specversion" not in headers:
        raise MalformedEvent(
            "not a CloudEvent: binary mode needs ce-specversion, ce-id, ce-type and ce-source "
            f"headers, structured mode the {STRUCTURED} content type"
        )
    get = headers.get
    args = (get("ce-specversion"), get("ce-id"), get("ce-type"), get("ce-source"), get("ce-time"))
    if args[2] == REQUEST and "json" in content_type:
        # The request's body is the model's input, not the event: it is read only when the
        # payload setting keeps something of it (and the response carries the figures).
        return [_event(*args, None, body)]
    return [_event(*args, _payload(body, content_type))]


# -- what a pair becomes ----------------------------------------------------------------------
def _prompt(data: Any) -> str | None:
    if not isinstance(data, dict):
        return data if isinstance(data, str) else None
    messages = data.get("messages")
    if isinstance(messages, list) and messages:
        last = messages[-1]
        content = last.get("content") if isinstance(last, dict) else None
        return content if isinstance(content, str) else json.dumps(content)[:100_000]
    prompt = data.get("prompt")
    return prompt if isinstance(prompt, str) else None


def _response(data: Any) -> Outcome:
    if not isinstance(data, dict):
        return Outcome(True, None, None, data if isinstance(data, str) else None, None)
    if "error" in data or data.get("object") == "error":
        error = data.get("error") if "error" in data else data.get("message")
        text = error.get("message") if isinstance(error, dict) else error
        return Outcome(False, None, None, None, str(text or "error")[:500])
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    prompt_tokens = usage.get("prompt_tokens")
    completion_tokens = usage.get("completion_tokens")
    completion = None
    choices = data.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        message = choices[0].get("message")
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            completion = message["content"]
        elif isinstance(choices[0].get("text"), str):
            completion = choices[0]["text"]
    return Outcome(
        True,
        prompt_tokens if isinstance(prompt_tokens, int) else None,
        completion_tokens if isinstance(completion_tokens, int) else None,
        completion,
        None,
    )


@dataclass
class _Item:
    group_id: int
    table: str
    member: str
    events: list[Event]
    received: float


class Ingestor:
    """Batches events into group tables; one per process (see module docstring)."""

    def __init__(
        self,
        service: Any,
        *,
        batch_size: int = 2000,
        linger: float = 0.02,
    ) -> None:
        self.service = service
        self.batch_size = batch_size
        self.linger = linger
        self._items: list[_Item] = []
        self._count = 0
        self._lock = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._idle = False
        self._future: Future[int] = Future()
        """Shared by every post of the batch being filled: resolved when it is committed."""

    def submit(self, group: Any, member: str, events: list[Event], received: float) -> Future[int]:
        """Queue the events of one post; the future resolves when they are committed."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the ingestor is closed")
            self._items.append(_Item(group.id, group.table_name, member, events, received))
            future = self._future
            self._count += len(events)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="ingest", daemon=True)
                self._thread.start()
            if self._idle or self._count >= self.batch_size:
                self._lock.notify_all()  # wake the writer only when it waits for work
        return future

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._items and not self._closed:
                    self._idle = True
                    self._lock.wait()
                    self._idle = False
                if not self._items and self._closed:
                    return
                if self._count < self.batch_size and not self._closed:
                    self._lock.wait(self.linger)  # let concurrent posts join the batch
                items, self._items, self._count = self._items, [], 0
                future, self._future = self._future, Future()
            try:
                written = self.write(items)
            except Exception as exc:  # every waiter hears of it; the next batch tries again
                log.warning("groups.ingest_failed", error=type(exc).__name__, items=len(items))
                future.set_exception(exc)
                continue
            future.set_result(written)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify_all()
        if self._thread is not None:
            self._thread.join(10)

    # -- one batch, one transaction --------------------------------------------------------
    def write(self, items: list[_Item]) -> int:
        by_group: dict[int, list[tuple[_Item, Event]]] = {}
        tables: dict[int, str] = {}
        for item in items:
            tables[item.group_id] = item.table
            by_group.setdefault(item.group_id, []).extend((item, e) for e in item.events)
        written = 0
        engine = self.service.kernel.db.engine
        with engine.begin() as connection:
            for group_id, pairs in by_group.items():
                written += self._write_group(connection, group_id, tables[group_id], pairs)
        return written

    def _write_group(
        self,
        connection: sa.Connection,
        group_id: int,
        table_name: str,
        pairs: list[tuple[_Item, Event]],
    ) -> int:
        payloads = self.service.payloads
        keep = self.service.settings.group_payloads
        requests: dict[str, _Request] = {}
        responses: dict[str, _Response] = {}
        for item, event in pairs:
            if event.kind == "request":
                requests[event.id] = _request(item, event, payloads, keep)
            else:
                responses[event.id] = _response_half(item, event, payloads)
        # Partners from earlier batches: only for halves whose partner is not here (most pairs
        # arrive close together and meet in one batch).
        lonely = sorted(requests.keys() ^ responses.keys())
        from_db: set[str] = set()
        for chunk in range(0, len(lonely), 500):
            part = lonely[chunk : chunk + 500]
            for row in connection.execute(
                sa.select(PendingEvent).where(
                    PendingEvent.group_id == group_id, PendingEvent.event_id.in_(part)
                )
            ).mappings():
                event_id, data = row["event_id"], row["data"] or {}
                if row["kind"] == "request" and event_id not in requests:
                    requests[event_id] = _Request(row["member"], row["ts"], data.get("prompt"))
                elif row["kind"] == "response" and event_id not in responses:
                    responses[event_id] = _Response(
                        row["member"],
                        row["ts"],
                        data.get("ok", True),
                        data.get("prompt_tokens"),
                        data.get("completion_tokens"),
                        data.get("completion"),
                        data.get("error"),
                    )
                else:
                    continue
                from_db.add(event_id)
        rows: list[tuple[Any, ...]] = []
        waiting: list[dict[str, Any]] = []
        done: list[str] = []
        for event_id, request in requests.items():
            response = responses.get(event_id)
            if response is None:
                waiting.append(_pending(group_id, event_id, "request", request))
                continue
            rows.append(_row(event_id, request, response))
            if event_id in from_db:
                done.append(event_id)
        for event_id, response in responses.items():
            if event_id not in requests:
                waiting.append(_pending(group_id, event_id, "response", response))
        if waiting:
            insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
            connection.execute(insert(PendingEvent).on_conflict_do_nothing(), waiting)
        for chunk in range(0, len(done), 500):
            connection.execute(
                sa.delete(PendingEvent).where(
                    PendingEvent.group_id == group_id,
                    PendingEvent.event_id.in_(done[chunk : chunk + 500]),
                )
            )
        if rows:
            insert_rows(connection, table(table_name), rows)
        return len(rows)


class _Request(NamedTuple):
    member: str
    ts: float
    prompt: str | None


class _Response(NamedTuple):
    member: str
    ts: float
    ok: bool
    prompt_tokens: int | None
    completion_tokens: int | None
    completion: str | None
    error: str | None


def _request(item: _Item, event: Event, payloads: Any, keep: str) -> _Request:
    ts = event.ts if event.ts is not None else item.received
    if keep == "off":
        return _Request(item.member, ts, None)
    prompt, _ = payloads(event.prompt(), None)
    return _Request(item.member, ts, prompt)


def _response_half(item: _Item, event: Event, payloads: Any) -> _Response:
    ts = event.ts if event.ts is not None else item.received
    outcome = event.data if isinstance(event.data, Outcome) else _response(None)
    completion = outcome.completion
    if completion is not None:
        _, completion = payloads(None, completion)
    return _Response(
        item.member,
        ts,
        outcome.ok,
        outcome.prompt_tokens,
        outcome.completion_tokens,
        completion,
        outcome.error,
    )


def _pending(group_id: int, event_id: str, kind: str, half: _Request | _Response) -> dict[str, Any]:
    data = half._asdict()
    del data["member"], data["ts"]
    return {
        "group_id": group_id,
        "event_id": event_id,
        "kind": kind,
        "member": half.member,
        "ts": half.ts,
        "data": data,
    }


COLUMNS = (
    "ts",
    "member",
    "source",
    "ok",
    "status",
    "latency_ms",
    "prompt_tokens",
    "completion_tokens",
    "request_id",
    "error",
    "prompt",
    "completion",
)


def insert_rows(connection: sa.Connection, target: sa.Table, rows: list[tuple[Any, ...]]) -> None:
    """Rows (tuples in ``COLUMNS`` order) into a group table: PostgreSQL's COPY (one stream, no
    per-row round trip; the table name is derived from the group id, never from input),
    elsewhere an executemany."""
    if connection.dialect.name != "postgresql":
        connection.execute(target.insert(), [dict(zip(COLUMNS, row, strict=True)) for row in rows])
        return
    raw = connection.connection.driver_connection
    assert raw is not None
    columns = ", ".join(COLUMNS)
    with raw.cursor() as cursor, cursor.copy(f"COPY {target.name} ({columns}) FROM STDIN") as copy:
        write = copy.write_row
        for row in rows:
            write(row)


def _row(event_id: str, request: _Request, response: _Response) -> tuple[Any, ...]:
    """One group-table row, in ``COLUMNS`` order."""
    ts = float(request.ts)
    return (
        ts,
        request.member,
        "logger",
        bool(response.ok),
        None,
        max(0.0, (float(response.ts) - ts) * 1000.0),
        response.prompt_tokens,
        response.completion_tokens,
        event_id,
        response.error,
        request.prompt,
        response.completion,
    )
