"""The terminal front: the same commands as Slack, typed at a prompt (like Errbot's text backend).

Replies and the messages the daemon posts are printed as text; buttons get numbers you press by
typing the number; forms (Slack modals) become prompts, with secrets read without echo.
"""

from __future__ import annotations

import getpass
import shlex
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from modelarium.bot.dispatch import CommandRunner
from modelarium.bot.reply import Attachment, Reply
from modelarium.bot.shell.exports import save_attachment
from modelarium.bot.shell.render import render, to_terminal, visible
from modelarium.core.messages import Button, Form, Message, Progress

META_HELP = """Shell commands:
  <command>        run a Modelarium command (the same as /model <command> in Slack)
  <number>         press the button shown as [number]
  :user <id>       act as another user (your role follows them)
  :whoami          who you are acting as
  :quit            leave (Ctrl-D works too)"""


class TerminalSender:
    """Shows outbox messages (approval cards, job progress, alerts) in the terminal."""

    name = "terminal"

    def __init__(self, console: Console) -> None:
        self._console = console
        self._counter = 0
        self._lock = threading.Lock()

    def send(
        self, channel: str | None, message: Message, ref: str | None, *, thread: str | None = None
    ) -> str:
        self._console.show_notification(message, update=ref is not None, channel=channel)
        if ref is not None:
            return ref
        with self._lock:
            self._counter += 1
            return f"term-{self._counter}"


