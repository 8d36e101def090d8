"""One alert engine for every threshold, in the manner of Prometheus Alertmanager.

Tasks report observations (a value per rule and label set). Each alert instance moves
inactive -> pending -> firing -> resolved: it fires once the condition held for the rule's ``for``
duration, reminds after the repeat interval, and says "resolved" by editing the message it fired
in. Alerts firing in one evaluation towards one channel share one message. Silences suppress
notifications (not state). State lives in the database, so restarts and replicas add no duplicates.
"""

from __future__ import annotations

import fnmatch
import itertools
import operator
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from modelarium.config.units import format_duration
from modelarium.core.audit import AuditService
from modelarium.core.clock import Clock
from modelarium.core.db.models.alerts import Alert, Silence
from modelarium.core.db.uow import Database
from modelarium.core.echo import shown
from modelarium.core.errors import ConflictError, NotFoundError, UsageError
from modelarium.core.messages import Button, Form, FormField, Message, timestamp
from modelarium.core.notify import NotifyService

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}


@dataclass(frozen=True)
class AlertRule:
    name: str
    summary: str
    """Format string over labels and ``value``, e.g. ``"{location} is {value:.0%} full"``."""
    op: str
    threshold: float
    for_seconds: float = 0.0
    severity: str = "warning"
    kind: str = "alert"
    repeat_interval: float | None = None
    runbook: str | None = None
    """A link to what to do about it, shown on the alert's card."""
    label_values: Callable[[Session], dict[str, Iterable[str]]] | None = None
    """The values each label can take (the task names of ``task_failing``), read in the
    caller's transaction: a silence for an instance that cannot occur is refused instead of
    silencing nothing."""

    def breached(self, value: float, threshold: float | None = None) -> bool:
        return _OPS[self.op](value, self.threshold if threshold is None else threshold)


@dataclass(frozen=True)
class Observation:
    rule: str
    value: float
    labels: dict[str, str] = field(default_factory=dict)
    threshold: float | None = None
    """Overrides the rule's threshold for this instance (e.g. each location's own watermark)."""


@dataclass(frozen=True)
class AlertView:
    id: int
    rule: str
    fingerprint: str
    labels: dict[str, Any]
    severity: str
    state: str
    value: float | None
    summary: str
    pending_since: datetime | None
    fired_at: datetime | None
    resolved_at: datetime | None
    acked_by: str | None
    ack_note: str | None
    silenced_by: int | None = None


@dataclass(frozen=True)
class SilenceView:
    id: int
    matcher: str
    comment: str
    created_by: str
    ends_at: datetime


@dataclass
class EvaluationReport:
    fired: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    reminded: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    silenced: list[str] = field(default_factory=list)


_ADVISORY_SPACE = 7243002  # pg_advisory_xact_lock(space, key) namespace for alert rules


def fingerprint(rule: str, labels: dict[str, str]) -> str:
    if not labels:
        return rule
    inner = ",".join(f"{k}={labels[k]}" for k in sorted(labels))
    return f"{rule}{{{inner}}}"


