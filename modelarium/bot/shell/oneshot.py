"""`modelarium cmd`: one command, printed as text or JSON, with an exit code for scripts."""

from __future__ import annotations

import json
import sys
from typing import TextIO

from modelarium.bot.dispatch import CommandRunner
from modelarium.bot.shell.render import to_terminal
from modelarium.core.messages import render_plain


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
        export_dir = runner.core.settings.data_dir / "exports"
        export_dir.mkdir(parents=True, exist_ok=True)
        path = export_dir / attachment.filename
        path.write_bytes(attachment.content)
        saved.append(str(path.resolve()))
    ok = reply.ok and reply.form is None
    if reply.form is not None:
        needed = ", ".join(f"--{f.name}" for f in reply.form.fields if not f.optional)
        error = f"this command needs input; pass {needed}" if needed else "this command needs input"
        reply.data.setdefault("error", error)
    text_out = render_plain(reply.message, text_filter=to_terminal)
    if as_json:
        data = dict(reply.data)
        if saved:
            data["files"] = saved
        json.dump({"ok": ok, "text": text_out, "data": data}, out, default=str)
        out.write("\n")
    else:
        out.write(text_out + "\n")
        for path in saved:
            out.write(f"saved {path}\n")
        if reply.form is not None:
            out.write(f"error: {reply.data['error']}\n")
    return 0 if ok else 1