class Console:
    def __init__(
        self,
        runner: CommandRunner,
        user: str,
        *,
        out: TextIO | None = None,
        ask: Callable[[str], str] | None = None,
        ask_secret: Callable[[str], str] | None = None,
        export_dir: Path | None = None,
    ) -> None:
        self.runner = runner
        self.user = user
        self.out = out or sys.stdout
        self._ask = ask or input
        self._ask_secret = ask_secret or getpass.getpass
        self.export_dir = export_dir or runner.core.settings.data_dir / "exports"
        self.actions: dict[int, Button] = {}
        self._next_number = 1
        self._print_lock = threading.Lock()
        self.after_command: Callable[[], object] | None = None
        """Runs after each command: shows the messages it caused (approval cards, job cards)
        right after its reply instead of at the next outbox poll."""

    # -- output ---------------------------------------------------------------------------------

    def _print(self, text: str) -> None:
        with self._print_lock:
            print(visible(text), file=self.out, flush=True)

    def _show(self, message: Message, prefix: str = "") -> None:
        text, buttons = render(message, self._next_number)
        for button in buttons:
            self.actions[self._next_number] = button
            self._next_number += 1
        self._print(prefix + text if prefix else text)

    def show_reply(self, reply: Reply) -> None:
        self._show(reply.message)
        for attachment in reply.files:
            self._print(f"📎 saved {self.save(attachment)}")

    def show_notification(self, message: Message, *, update: bool, channel: str | None) -> None:
        where = f" #{channel}" if channel else ""
        if update and _is_progress_only(message):
            self._print(f"↻{where} " + to_terminal(_one_line(message)))
            return
        self._show(message, prefix=f"── {'updated' if update else 'new'} message{where} ──\n")

    def save(self, attachment: Attachment) -> Path:
        return save_attachment(self.export_dir, attachment)

    # -- input ----------------------------------------------------------------------------------

    def handle(self, line: str) -> bool:
        """Process one input line; False means quit."""
        line = line.strip()
        if not line:
            return True
        if line in (":quit", ":q", ":exit", "exit", "quit"):
            return False
        if line in (":help", ":h", "?"):
            self._print(META_HELP)
            return True
        if line.startswith(":user"):
            parts = line.split()
            if len(parts) != 2:
                self._print("usage: :user <id>")
            else:
                self.user = parts[1].lstrip("@")
                self._print(
                    f"now acting as {self.user} ({self.runner.core.rbac.role_of(self.user)})"
                )
            return True
        if line == ":whoami":
            self._print(f"{self.user} ({self.runner.core.rbac.role_of(self.user)})")
            return True
        if line.isdigit():
            button = self.actions.get(int(line))
            if button is None:
                self._print(f"no button [{line}] on screen")
                return True
            self.press(button)
            return True
        self.run(line)  # a leading `/model` is the runner's to drop, as for every front
        return True

    def press(self, button: Button) -> None:
        if button.confirm and not self._confirm(button.confirm):
            self._print("cancelled")
            return
        if button.form is not None:
            self.run_form(button.form)
            return
        self.run(button.command)

    def run(self, text: str) -> Reply:
        self.actions.clear()
        self._next_number = 1
        reply = self.runner.execute(
            text, user=self.user, front="shell", read_secret=self._ask_secret
        )
        if reply.form is not None:
            if reply.message.blocks:
                self.show_reply(reply)
            return self.run_form(reply.form)
        self.show_reply(reply)
        self._after()
        return reply

    def _after(self) -> None:
        if self.after_command is not None:
            try:
                self.after_command()
            except Exception as exc:  # showing notifications must never break the prompt
                self._print(f"(could not show new messages: {exc})")

    def run_form(self, form: Form) -> Reply:
        self._print(f"{form.title}:")
        parts = [form.command]
        secrets: list[str] = []
        for field in form.fields:
            label = field.label + (" (optional)" if field.optional else "")
            if field.secret:
                value = self._ask_secret(f"  {label}: ")
                if value:
                    secrets.append(value)
                    parts.append(f"--{field.name} -")
                continue
            if field.options:
                label += f" [{' / '.join(field.options)}]"
            value = self._ask(f"  {label}: ")
            if not value and field.initial:
                value = field.initial
            if value:
                parts.append(f"--{field.name} {shlex.quote(value)}")
        queue = list(secrets)

        def read_secret(_prompt: str) -> str:
            return queue.pop(0) if queue else self._ask_secret(_prompt)

        self.actions.clear()
        self._next_number = 1
        reply = self.runner.execute(
            " ".join(parts), user=self.user, front="shell", read_secret=read_secret
        )
        self.show_reply(reply)
        self._after()
        return reply

    def _confirm(self, question: str) -> bool:
        answer = self._ask(f"{to_terminal(question)} [y/N] ")
        return answer.strip().lower() in ("y", "yes")

    # -- the interactive loop -------------------------------------------------------------------

    def loop(self, history_file: Path | None = None) -> None:
        if not sys.stdin.isatty():
            # Piped input (scripts, tests): plain lines, no prompt or line editing.
            def ask(prompt: str) -> str:
                self._print(prompt.rstrip())  # the question still shows in a transcript
                return sys.stdin.readline().rstrip("\n")

            self._ask = ask
            self._ask_secret = lambda _prompt: sys.stdin.readline().rstrip("\n")
            for line in sys.stdin:
                if not self.handle(line):
                    break
            return
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory, InMemoryHistory
        from prompt_toolkit.patch_stdout import patch_stdout

        history = FileHistory(str(history_file)) if history_file else InMemoryHistory()
        session: PromptSession[str] = PromptSession(history=history)
        self._print("Modelarium shell. Type `help` for commands, `:help` for shell keys.")
        with patch_stdout(raw=True):
            self.out = sys.stdout
            while True:
                try:
                    line = session.prompt(f"{self.user}> ")
                except KeyboardInterrupt:
                    continue
                except EOFError:
                    break
                if not self.handle(line):
                    break


def _is_progress_only(message: Message) -> bool:
    return any(isinstance(block, Progress) for block in message.blocks)


def _one_line(message: Message) -> str:
    from modelarium.core.messages import Header, progress_bar

    title = next((b.text for b in message.blocks if isinstance(b, Header)), message.plain_text())
    bar = next(
        (
            f"{progress_bar(b.fraction)} {b.label}"
            for b in message.blocks
            if isinstance(b, Progress)
        ),
        "",
    )
    return f"{title} {bar}".strip()
