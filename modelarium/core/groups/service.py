"""``core.groups``: model groups, their members and traffic, inference records and comparisons.

Creating a group creates its inference table in the same transaction; deleting it (a change)
drops the table. Members are ``<endpoint>/<model>`` of registered endpoints (strategy ``split``).
Traffic, promotion, rollback and deletion go through the change engine (:mod:`.changes`); this
service holds what they share: reading and writing a group, its history, the comparison.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import random
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

import sqlalchemy as sa
from sqlalchemy.orm import Session

from modelarium.core.db.models.groups import GroupEvent, GroupMember, ModelGroup, PendingEvent
from modelarium.core.errors import ConflictError, NotFoundError, UsageError
from modelarium.core.groups import stats, tables
from modelarium.core.groups.views import (
    STRATEGIES,
    GroupView,
    MemberView,
    Rules,
    check_member,
    check_name,
    check_overrides,
    member_name,
    split_member,
)
from modelarium.core.kernel import Kernel
from modelarium.core.ports import LOGGER_TOKEN_MASK, Ports

EVENTS_PATH = "/inference/events"
log = logging.getLogger(__name__)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class PickResult:
    group: str
    member: MemberView
    reason: str
    candidates: tuple[dict[str, Any], ...]
    url: str | None = None
    """A canary member's own revision URL (KServe tag routing); None for split members."""

    def to_json(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "member": self.member.name,
            "role": self.member.role,
            "endpoint": self.member.endpoint if self.url is None else None,
            "model": self.member.model if self.url is None else None,
            "url": self.url,
            "reason": self.reason,
            "candidates": list(self.candidates),
        }


@dataclass(frozen=True)
class HistoryEntry:
    at: Any
    action: str
    user: str | None
    change_id: int | None
    detail: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "action": self.action,
            "user": self.user,
            "change": self.change_id,
            "detail": self.detail,
        }


def _view(row: ModelGroup, members: Iterable[GroupMember], settings: Any) -> GroupView:
    order = {"champion": 0, "challenger": 1, "retired": 2}
    return GroupView(
        id=row.id,
        name=row.name,
        strategy=row.strategy,
        status=row.status,
        rules=Rules.of(settings, row.rules),
        overrides=dict(row.rules or {}),
        table_name=row.table_name,
        deployment=row.deployment,
        revision=row.revision,
        created_by=row.created_by,
        created_at=row.created_at,
        members=tuple(
            MemberView(m.name, m.role, m.traffic)
            for m in sorted(members, key=lambda m: (order.get(m.role, 3), m.id))
        ),
    )