class AlertService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        notify: NotifyService,
        audit: AuditService,
        *,
        repeat_interval: float = 4 * 3600.0,
        runbooks: dict[str, str] | None = None,
        hub_url: str = "https://huggingface.co",
    ) -> None:
        self._db = db
        self._clock = clock
        self._notify = notify
        self._audit = audit
        self.repeat_interval = repeat_interval
        self.runbooks = dict(runbooks or {})
        """Rule name -> runbook URL (settings), over the rule's own ``runbook``."""
        self.hub_url = hub_url.rstrip("/")
        self._rules: dict[str, AlertRule] = {}

    def register(self, rule: AlertRule) -> None:
        if rule.op not in _OPS:
            raise ValueError(f"unknown comparison {rule.op!r}")
        self._rules[rule.name] = rule

    @property
    def rules(self) -> dict[str, AlertRule]:
        return dict(self._rules)

    # -- evaluation ---------------------------------------------------------------------------

    def evaluate(
        self, rule_name: str, observations: Iterable[Observation], *, complete: bool = True
    ) -> EvaluationReport:
        """Apply one round of observations for a rule.

        ``complete`` means the observations cover every instance of the rule: an instance not
        observed is treated as healthy (the disk was removed, the endpoint deleted).
        """
        rule = self._rules[rule_name]
        now = self._clock.now()
        report = EvaluationReport()
        to_announce: list[Alert] = []
        to_refresh: set[str] = set()
        with self._db.transaction() as session:
            if self._db.dialect == "postgresql":
                # Evaluations of one rule take turns (replicas, a manual run beside the scheduled
                # one): the row locks below cannot cover instances that do not exist yet, and two
                # inserts of one new fingerprint would fail. (SQLite's BEGIN IMMEDIATE serialises.)
                session.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:space, hashtext(:rule))"),
                    {"space": _ADVISORY_SPACE, "rule": rule.name},
                )
            silences = self._active_silences(session, now)
            existing = {
                a.fingerprint: a
                for a in session.scalars(
                    sa.select(Alert).where(Alert.rule == rule.name).with_for_update()
                )
            }
            seen: set[str] = set()
            for obs in observations:
                fp = fingerprint(rule.name, obs.labels)
                seen.add(fp)
                alert = existing.get(fp)
                if alert is None:
                    alert = Alert(
                        rule=rule.name,
                        fingerprint=fp,
                        labels=dict(obs.labels),
                        severity=rule.severity,
                        state="inactive",
                        summary="",
                        last_seen_at=now,
                    )
                    session.add(alert)
                    existing[fp] = alert
                alert.value = obs.value
                alert.last_seen_at = now
                alert.summary = _summary(rule, obs)
                if rule.breached(obs.value, obs.threshold):
                    self._breached(
                        session, rule, alert, now, silences, report, to_announce, to_refresh
                    )
                else:
                    self._cleared(session, alert, now, report, to_refresh)
            if complete:
                for fp, alert in existing.items():
                    if fp not in seen and alert.state in ("pending", "firing"):
                        self._cleared(session, alert, now, report, to_refresh)
            session.flush()
            self._announce(session, rule, to_announce, now)
            for key in to_refresh:
                self._render_group(session, key)
        return report

    def _breached(
        self,
        session: Session,
        rule: AlertRule,
        alert: Alert,
        now: datetime,
        silences: list[Silence],
        report: EvaluationReport,
        to_announce: list[Alert],
        to_refresh: set[str],
    ) -> None:
        if alert.state in ("inactive", "resolved"):
            alert.state = "pending"
            alert.pending_since = now
            alert.resolved_at = None
            alert.acked_by = alert.ack_note = None
            alert.acked_at = None
            alert.message_key = None
        if alert.state == "pending":
            if alert.pending_since and now - alert.pending_since >= timedelta(
                seconds=rule.for_seconds
            ):
                alert.state = "firing"
                alert.fired_at = now
                if _silenced(alert, silences) is not None:
                    report.silenced.append(alert.fingerprint)
                else:
                    to_announce.append(alert)
                    report.fired.append(alert.fingerprint)
            else:
                report.pending.append(alert.fingerprint)
            return
        # firing: remind after the repeat interval unless acknowledged or silenced
        repeat = rule.repeat_interval or self.repeat_interval
        last = alert.last_notified_at or alert.fired_at
        if alert.message_key is None and _silenced(alert, silences) is None:
            to_announce.append(alert)  # was silenced when it fired; the silence has ended
            report.fired.append(alert.fingerprint)
        elif (
            last is not None
            and now - last >= timedelta(seconds=repeat)
            and alert.acked_by is None
            and _silenced(alert, silences) is None
        ):
            alert.last_notified_at = now
            report.reminded.append(alert.fingerprint)
            self._notify.notify(
                rule.kind,
                Message(fallback=f"🔁 Still firing: {alert.summary}")
                .text(f"🔁 *Still firing* since {timestamp(alert.fired_at)}: {alert.summary}")
                .buttons(*_alert_buttons(alert)),
                severity=alert.severity,
                key=f"alert-reminder:{alert.id}:{int(now.timestamp())}",
                event={"alert": alert.fingerprint, "state": "firing", "reminder": True},
                thread_of=alert.message_key,  # a follow-up, in the thread of the alert's card
                session=session,
            )
        if alert.message_key:
            to_refresh.add(alert.message_key)

    def _cleared(
        self,
        session: Session,
        alert: Alert,
        now: datetime,
        report: EvaluationReport,
        to_refresh: set[str],
    ) -> None:
        if alert.state == "pending":
            alert.state = "inactive"
            alert.pending_since = None
        elif alert.state == "firing":
            alert.state = "resolved"
            alert.resolved_at = now
            report.resolved.append(alert.fingerprint)
            if alert.message_key:
                to_refresh.add(alert.message_key)
                # The card is edited in place; the resolution is also said in its thread, so
                # whoever followed the alert there hears that it is over.
                self._notify.publish(
                    f"alert-resolved:{alert.id}:{int(now.timestamp())}",
                    Message(fallback=f"✅ Resolved: {alert.summary}").text(
                        f"✅ *Resolved*: {alert.summary}"
                    ),
                    kind=self._rules[alert.rule].kind if alert.rule in self._rules else "alert",
                    thread_of=alert.message_key,
                    session=session,
                )
            # Receivers of webhooks get an event.
            self._notify.emit_webhooks(
                "alert",
                {
                    "alert": alert.fingerprint,
                    "state": "resolved",
                    "text": f"Resolved: {alert.summary}",
                },
                severity=alert.severity,
                session=session,
            )

    def _announce(
        self, session: Session, rule: AlertRule, alerts: list[Alert], now: datetime
    ) -> None:
        """One message per channel for everything that started firing in this evaluation."""
        by_channel: dict[str | None, list[Alert]] = defaultdict(list)
        for alert in alerts:
            by_channel[self._notify.route(rule.kind, alert.severity)].append(alert)
        for channel, group in by_channel.items():
            session.flush()
            key = f"alerts:{rule.name}:{min(a.id for a in group)}:{int(now.timestamp())}"
            for alert in group:
                alert.message_key = key
                alert.last_notified_at = now
            session.flush()
            severity = (
                "critical" if any(a.severity == "critical" for a in group) else group[0].severity
            )
            self._notify.notify(
                rule.kind,
                render_group(group, links=self._links),
                severity=severity,
                key=key,
                channel=channel,
                event={"alerts": [a.fingerprint for a in group], "state": "firing"},
                session=session,
            )

    def _render_group(self, session: Session, key: str) -> None:
        group = list(
            session.scalars(sa.select(Alert).where(Alert.message_key == key).order_by(Alert.id))
        )
        if group:
            silences = self._active_silences(session, self._clock.now())
            message = render_group(group, silences, self._links)
            self._notify.publish(key, message, session=session)

    def _links(self, alert: Alert) -> AlertLinks:
        rule = self._rules.get(alert.rule)
        runbook = self.runbooks.get(alert.rule) or (rule.runbook if rule else None)
        return AlertLinks(runbook=runbook, hub=self.hub_url)

    def _refresh_matching(self, session: Session, matcher: str) -> None:
        """Re-render the cards of firing alerts a silence covers (it began or ended)."""
        keys = {
            a.message_key
            for a in session.scalars(sa.select(Alert).where(Alert.state == "firing"))
            if a.message_key and _matches(matcher, a)
        }
        for key in sorted(keys):
            self._render_group(session, key)

    # -- operator actions ---------------------------------------------------------------------

    def acknowledge(self, alert_id: int, user: str, note: str | None = None) -> AlertView:
        with self._db.transaction() as session:
            alert = session.scalar(sa.select(Alert).where(Alert.id == alert_id).with_for_update())
            if alert is None:
                raise NotFoundError(f"no alert #{alert_id}")
            if alert.state != "firing":
                raise ConflictError(f"alert #{alert_id} is {alert.state}, not firing")
            alert.acked_by = user
            alert.ack_note = note
            alert.acked_at = self._clock.now()
            self._audit.record(
                user, "alert.ack", target=alert.fingerprint, params={"note": note}, session=session
            )
            if alert.message_key:
                self._render_group(session, alert.message_key)
            return _alert_view(alert)

    def silence(self, matcher: str, duration: float, user: str, comment: str = "") -> SilenceView:
        if duration <= 0:
            raise UsageError("silence duration must be positive, e.g. 2h")
        if not matcher.strip():
            raise UsageError("say which alert to silence (a rule name, an alert id or a pattern)")
        now = self._clock.now()
        with self._db.transaction() as session:
            if matcher.isdigit():
                alert = session.get(Alert, int(matcher)) if len(matcher) <= 9 else None
                if alert is None:
                    raise NotFoundError(f"no alert #{shown(matcher, quote=False)}")
                matcher = alert.fingerprint
            else:
                why = self._matches_nothing(session, matcher)
                if why:
                    raise NotFoundError(why)
            silence = Silence(
                matcher=matcher,
                comment=comment,
                created_by=user,
                starts_at=now,
                ends_at=now + timedelta(seconds=duration),
            )
            session.add(silence)
            session.flush()
            self._audit.record(
                user,
                "alert.silence",
                target=matcher,
                params={"duration": duration, "comment": comment},
                session=session,
            )
            self._refresh_matching(session, silence.matcher)  # the cards show the silence
            return SilenceView(
                silence.id, silence.matcher, silence.comment, silence.created_by, silence.ends_at
            )

    def _matches_nothing(self, session: Session, matcher: str) -> str | None:
        """Why a silence for ``matcher`` could never silence anything, or None when it can: it
        names a rule, matches an alert that exists, or an instance a rule can raise."""
        if matcher in self._rules:
            return None
        for rule, print_ in session.execute(sa.select(Alert.rule, Alert.fingerprint)):
            if matcher in (rule, print_) or fnmatch.fnmatchcase(print_, matcher):
                return None
        rule_part = matcher.split("{", 1)[0]
        rules = [r for name, r in self._rules.items() if fnmatch.fnmatchcase(name, rule_part)]
        if not rules:
            return (
                f"{shown(matcher)} matches no alert rule and no alert; rules: "
                f"{', '.join(sorted(self._rules))}"
            )
        for rule in rules:
            if rule.label_values is None:
                return None  # any labels can occur: nothing to check against
            values = {k: sorted(v) for k, v in rule.label_values(session).items()}
            if not all(values.values()):
                return None  # nothing known yet (no daemon has run): nothing to check against
            keys = sorted(values)
            for combo in itertools.product(*(values[k] for k in keys)):
                possible = fingerprint(rule.name, dict(zip(keys, combo, strict=True)))
                if fnmatch.fnmatchcase(possible, matcher) or fnmatch.fnmatchcase(
                    rule.name, matcher
                ):
                    return None
        known = "; ".join(
            f"{k}: {', '.join(sorted(v))}"
            for r in rules[:1]
            for k, v in (r.label_values(session) if r.label_values else {}).items()
        )
        return f"{shown(matcher)} matches no {rules[0].name} alert that can occur ({known})"

    def expire_silence(self, silence_id: int, user: str) -> bool:
        """End a silence now; False when it had already ended (nothing to do)."""
        now = self._clock.now()
        with self._db.transaction() as session:
            silence = session.get(Silence, silence_id)
            if silence is None:
                raise NotFoundError(f"no silence #{silence_id}")
            ends_at = silence.ends_at
            if ends_at.tzinfo is None:
                ends_at = ends_at.replace(tzinfo=now.tzinfo)
            if ends_at <= now:
                return False
            silence.ends_at = now
            self._audit.record(user, "alert.unsilence", target=silence.matcher, session=session)
            session.flush()
            self._refresh_matching(session, silence.matcher)
            return True

    def silences(self) -> list[SilenceView]:
        with self._db.transaction() as session:
            return [
                SilenceView(s.id, s.matcher, s.comment, s.created_by, s.ends_at)
                for s in self._active_silences(session, self._clock.now())
            ]

    def active(self, *, include_pending: bool = True) -> list[AlertView]:
        states = ("firing", "pending") if include_pending else ("firing",)
        with self._db.transaction() as session:
            silences = self._active_silences(session, self._clock.now())
            alerts = session.scalars(
                sa.select(Alert).where(Alert.state.in_(states)).order_by(Alert.id)
            )
            return [_alert_view(a, _silenced(a, silences)) for a in alerts]

    def firing_count(self) -> dict[str, int]:
        with self._db.transaction() as session:
            rows = session.execute(
                sa.select(Alert.rule, sa.func.count())
                .where(Alert.state == "firing")
                .group_by(Alert.rule)
            ).all()
        return {rule: int(n) for rule, n in rows}

    @staticmethod
    def _active_silences(session: Session, now: datetime) -> list[Silence]:
        return list(
            session.scalars(
                sa.select(Silence)
                .where(Silence.starts_at <= now, Silence.ends_at > now)
                .order_by(Silence.id)
            )
        )


