"""Slack user groups (``@ml-admins``), for syncing roles from group membership."""

from __future__ import annotations

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from modelarium.core.errors import NotFoundError, UpstreamError


def members_of(client: WebClient, group_id: str) -> list[str]:
    """User ids in the user group ``group_id`` (``S…``), disabled groups included."""
    try:
        response = client.usergroups_users_list(usergroup=group_id, include_disabled=True)
    except SlackApiError as exc:
        error = str(exc.response.get("error") or exc.response.status_code)
        if error == "no_such_subteam":
            raise NotFoundError(f"no Slack user group {group_id}") from exc
        raise UpstreamError(f"Slack usergroups.users.list {group_id}: {error}") from exc
    return [str(user) for user in response.get("users") or []]
