"""`/model backups`: the verified backups of Modelarium's database (admin).

Backups are made by the daemon on schedule and by `modelarium backup create`; a restore is an
offline operation of the `modelarium` command (`modelarium backup restore <name>`)."""

from __future__ import annotations

from modelarium.bot.commands.context import CommandContext
from modelarium.bot.commands.parsing import positive_int
from modelarium.bot.commands.registry import registry
from modelarium.bot.commands.spec import Flag
from modelarium.bot.pagination import page_buttons, paginate
from modelarium.bot.reply import Reply
from modelarium.config.units import format_duration, format_size
from modelarium.core.messages import Message, timestamp
from modelarium.core.rbac import Role


@registry.command(
    "backups",
    help="Verified backups of the database: when, size, checksum, audit entries, retention",
    role=Role.ADMIN,
    flags=[
        Flag("location", "a backup location (default: MODELARIUM_BACKUP_LOCATION)", metavar="L"),
        Flag("page", "page number", positive_int),
    ],
    examples=["backups", "backups --location /mnt/backups"],
    audit=False,
)
def backups(ctx: CommandContext, location: str | None, page: int | None) -> Reply:
    service = ctx.core.backups
    target = service.target(location)
    infos = service.list(location)
    retention = service.retention(location)
    current = paginate(infos, page)
    message = Message(fallback=f"{len(infos)} backup(s) in {target.label}").header("Backups")
    settings = ctx.core.settings
    schedule = (
        f"every {format_duration(settings.schedule_backup)}, keeping {settings.backup_keep_daily} "
        f"daily and {settings.backup_keep_weekly} weekly"
        if settings.schedule_backup > 0
        else "no scheduled backups (MODELARIUM_SCHEDULE_BACKUP=0)"
    )
    message.context(f"`{target.label}` · {schedule}")
    if not infos:
        message.text("No backups yet. Make one with `modelarium backup create`.")
    else:
        message.table(
            ["name", "when (UTC)", "kind", "size", "audit entries", "sha256", "kept as"],
            [
                [
                    b.name,
                    timestamp(b.created_at),
                    b.kind,
                    format_size(b.size),
                    str(b.audit_entries),
                    b.sha256[:12],
                    ", ".join(retention.keep.get(b.name, ["(next prune)"])),
                ]
                for b in current.items
            ],
        )
        if current.pages > 1:
            message.context(current.label)
        command = "backups" + (f" --location {location}" if location else "")
        message.buttons(*page_buttons(current, command))
        message.context("Restore with `modelarium backup restore <name>` (bot and daemon stopped).")
    return Reply(
        message,
        data={
            "location": target.label,
            "backups": [
                {**b.to_json(), "kept": retention.keep.get(b.name, [])} for b in current.items
            ],
            "page": current.number,
            "pages": current.pages,
            "total": current.total,
        },
    )