def _summary(rule: AlertRule, obs: Observation) -> str:
    try:
        return rule.summary.format(value=obs.value, **obs.labels)
    except (KeyError, ValueError, IndexError):
        return f"{rule.name} {obs.labels} = {obs.value}"


def _matches(matcher: str, alert: Alert) -> bool:
    return matcher in (alert.rule, alert.fingerprint) or fnmatch.fnmatchcase(
        alert.fingerprint, matcher
    )


def _silenced(alert: Alert, silences: list[Silence]) -> int | None:
    return next((s.id for s in silences if _matches(s.matcher, alert)), None)


def _alert_view(alert: Alert, silenced_by: int | None = None) -> AlertView:
    return AlertView(
        id=alert.id,
        rule=alert.rule,
        fingerprint=alert.fingerprint,
        labels=dict(alert.labels),
        severity=alert.severity,
        state=alert.state,
        value=alert.value,
        summary=alert.summary,
        pending_since=alert.pending_since,
        fired_at=alert.fired_at,
        resolved_at=alert.resolved_at,
        acked_by=alert.acked_by,
        ack_note=alert.ack_note,
        silenced_by=silenced_by,
    )


@dataclass(frozen=True)
class AlertLinks:
    """Where a card's links point: the rule's runbook, the Hub (for a ``model`` label)."""

    runbook: str | None = None
    hub: str = "https://huggingface.co"