class GroupService:
    def __init__(
        self, kernel: Kernel, ports: Ports, *, rng: Callable[[], float] | None = None
    ) -> None:
        self.kernel = kernel
        self.ports = ports
        self._db = kernel.db
        self._clock = kernel.clock
        self._random = rng or random.random

    @property
    def settings(self) -> Any:
        return self.kernel.settings

    # -- reading ---------------------------------------------------------------------------
    def _load(self, session: Session, name: str) -> tuple[ModelGroup, list[GroupMember]]:
        row = session.scalar(sa.select(ModelGroup).where(ModelGroup.name == name.strip().lower()))
        if row is None:
            raise NotFoundError(f"no group named {name[:70]!r}; see `groups`")
        members = list(
            session.scalars(sa.select(GroupMember).where(GroupMember.group_id == row.id))
        )
        return row, members

    def exists(self, name: str) -> bool:
        with self._db.transaction() as session:
            query = sa.select(ModelGroup.id).where(ModelGroup.name == name.strip().lower())
            return session.scalar(query) is not None

    def get(self, name: str) -> GroupView:
        with self._db.transaction() as session:
            row, members = self._load(session, name)
            return _view(row, members, self.settings)

    def list(self) -> list[GroupView]:
        with self._db.transaction() as session:
            rows = list(session.scalars(sa.select(ModelGroup).order_by(ModelGroup.name)))
            members: dict[int, list[GroupMember]] = {}
            for m in session.scalars(sa.select(GroupMember)):
                members.setdefault(m.group_id, []).append(m)
            return [_view(r, members.get(r.id, []), self.settings) for r in rows]

    def history(self, name: str, limit: int = 20) -> list[HistoryEntry]:
        with self._db.transaction() as session:
            row, _ = self._load(session, name)
            events = session.scalars(
                sa.select(GroupEvent)
                .where(GroupEvent.group_id == row.id)
                .order_by(GroupEvent.id.desc())
                .limit(limit)
            ).all()
            return [
                HistoryEntry(e.at, e.action, e.user, e.change_id, dict(e.detail or {}))
                for e in reversed(events)
            ]

    def token(self, name: str) -> str:
        with self._db.transaction() as session:
            row, _ = self._load(session, name)
            return self.kernel.keyring.decrypt(row.token)

    def live(self, group: GroupView) -> dict[str, Any] | None:
        """A canary group's split as KServe reports it now (None for split groups)."""
        if group.strategy != "canary" or not group.deployment:
            return None
        return dict(self.ports.deployment_canary.live(group.deployment))

    def detachable(self, group: GroupView) -> bool:
        """Whether deleting this canary group can take its logger off the InferenceService: its
        spec serves all the traffic (no ``canaryTrafficPercent``). With a split in place (even
        at 0% after a rollback) the revision that serves is an earlier one, which a new spec
        would not change."""
        if group.strategy != "canary" or not group.deployment:
            return False
        try:
            manifest, _ = self.ports.deployment_canary.current(group.deployment)
        except NotFoundError:
            return False
        return self.ports.deployment_canary.percent(manifest) is None

    def logger_url(self, group: GroupView, member: str, *, reveal: bool = False) -> str | None:
        """Where KServe's logger posts this member's events (None without MODELARIUM_PUBLIC_URL).

        The token is :data:`LOGGER_TOKEN_MASK` unless ``reveal``: specs keep the mask, and the
        deployments capability asks :meth:`reveal_logger_url` for the real URL as it applies."""
        base = self.settings.public_url
        if not base:
            return None
        token = self.token(group.name) if reveal else LOGGER_TOKEN_MASK
        return (
            f"{self._events_base(base)}/{quote(group.name, safe='')}/"
            f"{quote(member, safe='')}?token={token}"
        )

    @staticmethod
    def _events_base(public_url: str) -> str:
        return f"{public_url.rstrip('/')}{EVENTS_PATH}"

    def reveal_logger_url(self, url: str) -> str:
        """The ``reveal_logger_url`` port: a masked logger URL with its group's token.

        Only a URL under this Modelarium's own events path is filled in (a spec naming another
        host never receives a token); an unknown group leaves the mask, and KServe's posts are
        refused (401) as any unknown token's are."""
        base = self.settings.public_url
        if not base or LOGGER_TOKEN_MASK not in url:
            return url
        prefix = self._events_base(base) + "/"
        if not url.startswith(prefix):
            return url
        group = unquote(url[len(prefix) :].split("/", 1)[0])
        try:
            token = self.token(group)
        except NotFoundError:
            return url
        return url.replace(f"token={LOGGER_TOKEN_MASK}", f"token={token}")

    # -- creating --------------------------------------------------------------------------
    def create(
        self,
        user: str,
        name: str,
        champion: str,
        *,
        strategy: str = "split",
        overrides: dict[str, Any] | None = None,
    ) -> tuple[GroupView, str]:
        """A new group with its champion on 100% of the traffic and its own inference table.
        Returns the group and its logger token (shown once here; ``group show`` shows the URL)."""
        name = check_name(name)
        if strategy not in STRATEGIES:
            raise UsageError(f"strategy is one of {', '.join(STRATEGIES)}, not {strategy[:20]!r}")
        deployment = None
        if strategy == "canary":
            found = self.ports.deployment_canary.find(champion)
            if found["state"] in ("deleted", "missing", "failed", "stopped"):
                raise ConflictError(f"deployment {found['key']} is {found['state']}")
            deployment = found["key"]
            champion = member_name(1, found["repo"], found["commit"])
        else:
            champion = check_member(champion)
            self._check_endpoint(champion, user)
        rules = check_overrides(overrides or {})
        token = secrets.token_urlsafe(24)
        now = self._clock.now()
        with self._db.transaction() as session:
            if session.scalar(sa.select(ModelGroup.id).where(ModelGroup.name == name)):
                raise ConflictError(f"a group named {name!r} exists already")
            row = ModelGroup(
                name=name,
                strategy=strategy,
                status="running",
                rules=rules,
                table_name="pending",
                token_hash=token_hash(token),
                token=self.kernel.keyring.encrypt(token),
                revision=1,
                deployment=deployment,
                created_by=user,
                created_at=now,
                updated_at=now,
            )
            session.add(row)
            session.flush()
            row.table_name = tables.table_name(row.id)
            tables.create(session.connection(), row.table_name)
            member = GroupMember(
                group_id=row.id, name=champion, role="champion", traffic=100, created_at=now
            )
            session.add(member)
            self._history(session, row.id, "create", user, None,
                          {"champion": champion, "strategy": strategy, "rules": rules})  # fmt: skip
            self.kernel.audit.record(
                user, "group.create", target=f"group:{name}",
                params={"champion": champion, "strategy": strategy}, session=session,
            )  # fmt: skip
            session.flush()
            view = _view(row, [member], self.settings)
        return view, token

    def _check_endpoint(self, member: str, user: str) -> None:
        endpoint, _ = member.split("/", 1)
        self.ports.endpoint_resolver(endpoint, user)  # raises when unknown or not visible

    def _history(
        self,
        session: Session,
        group_id: int,
        action: str,
        user: str | None,
        change_id: int | None,
        detail: dict[str, Any],
    ) -> None:
        session.add(
            GroupEvent(
                group_id=group_id,
                at=self._clock.now(),
                action=action,
                user=user,
                change_id=change_id,
                detail=detail,
            )
        )

    # -- what changes run (called by the change kinds' stages) -----------------------------
    def apply_members(
        self,
        name: str,
        members: list[dict[str, Any]],
        *,
        revision: int,
        status: str,
        action: str,
        user: str | None,
        change_id: int | None,
        detail: dict[str, Any] | None = None,
    ) -> GroupView:
        """Set the group's members (name, role, traffic) as a change planned them; refuses if
        the group moved since (its revision). Idempotent: a resumed job finds it done."""
        now = self._clock.now()
        with self._db.transaction() as session:
            row, current = self._load(session, name)
            done = session.scalar(
                sa.select(GroupEvent.id).where(
                    GroupEvent.group_id == row.id, GroupEvent.change_id == change_id,
                    GroupEvent.action == action,
                )
            ) if change_id is not None else None  # fmt: skip
            if done is not None:
                return _view(row, current, self.settings)
            if row.revision != revision:
                raise ConflictError(
                    f"group {row.name} changed since this was planned (revision {revision} -> "
                    f"{row.revision}); propose it again"
                )
            by_name = {m.name: m for m in current}
            for spec in members:
                member = by_name.get(spec["name"])
                if member is None:
                    member = GroupMember(group_id=row.id, name=spec["name"], created_at=now)
                    session.add(member)
                    current.append(member)
                member.role = spec["role"]
                member.traffic = int(spec["traffic"])
            row.status = status
            row.revision += 1
            row.updated_at = now
            self._history(session, row.id, action, user, change_id,
                          {"members": members, "status": status, **(detail or {})})  # fmt: skip
            session.flush()
            return _view(row, current, self.settings)

    def record_in_catalog(
        self,
        name: str,
        before: list[dict[str, Any]],
        action: str,
        *,
        user: str | None,
        change_id: int | None,
        repos: dict[str, str] | None = None,
    ) -> list[str]:
        """A finished promotion or rollback, in the catalog's history of each member's model
        (through the ``catalog_history`` port). ``repos`` maps members to their Hugging Face
        repo (canary members); a split member's model is what its endpoint serves. Returns one
        line per entry recorded. The catalog failing does not undo what already ran."""
        champion = next((m["name"] for m in before if m["role"] == "champion"), None)
        challenger = next((m["name"] for m in before if m["role"] == "challenger"), None)
        if challenger is None:
            return []
        events: list[tuple[str, str, str]] = []
        if action == "promote":
            replacing = f", replacing {champion}" if champion else ""
            text = f"promoted to champion of group {name}{replacing}"
            events.append((challenger, "group.promoted", text))
            if champion:
                text = f"replaced as champion of group {name} by {challenger}"
                events.append((champion, "group.replaced", text))
        elif action == "rollback":
            text = f"rolled back in group {name}: all traffic back to {champion}"
            events.append((challenger, "group.rolled_back", text))
        lines = []
        for member, event, text in events:
            repo = (repos or {}).get(member) or (split_member(member)[1] if "/" in member else None)
            if not repo:
                continue
            try:
                ids = self.ports.catalog_history(
                    repo, event, f"{member}: {text}", user=user,
                    source=f"group:{name}:change:{change_id}",
                    detail={"group": name, "member": member, "change": change_id},
                )  # fmt: skip
            except Exception as exc:  # the promotion is done: say so, go on
                log.warning("group %s: catalog history of %s not recorded: %s", name, repo, exc)
                lines.append(f"⚠️ catalog history of {repo} not recorded: {exc}")
                continue
            lines += [f"📚 catalog {entry_id}: {text}" for entry_id in ids]
        return lines

    def drop(self, name: str, *, user: str | None, change_id: int | None) -> bool:
        """Delete the group and drop its inference table (False: already gone)."""
        with self._db.transaction() as session:
            row = session.scalar(sa.select(ModelGroup).where(ModelGroup.name == name))
            if row is None:
                return False
            tables.drop(session.connection(), row.table_name)
            self.kernel.audit.record(
                user or "system", "group.delete", target=f"group:{name}",
                params={"change": change_id, "table": row.table_name}, session=session,
            )  # fmt: skip
            session.delete(row)
        return True

    # -- routing ---------------------------------------------------------------------------
    def pick(self, name: str, user: str) -> PickResult:
        """A member by the traffic shares among healthy members, and why."""
        group = self.get(name)
        if group.strategy == "canary":
            return self._pick_canary(group)
        candidates: list[dict[str, Any]] = []
        eligible: list[tuple[MemberView, int]] = []
        for member in group.active:
            entry: dict[str, Any] = {"member": member.name, "role": member.role,
                                     "traffic": member.traffic}  # fmt: skip
            if member.traffic <= 0:
                entry["skipped"] = "0% of the traffic"
            else:
                status = self._endpoint_status(member.endpoint, user)
                entry["health"] = status
                if status == "down":
                    entry["skipped"] = "its endpoint is down"
                elif status == "missing":
                    entry["skipped"] = "its endpoint is not registered (or not yours)"
                else:
                    eligible.append((member, member.traffic))
            candidates.append(entry)
        if not eligible:
            why = "; ".join(f"{c['member']}: {c['skipped']}" for c in candidates if "skipped" in c)
            raise NotFoundError(f"no member of {group.name} can take traffic now ({why})")
        total = sum(share for _, share in eligible)
        draw = self._random() * total
        chosen = eligible[-1][0]
        for member, share in eligible:
            if draw < share:
                chosen = member
                break
            draw -= share
        shares = ", ".join(f"{m.name} {s * 100 / total:.0f}%" for m, s in eligible)
        reason = (
            f"{chosen.role} {chosen.name}: drawn by traffic share among healthy members ({shares})"
        )
        skipped = [c for c in candidates if "skipped" in c]
        if skipped:
            reason += "; skipped " + ", ".join(f"{c['member']} ({c['skipped']})" for c in skipped)
        return PickResult(group.name, chosen, reason, tuple(candidates))

    def _pick_canary(self, group: GroupView) -> PickResult:
        """A revision by KServe's live split, with its own URL (tag routing: ``latest-`` is the
        challenger's revision, ``prev-`` the champion's)."""
        live = self.live(group) or {}
        candidates: list[dict[str, Any]] = []
        eligible: list[tuple[MemberView, int, str | None]] = []
        for member, t, url in _revisions(group, live):
            percent = int(t.get("percent") or 0)
            entry: dict[str, Any] = {"member": member.name, "role": member.role,
                                     "traffic": percent, "revision": t.get("revisionName"),
                                     "url": url}  # fmt: skip
            if percent <= 0:
                entry["skipped"] = "0% of the traffic"
            else:
                eligible.append((member, percent, url))
            candidates.append(entry)
        if not eligible:
            raise NotFoundError(
                f"no revision of {group.deployment} takes traffic now (KServe reports "
                f"{live.get('state', 'nothing')}); see `group show {group.name}`"
            )
        total = sum(share for _, share, _ in eligible)
        draw = self._random() * total
        chosen, url = eligible[-1][0], eligible[-1][2]
        for member, share, address in eligible:
            if draw < share:
                chosen, url = member, address
                break
            draw -= share
        shares = ", ".join(f"{m.name} {s * 100 / total:.0f}%" for m, s, _ in eligible)
        reason = (f"{chosen.role} {chosen.name}: drawn by KServe's live split of "
                  f"{group.deployment} ({shares})"
                  + (f"; its revision answers at {url}" if url else ""))  # fmt: skip
        return PickResult(group.name, chosen, reason, tuple(candidates), url)

    def _endpoint_status(self, endpoint: str, user: str) -> str:
        try:
            return self.ports.endpoint_status(endpoint, user)
        except NotFoundError:
            return "missing"

    # -- records ---------------------------------------------------------------------------
    def table(self, group: GroupView) -> sa.Table:
        return tables.table(group.table_name)

    def record(self, group: GroupView, rows: list[dict[str, Any]]) -> int:
        """Insert inference rows (one executemany)."""
        if not rows:
            return 0
        from modelarium.core.groups.ingest import COLUMNS, insert_rows

        with self._db.engine.begin() as connection:
            insert_rows(
                connection, self.table(group), [tuple(r.get(c) for c in COLUMNS) for r in rows]
            )
        return len(rows)

    def payloads(self, prompt: str | None, completion: str | None) -> tuple[str | None, str | None]:
        """What the privacy setting keeps of a request's texts."""
        mode = self.settings.group_payloads
        if mode == "off":
            return None, None
        if mode == "hashes":
            return (
                "sha256:" + hashlib.sha256(prompt.encode()).hexdigest() if prompt else None,
                "sha256:" + hashlib.sha256(completion.encode()).hexdigest() if completion else None,
            )
        return prompt, completion

    def compare(self, name: str, since: float | None = None) -> stats.Comparison:
        group = self.get(name)
        now = self._clock.now().timestamp()
        until = now + 60  # the clocks of senders run a little ahead
        start = now - (since if since is not None else group.rules.retention)
        with self._db.engine.connect() as connection:
            return stats.compare(connection, self.table(group), group, start, until)

    def series(self, group: GroupView, since: float, until: float) -> dict[str, Any]:
        with self._db.engine.connect() as connection:
            return stats.over_time(connection, self.table(group), since, until)

    def purge(self, now: float | None = None) -> dict[str, int]:
        """Delete rows older than each group's retention (the daemon's group_retention task)."""
        now = self._clock.now().timestamp() if now is None else now
        removed: dict[str, int] = {}
        for group in self.list():
            cutoff = now - group.rules.retention
            table = self.table(group)
            with self._db.engine.begin() as connection:
                result = connection.execute(table.delete().where(table.c.ts < cutoff))
                connection.execute(
                    sa.delete(PendingEvent).where(
                        PendingEvent.group_id == group.id, PendingEvent.ts < cutoff
                    )
                )
            removed[group.name] = int(result.rowcount or 0)
        return removed

    def authenticate(self, name: str, token: str | None) -> GroupView:
        """The group an event names, if ``token`` is its logger token (else NotFoundError, the
        same answer for an unknown group and a wrong token)."""
        with self._db.transaction() as session:
            row = session.scalar(sa.select(ModelGroup).where(ModelGroup.name == name))
            if (
                row is None
                or not token
                or not hmac.compare_digest(row.token_hash, token_hash(token))
            ):
                raise NotFoundError("unknown group or wrong token")
            members = list(
                session.scalars(sa.select(GroupMember).where(GroupMember.group_id == row.id))
            )
            return _view(row, members, self.settings)

    # -- eval ------------------------------------------------------------------------------
    def _canary_targets(self, group: GroupView) -> list[Any]:
        """Each revision at its own URL (KServe tag routing), called as KServe's Hugging Face
        runtime serves it: the OpenAI API under ``/openai``, the model named after the
        InferenceService. The addresses are screened like endpoints'."""
        from modelarium.core.clients.addresses import AddressPolicy
        from modelarium.core.groups import evaluate as ev

        live = self.live(group) or {}
        policy = AddressPolicy.from_allowlist(self.settings.endpoint_allowlist)
        targets = [
            ev.Target(
                member.name,
                "openai-compatible",
                url.rstrip("/") + "/openai",
                str(live.get("name") or ""),
                None,
                policy,
            )
            for member, _, url in _revisions(group, live)
            if url
        ]
        if not targets:
            raise ConflictError(
                f"KServe reports no URL per revision of {group.deployment} "
                f"({live.get('state', 'nothing live')}): the revisions are reached through tag "
                "routing (the serving.kserve.io/enable-tag-routing annotation Modelarium sets on "
                "grouped deployments)"
            )
        return targets

    def evaluate(self, name: str, user: str, prompts: list[str]) -> dict[str, Any]:
        """Send every prompt to every active member and record each result."""
        from modelarium.core.groups import evaluate as ev

        group = self.get(name)
        if group.strategy == "canary":
            targets = self._canary_targets(group)
        else:
            targets = []
            for member in group.active:
                resolved = self.ports.endpoint_resolver(member.endpoint, user)
                targets.append(
                    ev.Target(
                        member.name,
                        resolved.type,
                        resolved.base_url,
                        member.model,
                        resolved.api_key,
                        getattr(resolved, "policy", None),
                    )
                )
        if not targets:
            raise ConflictError(f"group {group.name} has no member to evaluate")
        results = ev.run(
            targets,
            prompts,
            concurrency=self.settings.group_eval_concurrency,
            timeout=self.settings.group_eval_timeout,
            clock=lambda: self._clock.now().timestamp(),
        )
        rows = []
        for r in results:
            prompt, completion = self.payloads(r.prompt, r.completion)
            rows.append(
                {
                    "ts": r.ts,
                    "member": r.member,
                    "source": "eval",
                    "ok": r.ok,
                    "status": r.status,
                    "latency_ms": r.latency_ms,
                    "prompt_tokens": r.prompt_tokens,
                    "completion_tokens": r.completion_tokens,
                    "request_id": None,
                    "error": r.error,
                    "prompt": prompt,
                    "completion": completion,
                }
            )
        self.record(group, rows)
        summary: dict[str, dict[str, Any]] = {}
        for r in results:
            entry = summary.setdefault(r.member, {"requests": 0, "errors": 0, "latency_ms": []})
            entry["requests"] += 1
            entry["errors"] += 0 if r.ok else 1
            if r.ok:
                entry["latency_ms"].append(r.latency_ms)
            if r.error and "error" not in entry:
                entry["error"] = r.error
        for entry in summary.values():
            latencies = sorted(entry.pop("latency_ms"))
            entry["median_ms"] = latencies[len(latencies) // 2] if latencies else None
        return {"group": group.name, "prompts": len(prompts), "members": summary,
                "rows": len(rows)}  # fmt: skip


def _revisions(group: GroupView, live: dict[str, Any]) -> list[tuple[MemberView, dict, str | None]]:
    """(member, traffic entry, its URL) for each revision KServe lists: ``latest`` is the
    challenger's, ``prev`` (or the only, untagged one) the champion's."""
    champion, challenger = group.champion, next(iter(group.challengers), None)
    out: list[tuple[MemberView, dict, str | None]] = []
    for t in live.get("traffic") or []:
        tag = t.get("tag")
        member = challenger if tag == "latest" else champion
        if member is None:
            continue
        out.append((member, t, t.get("url") or (live.get("url") if tag is None else None)))
    return out
