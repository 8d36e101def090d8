"""The one command path: unknown verbs, usage errors, denials, crashes, audit of everything."""

from __future__ import annotations

from modelarium.core.rbac import Role


def test_help_lists_only_what_the_caller_may_use(runner):
    viewer = runner.execute("help", user="U_VIEWER")
    admin = runner.execute("help", user="U_ADMIN")
    assert viewer.ok and admin.ok
    assert "role grant" not in viewer.data["commands"]
    assert "role grant" in admin.data["commands"]
    assert set(viewer.data["commands"]) < set(admin.data["commands"])
    assert "need a higher role" in viewer.text


def test_help_for_one_command_shows_usage_and_examples(runner):
    reply = runner.execute("help role grant", user="U_ADMIN")
    assert reply.ok
    assert reply.data["usage"] == "/model role grant <user> <role>"
    assert "role grant @alice operator" in reply.text


def test_unknown_command_suggests(runner):
    reply = runner.execute("aprovals", user="U_ADMIN")
    assert not reply.ok
    assert "Did you mean `approvals`" in reply.text
    assert reply.text.count("\n") <= 1


def test_group_word_lists_subcommands(runner):
    reply = runner.execute("role", user="U_ADMIN")
    assert not reply.ok
    assert "`role grant`" in reply.text and "`role list`" in reply.text


def test_bad_arguments_give_one_line_and_usage(runner):
    reply = runner.execute("role grant <@U1> emperor", user="U_ADMIN")
    assert not reply.ok
    assert reply.data["error"].startswith("<role> must be one of viewer, operator, admin")
    assert "Usage: `/model role grant <user> <role>`" in reply.text
    assert "Traceback" not in reply.text


def test_denied_commands_are_refused_and_audited(runner, core):
    reply = runner.execute("role grant <@U2> operator", user="U_NOBODY")
    assert not reply.ok
    assert "needs the admin role; you are viewer" in reply.data["error"]
    assert core.rbac.role_of("U2") == Role.VIEWER
    entry = core.audit.query(user="U_NOBODY", limit=1)[0]
    assert entry.action == "command.role.grant" and entry.result == "denied"


def test_a_crashing_handler_becomes_an_error_with_a_reference(core):
    from modelarium.bot.commands.registry import Registry
    from modelarium.bot.dispatch import CommandRunner

    private = Registry()

    @private.command("boom", help="always fails")
    def boom(ctx):
        raise RuntimeError("kaboom secret-detail")

    reply = CommandRunner(core, private).execute("boom", user="U_ADMIN")
    assert not reply.ok
    assert "Something went wrong on our side (ref " in reply.text
    assert "kaboom" not in reply.text and "Traceback" not in reply.text
    assert core.audit.query(limit=1)[0].result == "error"


def test_secret_flag_values_never_reach_the_audit_log(runner, core):
    reply = runner.execute(
        "role grant <@U3> operator --api-key sk-verysecret123456789", user="U_ADMIN"
    )
    assert not reply.ok  # role grant has no --api-key flag: a usage error, still audited
    entry = core.audit.query(limit=1)[0]
    assert entry.result == "usage"
    text = entry.params["text"]
    assert "sk-verysecret" not in text
    assert "--api-key [REDACTED]" in text


def test_operator_grant_is_immediate(runner, core):
    reply = runner.execute("role grant <@U4|dana> operator", user="U_ADMIN")
    assert reply.ok and reply.data["user"] == "U4" and reply.data["role"] == "operator"
    assert reply.data["approval"] is None and reply.data["status"] == "succeeded"
    assert core.rbac.role_of("U4") == Role.OPERATOR
    listing = runner.execute("role list", user="U_ADMIN")
    [dana] = [a for a in listing.data["assignments"] if a["user"] == "U4"]
    assert (dana["role"], dana["source"]) == ("operator", "granted by U_ADMIN")
    revoked = runner.execute("role revoke U4", user="U_ADMIN")
    assert revoked.ok and core.rbac.role_of("U4") == Role.VIEWER


def test_overlong_command_text_is_one_clear_error(runner, core):
    """A 40,000-character command is refused before parsing, redaction or the audit log."""
    from modelarium.bot.dispatch import MAX_COMMAND_CHARS

    before = len(core.audit.query(limit=1000))
    reply = runner.execute("role grant <@U2> operator " + "x" * 40_000, user="U_NOBODY")
    assert not reply.ok
    error = reply.data["error"]
    assert "\n" not in error and "too long" in error and str(MAX_COMMAND_CHARS) in error
    assert len(reply.text) < 500
    assert len(core.audit.query(limit=1000)) == before
    assert runner.execute("whoami " + " " * 10, user="U_NOBODY").ok


def test_text_copied_from_a_usage_line_runs_with_its_prefix(runner):
    """Every usage line starts with `/model`; pasted into `cmd`, the API or Slack it runs."""
    plain = runner.execute("whoami", user="U_ADMIN")
    prefixed = runner.execute("/model whoami", user="U_ADMIN")
    assert prefixed.ok and prefixed.text == plain.text
    assert (
        runner.execute("/MODEL help", user="U_ADMIN").data
        == runner.execute("help", user="U_ADMIN").data
    )
    usage = runner.execute("/model approve", user="U_ADMIN")
    assert not usage.ok and usage.outcome == "usage"
    assert "Unknown command" not in usage.text


def test_jobs_of_an_unknown_kind_list_the_kinds(runner, core):
    reply = runner.execute("jobs --kind bogus", user="U_ADMIN")
    assert not reply.ok and reply.outcome == "usage"
    assert "no job kind 'bogus'; kinds: " in reply.text
    assert all(kind in reply.text for kind in core.jobs.kinds)
    assert "No jobs." not in reply.text
    some = next(iter(core.jobs.kinds))
    assert runner.execute(f"jobs --kind {some}", user="U_ADMIN").ok


def test_help_is_grouped_by_area_with_an_example_per_command(runner):
    from modelarium.bot.commands.registry import AREAS

    reply = runner.execute("help", user="U_ADMIN")
    areas = reply.data["areas"]
    order = list(dict.fromkeys(AREAS.values()))
    assert list(areas) == [a for a in order if a in areas]  # the areas, in their order
    assert "install" in areas["Weights"]
    assert "jobs retry" in areas["Jobs and the daemon"]
    assert sum(len(v) for v in areas.values()) == len(reply.data["commands"])
    for area in areas:
        assert area in reply.text
    fit = next(line for line in reply.text.splitlines() if line.startswith("`/model fit`"))
    assert "e.g. `/model fit " in fit
    viewer = runner.execute("help", user="U_VIEWER")
    assert "jobs retry" not in [n for names in viewer.data["areas"].values() for n in names]


def test_every_command_has_an_example_that_parses():
    import modelarium.bot.commands  # noqa: F401
    from modelarium.bot.commands.parsing import bind, tokenize
    from modelarium.bot.commands.registry import registry

    for command in registry.commands():
        assert command.example, f"{command.name} has no example"
        assert command.area != "Other", f"{command.name} has no area"
        for example in command.examples:
            words = tokenize(example)
            found, consumed = registry.resolve(words)
            assert found is command, example
            bind(command, words[consumed:])  # raises on an example the grammar refuses
