"""`modelarium cmd`: one command, printed as text or JSON, with an exit code for scripts."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import TextIO

from modelarium.bot.dispatch import CommandRunner
from modelarium.bot.reply import Reply
from modelarium.bot.shell.exports import save_attachment
from modelarium.bot.shell.render import to_terminal, visible
from modelarium.core.messages import iso_time, render_plain


def envelope(reply: Reply) -> tuple[bool, str, dict[str, object]]:
    """(ok, text, data) of a reply for scripts: `cmd --json` and the HTTP API print the same.

    A failure's data carries ``error`` (one line) and ``code`` (how it ended: ``usage``,
    ``denied``, ``not_found``...). A reply that asks for input (a Slack form) is a usage
    failure here: scripts pass flags instead.
    """
    ok = reply.ok and reply.form is None
    data = dict(reply.data)
    text = visible(render_plain(reply.message, text_filter=to_terminal))
    if reply.form is not None:
        needed = ", ".join(f"--{f.name}" for f in reply.form.fields if not f.optional)
        error = f"this command needs input; pass {needed}" if needed else "this command needs input"
        data.setdefault("error", error)
    if not ok:
        data.setdefault("error", text.splitlines()[0] if text else "failed")
        data["code"] = "usage" if reply.form is not None else reply.outcome
    return ok, text, data


def _json_value(value: object) -> object:
    """Times as ISO 8601 with their zone (``str`` would give ``2026-12-06 08:30:00+00:00``)."""
    if isinstance(value, datetime):
        return iso_time(value, seconds=True)
    return str(value)


def run_once(
    runner: CommandRunner,
    text: str,
    *,
    user: str,
    as_json: bool,
    stdin: TextIO | None = None,
    out: TextIO | None = None,
) -> int:
    out = out or sys.stdout
    stdin = stdin or sys.stdin

    def read_secret(_prompt: str) -> str:
        # `--api-key -` means: the secret is on standard input (never in argv or history).
        return stdin.readline().rstrip("\r\n")

    reply = runner.execute(text, user=user, front="cmd", read_secret=read_secret)
    saved = []
    for attachment in reply.files:
        path = save_attachment(runner.core.settings.data_dir / "exports", attachment)
        saved.append(str(path.resolve()))
    ok, text_out, data = envelope(reply)
    return print_envelope(ok, text_out, data, saved, as_json=as_json, out=out)


def print_envelope(
    ok: bool,
    text: str,
    data: dict[str, object],
    saved: list[str],
    *,
    as_json: bool,
    out: TextIO,
) -> int:
    """What `cmd` prints (locally, or for `--server`) and its exit code."""
    if as_json:
        if saved:
            data = {**data, "files": saved}
        json.dump({"ok": ok, "text": text, "data": data}, out, default=_json_value)
        out.write("\n")
    else:
        out.write(text + "\n")
        for path in saved:
            out.write(f"saved {path}\n")
        error = to_terminal(str(data.get("error") or ""))
        if not ok and error and error not in text:  # e.g. "this command needs input; pass --x"
            out.write(visible(f"error: {error}") + "\n")
    return 0 if ok else 1
