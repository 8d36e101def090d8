"""The Slack front: a bolt ``App`` whose listeners ack at once and run commands in a pool.

Everything a user does in Slack becomes command text run through the one
:class:`~modelarium.bot.dispatch.CommandRunner` path, as the user who did it:

* ``/model <text>``: run as the typing user; the answer goes to ``response_url``.
* a button (``mdl.cmd.<n>``): its ``value`` is the command, run as whoever *clicks*, so the role
  check is the presser's; approval cards are replaced in place when the command succeeds.
* a form button (``mdl.form.<n>``) opens a modal; submitting it runs the form's command with
  ``--<field> <value>``, secrets going through ``read_secret`` (``--<field> -``) so they never
  appear in command text, logs or the audit log.
* ``@modelarium <text>`` runs ``<text>`` and answers in the thread; opening the App Home shows
  the caller's help listing.

The listeners only ``ack()`` and hand the work to a bounded pool (``process_before_response``
so no bolt thread polls for the ack); Slack's 3-second deadline is thus met however slow a
command is. Slack redelivers (retries, double clicks): each delivery is claimed once in the
database (:class:`~modelarium.core.notify.inbound.InboundDeliveries`) before anything runs.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import shlex
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from modelarium.bot.dispatch import CommandRunner
from modelarium.bot.reply import Attachment, Reply
from modelarium.bot.slack.blocks import (
    DETAILS_ACTION,
    FIELD_ACTION,
    FIELD_BLOCK_PREFIX,
    FORM_CALLBACK,
    fallback_text,
    form_view,
    home_view,
    parse_details_value,
    parse_form_value,
    render_message,
)
from modelarium.bot.slack.client import retry_handlers, web_client
from modelarium.bot.slack.users import UserDirectory
from modelarium.core.app import Core
from modelarium.core.errors import ModelariumError, UsageError
from modelarium.core.logging import get_logger, redact_text
from modelarium.core.messages import Context, Form, Message, shorten
from modelarium.core.notify.inbound import InboundDeliveries

log = get_logger(__name__)

CMD_ACTION = re.compile(r"^mdl\.cmd\.\d+$")
FORM_ACTION = re.compile(r"^mdl\.form\.\d+$")
_LEADING_MENTION = re.compile(r"^\s*<@[A-Z0-9]+(?:\|[^>]*)?>[\s:,]*")
SUBMIT_WAIT = 2.0
"""Seconds a modal submission waits for its command, so usage errors can go on the field."""
SLOW_ANSWER = 2.0
"""Seconds a command may take before the user is told at once that it is being looked up; the
result then replaces that note (see :class:`_Placeholder`)."""

# Errors after which a channel is no use for an answer; the user gets a DM instead.
_NO_CHANNEL = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "user_not_in_channel",
        "restricted_action",
    }
)


class AckPriority:
    """Lets background work step aside while requests are waiting for their ack.

    Python runs one thread at a time; under a burst, command work in the pool would take CPU
    from the requests Slack is timing (3 s, and we aim for well under 100 ms). The HTTP route
    counts requests in flight; a pool job starts when none are, or after ``max_defer``, and
    then only one overdue job at a time, so a sustained burst still sees answers trickle out
    without the whole pool competing with the acks. Jobs an ack is waiting for are ``urgent``.
    """

    def __init__(self, max_defer: float = 1.0) -> None:
        self.max_defer = max_defer
        self._inflight = 0
        self._quiet = threading.Condition()
        self._overdue = threading.Lock()

    def __enter__(self) -> AckPriority:
        with self._quiet:
            self._inflight += 1
        return self

    def __exit__(self, *_exc: object) -> None:
        with self._quiet:
            self._inflight -= 1
            if self._inflight <= 0:
                self._quiet.notify_all()

    @contextlib.contextmanager
    def background(self) -> Iterator[None]:
        """Hold this around low-priority work."""
        with self._quiet:
            quiet = self._quiet.wait_for(lambda: self._inflight <= 0, self.max_defer)
        if quiet:
            yield
            return
        with self._overdue:
            yield


@dataclass(frozen=True)
class Target:
    """Where an answer goes: the response_url if there is one, else the channel or a DM."""

    user: str
    channel: str | None = None
    response_url: str | None = None
    trigger_id: str | None = None
    thread_ts: str | None = None
    slash: bool = False
    """A slash command: its response_url replaces the messages it posted itself."""


class SlackFront:
    """Owns the bolt app, the command pool and the delivery of replies to Slack."""

    def __init__(
        self,
        core: Core,
        *,
        client: WebClient | None = None,
        runner: CommandRunner | None = None,
        workers: int = 8,
        socket_mode: bool | None = None,
        slow_answer: float = SLOW_ANSWER,
    ) -> None:
        settings = core.settings
        self.slow_answer = slow_answer
        self.core = core
        self.runner = runner or CommandRunner(core)
        self.client = client or web_client(settings)
        self.names = UserDirectory(self.client)
        self.deliveries = InboundDeliveries(core.db, core.clock)
        self.socket_mode = (
            settings.slack_app_token is not None if socket_mode is None else socket_mode
        )
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="slack-work")
        self.priority = AckPriority()
        self._busy = 0
        self._idle = threading.Condition()
        self._webhook_retries = retry_handlers(settings.slack_retry_attempts)
        secret = settings.slack_signing_secret
        if secret is None and not self.socket_mode:
            raise ModelariumError(
                "SLACK_SIGNING_SECRET is not set; it is required unless SLACK_APP_TOKEN "
                "selects Socket Mode"
            )
        bolt_logger = logging.getLogger("modelarium.slack.bolt")
        bolt_logger.setLevel(max(logging.INFO, logging.getLogger().level))
        try:  # bolt checks the token with auth.test right here
            self.app = App(
                client=self.client,
                signing_secret=secret.get_secret_value() if secret else None,
                request_verification_enabled=not self.socket_mode,
                process_before_response=True,
                logger=bolt_logger,
                # Bolt sets the level of the logger named after the app: "modelarium" would
                # be our whole package's logger (and silence its INFO/DEBUG lines).
                name="modelarium-slack",
            )
        except Exception as exc:
            raise ModelariumError(
                f"cannot start the Slack front: {redact_text(str(exc)).splitlines()[0]} "
                f"(check SLACK_BOT_TOKEN and MODELARIUM_SLACK_API_URL={settings.slack_api_url})"
            ) from None
        self._register()

    # -- lifecycle --------------------------------------------------------------------------
    def submit(
        self, fn: Callable[..., Any], *args: Any, urgent: bool = False, **kwargs: Any
    ) -> Future[Any]:
        """Run ``fn`` in the command pool, after pending acks unless ``urgent``; crashes are
        logged, never lost silently."""
        with self._idle:
            self._busy += 1

        def run() -> Any:
            try:
                if urgent:
                    return fn(*args, **kwargs)
                with self.priority.background():
                    return fn(*args, **kwargs)
            except Exception:
                log.exception("slack.work_failed", work=getattr(fn, "__name__", str(fn)))
                return None
            finally:
                with self._idle:
                    self._busy -= 1
                    self._idle.notify_all()

        return self._pool.submit(run)

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until no background work is left (tests, benchmarks, shutdown)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._busy == 0, timeout)

    def close(self, timeout: float = 10.0) -> None:
        self.drain(timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def claim(self, key: str) -> bool:
        if self.deliveries.claim_delivery(key):
            return True
        log.info("slack.duplicate_delivery", key=key)
        return False

    # -- listeners --------------------------------------------------------------------------
    def _register(self) -> None:
        app = self.app
        app.command(self.core.settings.slack_command)(self._on_command)
        app.action(CMD_ACTION)(self._on_command_button)
        app.action(FORM_ACTION)(self._on_form_button)
        app.action(DETAILS_ACTION)(self._on_details)
        app.action(re.compile(r".*"))(self._on_other_action)
        app.view_submission(FORM_CALLBACK)(self._on_form_submit)
        app.view_closed(FORM_CALLBACK)(self._on_view_closed)
        app.event("app_mention")(self._on_mention)
        app.event("app_home_opened")(self._on_home_opened)

    def _on_command(self, ack: Ack, body: dict[str, Any]) -> None:
        ack()
        self.submit(self.run_command, dict(body))

    def _on_command_button(self, ack: Ack, body: dict[str, Any]) -> None:
        ack()
        self.submit(self.run_button, body)

    def _on_form_button(self, ack: Ack, body: dict[str, Any]) -> None:
        ack()
        self.submit(self.open_form_button, body, urgent=True)  # the trigger lives 3 s

    def _on_details(self, ack: Ack, body: dict[str, Any]) -> None:
        ack()
        self.submit(self.show_details, body)

    def _on_other_action(self, ack: Ack) -> None:
        ack()  # buttons of older versions of the app, links: nothing to run

    def _on_view_closed(self, ack: Ack) -> None:
        ack()

    def _on_mention(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        self.submit(self.run_mention, str(body.get("event_id") or ""), event)

    def _on_home_opened(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        if event.get("tab", "home") == "home":
            self.submit(self.publish_home, str(event.get("user") or ""))

    # -- work: commands and buttons ---------------------------------------------------------
    def run_command(self, body: dict[str, Any]) -> None:
        """A slash command, after the ack."""
        key = body.get("trigger_id") or body.get("response_url")
        if key and not self.claim(f"command:{key}"):
            return
        user = str(body.get("user_id") or "")
        channel = body.get("channel_id") or None
        target = Target(
            user=user,
            channel=channel,
            response_url=body.get("response_url"),
            trigger_id=body.get("trigger_id"),
            slash=True,
        )
        reply, placeholder = self.execute(str(body.get("text") or ""), target)
        self.deliver(reply, target, placeholder=placeholder)

    def run_button(self, body: dict[str, Any]) -> None:
        """A ``mdl.cmd.*`` click: the button's command, run as the clicking user."""
        action = (body.get("actions") or [{}])[0]
        user = str((body.get("user") or {}).get("id") or "")
        key = f"action:{user}:{action.get('action_ts')}:{action.get('action_id')}"
        if not self.claim(key):
            return
        target = _action_target(body)
        reply, placeholder = self.execute(str(action.get("value") or ""), target)
        self.deliver(
            reply,
            target,
            replace_original=reply.ok and reply.replace_original,
            placeholder=placeholder,
        )

    def open_form_button(self, body: dict[str, Any]) -> None:
        """A ``mdl.form.*`` click: open the modal at once (the trigger lives 3 seconds)."""
        action = (body.get("actions") or [{}])[0]
        target = _action_target(body)
        try:
            form = parse_form_value(str(action.get("value") or ""))
        except (ValueError, KeyError, TypeError):
            log.warning("slack.bad_form_value", action=action.get("action_id"))
            return
        if not self.open_form(form, target):
            self.answer(target, _form_fallback(form, self.runner.prefix))

    def show_details(self, body: dict[str, Any]) -> None:
        action = (body.get("actions") or [{}])[0]
        try:
            title, text = parse_details_value(str(action.get("value") or ""))
        except (ValueError, TypeError):
            return
        message = Message(fallback=title).text(f"*{title}*\n{text}")
        self.answer(_action_target(body), message)

    def run_mention(self, event_id: str, event: dict[str, Any]) -> None:
        """``@modelarium <command>``: run it, answer in the thread."""
        if event_id and not self.claim(f"event:{event_id}"):
            return
        user = str(event.get("user") or "")
        if not user or event.get("bot_id"):
            return
        text = _LEADING_MENTION.sub("", str(event.get("text") or ""), count=1).strip()
        for prefix in (self.runner.prefix + " ", "/model "):
            if text.startswith(prefix):
                text = text[len(prefix) :]
        channel = event.get("channel") or None
        target = Target(
            user=user, channel=channel, thread_ts=event.get("thread_ts") or event.get("ts")
        )
        reply, placeholder = self.execute(text, target)
        self.deliver(reply, target, placeholder=placeholder)

    def execute(self, text: str, target: Target) -> tuple[Reply, _Placeholder]:
        """Run ``text`` as ``target.user``. If it takes longer than ``slow_answer`` seconds (a
        slow Hub), a short "looking up" note is shown at once; ``deliver`` replaces it."""
        placeholder = _Placeholder(self, target, text)
        timer = threading.Timer(self.slow_answer, placeholder.show)
        timer.daemon = True
        timer.start()
        try:
            return (
                self.runner.execute(text, user=target.user, channel=target.channel, front="slack"),
                placeholder,
            )
        finally:
            timer.cancel()
            placeholder.close()  # waits for a note being posted; none is posted after this

    def publish_home(self, user: str) -> None:
        if not user:
            return
        reply = self.runner.execute("help", user=user, front="slack")
        self.client.views_publish(
            user_id=user, view=home_view(reply.message, names=self.names.limited())
        )

    # -- work: modals -----------------------------------------------------------------------
    def _on_form_submit(self, ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        """Runs before the ack, so a usage error can be shown on the form itself."""
        user = str((body.get("user") or {}).get("id") or "")
        key = f"view:{view.get('id')}:{body.get('trigger_id') or view.get('hash')}"
        if not self.claim(key):
            ack()
            return
        try:
            metadata = json.loads(view.get("private_metadata") or "{}")
            command, secrets, first_block = form_command(view, metadata)
        except (ValueError, KeyError, TypeError):
            log.warning("slack.bad_form_submission", view=view.get("id"))
            ack()
            return
        channel = metadata.get("channel") or None
        queue = list(secrets)

        def read_secret(_prompt: str) -> str:
            if not queue:
                raise UsageError("this command reads a secret; enter it in the form's field")
            return queue.pop(0)

        target = Target(user=user, channel=channel)
        handoff = _Handoff()
        self.submit(self._run_form_command, handoff, command, target, read_secret, urgent=True)
        reply = handoff.wait(SUBMIT_WAIT)
        if reply is None:
            ack()  # a slow command: close the form now, answer when it is done
            return
        if not reply.ok and first_block and _is_usage_error(reply):
            error = str(reply.data.get("error") or reply.text).splitlines()[0]
            ack(response_action="errors", errors={first_block: error[:300]})
            return
        if reply.form is not None:
            try:
                ack(response_action="update", view=form_view(reply.form, channel=channel))
                return
            except ValueError:
                pass
        ack()
        self.submit(self.deliver, reply, target)

    def _run_form_command(
        self,
        handoff: _Handoff,
        command: str,
        target: Target,
        read_secret: Callable[[str], str],
    ) -> None:
        reply = self.runner.execute(
            command,
            user=target.user,
            channel=target.channel,
            front="slack",
            read_secret=read_secret,
            verbatim=True,  # form_command quoted every value itself
        )
        if not handoff.offer(reply):  # the submission was already acked: answer here
            self.deliver(reply, target)

    def open_form(self, form: Form, target: Target) -> bool:
        if not target.trigger_id:
            return False
        try:
            view = form_view(form, channel=target.channel)
            self.client.views_open(trigger_id=target.trigger_id, view=view)
        except (SlackApiError, ValueError) as exc:
            log.warning("slack.form_not_opened", error=_error_code(exc))
            return False
        return True

    # -- answering --------------------------------------------------------------------------
    def deliver(
        self,
        reply: Reply,
        target: Target,
        *,
        replace_original: bool = False,
        placeholder: _Placeholder | None = None,
    ) -> None:
        """Show ``reply`` to the user: modal, message and files, each with a fallback.

        A ``placeholder`` that was shown ("looking up …") is replaced by the answer, or removed
        when the answer goes elsewhere (another visibility, the card a button was on)."""
        message = reply.message
        if reply.form is not None:
            if self.open_form(reply.form, target):
                if not message.blocks:
                    message = Message()
            else:
                fallback = _form_fallback(reply.form, self.runner.prefix)
                message = Message(list(message.blocks) + fallback.blocks)
        if reply.files:  # files first, so the answer can say where they went
            direct = self.upload(target, reply.files, visibility=reply.visibility)
            if direct:
                names = ", ".join(f"`{name}`" for name in direct)
                message = Message(
                    [*message.blocks, Context(f"📬 {names} sent to you in a DM.")],
                    fallback=message.fallback,
                )
        if placeholder is not None and placeholder.shown:
            if message.blocks and placeholder.replace(message, reply.visibility, replace_original):
                return
            placeholder.remove()
        if message.blocks:
            self.answer(
                target,
                message,
                visibility=reply.visibility,
                replace_original=replace_original,
            )

    def answer(
        self,
        target: Target,
        message: Message,
        *,
        visibility: str = "ephemeral",
        replace_original: bool = False,
    ) -> None:
        """response_url first (it works even where the bot is not a member), else the API."""
        payload = render_message(message, names=self.names.limited())
        if target.response_url and self._respond(
            target.response_url, payload, visibility, replace_original
        ):
            return
        try:
            if visibility == "in_channel" and target.channel:
                self.client.chat_postMessage(
                    channel=target.channel, thread_ts=target.thread_ts, **payload
                )
                return
            if target.channel:
                self.client.chat_postEphemeral(
                    channel=target.channel, user=target.user, thread_ts=target.thread_ts, **payload
                )
                return
        except SlackApiError as exc:
            if _error_code(exc) not in _NO_CHANNEL:
                log.warning("slack.answer_failed", error=_error_code(exc), user=target.user)
        self.direct_message(target.user, payload)

    def _respond(
        self, url: str, payload: dict[str, Any], visibility: str, replace_original: bool
    ) -> bool:
        hook = WebhookClient(url, timeout=10, retry_handlers=list(self._webhook_retries))
        try:
            response = hook.send(
                text=payload["text"],
                blocks=payload["blocks"],
                response_type=None if replace_original else visibility,
                replace_original=True if replace_original else None,
            )
        except Exception as exc:  # network trouble: fall back to the Web API
            log.warning("slack.respond_failed", error=type(exc).__name__)
            return False
        if response.status_code != 200:
            log.warning("slack.respond_failed", status=response.status_code, body=response.body)
            return False
        return True

    def direct_message(self, user: str, payload: dict[str, Any]) -> None:
        if not user:
            return
        try:
            self.client.chat_postMessage(channel=self.dm_channel(user), **payload)
        except SlackApiError as exc:
            log.warning("slack.dm_failed", error=_error_code(exc), user=user)

    def dm_channel(self, user: str) -> str:
        return str(self.client.conversations_open(users=user)["channel"]["id"])

    def upload(self, target: Target, files: list[Attachment], *, visibility: str) -> list[str]:
        """Files of an ephemeral answer go to the user's DM (a channel upload is public);
        others to the channel, or the DM when the bot cannot post there. Returns the names of
        the files sent to the DM from elsewhere, for the answer to say so."""
        channel = target.channel if visibility == "in_channel" else None
        direct: list[str] = []
        for attachment in files:
            kwargs = {
                "content": attachment.content,
                "filename": attachment.filename,
                "title": attachment.title or attachment.filename,
            }
            try:
                if channel:
                    try:
                        self.client.files_upload_v2(
                            channel=channel, thread_ts=target.thread_ts, **kwargs
                        )
                        continue
                    except SlackApiError as exc:
                        if _error_code(exc) not in _NO_CHANNEL:
                            raise
                dm = self.dm_channel(target.user)
                self.client.files_upload_v2(channel=dm, **kwargs)
                if dm != target.channel:
                    direct.append(attachment.filename)
            except SlackApiError as exc:
                log.warning("slack.upload_failed", error=_error_code(exc), file=attachment.filename)
                self.answer(
                    target,
                    Message().text(f"⚠️ Could not upload `{attachment.filename}`: {exc.response}"),
                )
        return direct


# -- helpers -------------------------------------------------------------------------------
class _Placeholder:
    """The "⏳ Looking up …" note of a slow command, and how to replace it with the answer.

    Slash commands (a response_url of their own): an ephemeral note that the answer replaces
    (``replace_original``). Mentions: a note in the thread, edited into the answer
    (``chat.update``) when the answer is for the channel, else deleted. Buttons: the response_url
    replaces the message the button was on, not a note, so the note is an ephemeral that says
    the answer follows.
    """

    def __init__(self, front: SlackFront, target: Target, text: str) -> None:
        self.front = front
        self.target = target
        self.text = text
        self.shown = False
        self._closed = False
        self._lock = threading.Lock()
        self._ts: str | None = None  # a mention's note in the thread

    @property
    def _slash(self) -> bool:
        return self.target.slash and bool(self.target.response_url)

    def show(self) -> None:
        with self._lock:
            if self._closed:
                return
            what = shorten(self.text, 80) or "help"
            tail = " The answer replaces this note." if self._slash else ""
            note = Message(fallback=f"Looking up {what}…").context(
                f"⏳ Looking up `{what}` …{tail}"
            )
            payload = render_message(note)
            try:
                if self.target.response_url:
                    self.shown = self.front._respond(
                        self.target.response_url, payload, "ephemeral", False
                    )
                elif self.target.channel:
                    posted = self.front.client.chat_postMessage(
                        channel=self.target.channel, thread_ts=self.target.thread_ts, **payload
                    )
                    self._ts = str(posted["ts"])
                    self.shown = True
            except (SlackApiError, OSError) as exc:
                log.info("slack.placeholder_failed", error=_error_code(exc))

    def close(self) -> None:
        with self._lock:
            self._closed = True

    def replace(self, message: Message, visibility: str, replace_original: bool) -> bool:
        """Put the answer where the note is; False when it must go elsewhere."""
        target = self.target
        if self._slash and visibility == "ephemeral" and target.response_url:
            payload = render_message(message, names=self.front.names.limited())
            return self.front._respond(target.response_url, payload, "ephemeral", True)
        if self._ts and visibility == "in_channel" and target.channel:
            payload = render_message(message, names=self.front.names.limited())
            try:
                self.front.client.chat_update(channel=target.channel, ts=self._ts, **payload)
                return True
            except SlackApiError as exc:
                log.info("slack.placeholder_update_failed", error=_error_code(exc))
        return False

    def remove(self) -> None:
        """Take the note away (the answer is shown elsewhere)."""
        target = self.target
        try:
            if self._slash and target.response_url:
                WebhookClient(target.response_url, timeout=10).send_dict({"delete_original": True})
            elif self._ts and target.channel:
                self.front.client.chat_delete(channel=target.channel, ts=self._ts)
        except (SlackApiError, OSError) as exc:
            log.info("slack.placeholder_delete_failed", error=_error_code(exc))


class _Handoff:
    """Passes a reply from the pool to a waiting ack, or tells the pool nobody waits any more."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._abandoned = False
        self._reply: Reply | None = None

    def offer(self, reply: Reply) -> bool:
        with self._lock:
            if self._abandoned:
                return False
            self._reply = reply
            self._done.set()
            return True

    def wait(self, timeout: float) -> Reply | None:
        self._done.wait(timeout)
        with self._lock:
            if not self._done.is_set():
                self._abandoned = True
            return self._reply


def _action_target(body: dict[str, Any]) -> Target:
    container = body.get("container") or {}
    channel = (body.get("channel") or {}).get("id") or container.get("channel_id") or None
    message = body.get("message") or {}
    return Target(
        user=str((body.get("user") or {}).get("id") or ""),
        channel=channel,
        response_url=body.get("response_url"),
        trigger_id=body.get("trigger_id"),
        thread_ts=message.get("thread_ts"),
    )


def form_command(
    view: dict[str, Any], metadata: dict[str, Any]
) -> tuple[str, list[str], str | None]:
    """(command text, secret values in order, first input block id) of a submitted modal.

    Values are shell-quoted after ``--<name>``; secret fields become ``--<name> -`` and their
    values are returned separately, for ``read_secret``.
    """
    values = (view.get("state") or {}).get("values") or {}
    secret_names = set(metadata.get("secret") or [])
    parts = [str(metadata["command"])]
    secrets: list[str] = []
    first_block: str | None = None
    for block in view.get("blocks") or []:
        block_id = str(block.get("block_id") or "")
        if block.get("type") != "input" or not block_id.startswith(FIELD_BLOCK_PREFIX):
            continue
        first_block = first_block or block_id
        name = block_id[len(FIELD_BLOCK_PREFIX) :]
        state = (values.get(block_id) or {}).get(FIELD_ACTION) or {}
        value = state.get("value")
        if state.get("type") == "static_select":  # a select menu: the chosen option's value
            value = (state.get("selected_option") or {}).get("value")
        if value is None or value == "":
            continue
        if name in secret_names:
            secrets.append(str(value))
            parts.append(f"--{name} -")
        else:
            parts.append(f"--{name} {shlex.quote(str(value))}")
    return " ".join(parts), secrets, first_block


def _is_usage_error(reply: Reply) -> bool:
    """Usage errors are the ones rendered with a ``Usage:`` line (see ``Reply.error``)."""
    return any(
        isinstance(block, Context) and block.text.startswith("Usage:")
        for block in reply.message.blocks
    )


def _form_fallback(form: Form, prefix: str) -> Message:
    options = " ".join(f"--{f.name} {'-' if f.secret else '<' + f.name + '>'}" for f in form.fields)
    return Message(fallback=form.title).context(
        f"The form could not be opened; run `{prefix} {form.command} {options}`".rstrip() + "."
    )


def _error_code(exc: Exception) -> str:
    if isinstance(exc, SlackApiError):
        try:
            return str(exc.response.get("error") or exc.response.status_code)
        except Exception:
            return "unknown"
    return type(exc).__name__


__all__ = ["SlackFront", "Target", "fallback_text", "form_command"]
