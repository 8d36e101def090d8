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
    assert reply.ok and reply.data == {"user": "U4", "role": "operator"}
    assert core.rbac.role_of("U4") == Role.OPERATOR
    listing = runner.execute("role list", user="U_ADMIN")
    assert {"user": "U4", "role": "operator", "source": "granted by U_ADMIN"} in (
        listing.data["assignments"]
    )
    revoked = runner.execute("role revoke U4", user="U_ADMIN")
    assert revoked.ok and core.rbac.role_of("U4") == Role.VIEWER