def _alert_buttons(alert: Alert, silence: Silence | None = None) -> tuple[Button, ...]:
    """The obvious next steps, each a command run as the presser: Acknowledge, Silence 1h (or
    Unsilence while a silence covers it), and Show endpoint/deployment/model by its labels."""
    quiet = (
        Button("Unsilence", f"unsilence {silence.id}")
        if silence is not None
        else Button("Silence 1h", f"silence {alert.fingerprint} 1h")
    )
    labels = alert.labels or {}
    shows: list[Button] = []
    if labels.get("endpoint"):
        shows.append(Button("Show endpoint", f"endpoint show {labels['endpoint']}"))
    if labels.get("deployment"):  # "namespace/name"
        shows.append(Button("Show deployment", f"deployment show {labels['deployment']}"))
    if labels.get("model"):
        shows.append(Button("Model info", f"info {labels['model']}"))
    return (
        Button(
            "Acknowledge",
            f"alert ack {alert.id}",
            form=Form(
                title="Acknowledge alert",
                command=f"alert ack {alert.id}",
                fields=(FormField("note", "Note", multiline=True, optional=True),),
                submit="Acknowledge",
            ),
        ),
        quiet,
        *shows,
    )


def _alert_links(alert: Alert, links: AlertLinks | None) -> str:
    """Runbook and Hub page links for the card's text (links, not commands: no twin needed)."""
    if links is None:
        return ""
    parts = []
    if links.runbook:
        parts.append(f"<{links.runbook}|📖 runbook>")
    model = (alert.labels or {}).get("model")
    if model:
        parts.append(f"<{links.hub}/{model}|{model} on the Hub>")
    return " · ".join(parts)


