"""Reading what a user hands a command: ``--text`` or ``--file``, and asking for it when missing.

One place for every command that takes a document (Modelfiles, endpoint imports), so the rules
are the same everywhere: ``--file`` only where the caller is on this machine, a size limit, UTF-8,
and a form where the front can show one.
"""

from __future__ import annotations

from pathlib import Path

from modelarium.bot.commands.context import CommandContext
from modelarium.bot.reply import Reply
from modelarium.core.errors import UsageError
from modelarium.core.messages import Form, FormField, Message


def read_document(
    ctx: CommandContext, text: str | None, file: str | None, *, limit: int, what: str = "text"
) -> tuple[bytes | str | None, str]:
    """(content, source) from ``--text`` (a str, "paste") or ``--file`` (bytes, "file");
    (None, "none") when neither was given."""
    if text is not None and file is not None:
        raise UsageError("give --text or --file, not both")
    if file is None:
        return text, ("paste" if text is not None else "none")
    if ctx.remote:
        hint = " (or paste it into the form)" if ctx.traits.forms else ""
        raise UsageError(
            f"--file reads a file on the bot's machine; {ctx.traits.where}, give the {what} "
            f"with --text{hint}"
        )
    path = Path(file).expanduser()
    try:
        if path.is_dir():
            raise UsageError(f"{file} is a folder, not a file")
        size = path.stat().st_size
        if size > limit:
            raise UsageError(f"{file} is {size} bytes; the limit is {limit}")
        return path.read_bytes(), "file"
    except OSError as exc:
        raise UsageError(f"cannot read {file}: {exc.strerror or exc}") from None


def ask_for_document(
    ctx: CommandContext,
    *,
    title: str,
    command: str,
    label: str,
    placeholder: str,
    what: str = "text",
    extra: tuple[FormField, ...] = (),
    submit: str = "Submit",
) -> Reply:
    """A form with a multi-line field where the front can show one; elsewhere, say which flag."""
    if not ctx.traits.forms:
        flags = "--text '...'" if ctx.remote else "--file PATH (or --text '...')"
        raise UsageError(f"give the {what} with {flags}")
    fields = (FormField("text", label, multiline=True, placeholder=placeholder), *extra)
    return Reply(Message(), form=Form(title=title, command=command, fields=fields, submit=submit))