_SEVERITY_ICON = {"critical": "🔴", "warning": "🟠", "info": "🔵"}


def render_group(
    alerts: list[Alert],
    silences: Iterable[Silence] = (),
    links: Callable[[Alert], AlertLinks] | None = None,
) -> Message:
    """One message for alerts that fired together; edited as each is acknowledged, silenced
    or resolved (``silences``: those in force now; ``links``: runbook and Hub links per alert)."""
    active = list(silences)
    firing = [a for a in alerts if a.state == "firing"]
    title = (
        f"{len(firing)} alert(s) firing"
        if firing
        else "✅ Resolved: " + ", ".join(a.rule for a in alerts)
    )
    message = Message(fallback=title + ": " + "; ".join(a.summary for a in alerts))
    message.header(title[:150])
    for alert in alerts:
        icon = "✅" if alert.state == "resolved" else _SEVERITY_ICON.get(alert.severity, "⚠️")
        lines = [f"{icon} *{alert.summary}*  `#{alert.id}` ({alert.severity}, {alert.state})"]
        if alert.state == "resolved" and alert.fired_at and alert.resolved_at:
            lasted = format_duration((alert.resolved_at - alert.fired_at).total_seconds())
            lines.append(f"resolved at {timestamp(alert.resolved_at)} after {lasted}")
        if alert.acked_by:
            lines.append(
                f"acknowledged by <@{alert.acked_by}>"
                + (f": {alert.ack_note}" if alert.ack_note else "")
            )
        silence = (
            next((s for s in active if _matches(s.matcher, alert)), None)
            if alert.state == "firing"
            else None
        )
        if silence is not None:
            lines.append(
                f"🔕 silenced by <@{silence.created_by}> until {timestamp(silence.ends_at)} "
                f"(silence #{silence.id}" + (f": {silence.comment})" if silence.comment else ")")
            )
        extra = _alert_links(alert, links(alert) if links else None)
        if extra and alert.state == "firing":
            lines.append(extra)
        message.text("\n".join(lines))
        if alert.state == "firing" and not alert.acked_by:
            message.buttons(*_alert_buttons(alert, silence))
    return message
