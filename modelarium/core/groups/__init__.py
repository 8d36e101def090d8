"""Model groups: champion and challengers, traffic splits, inference records, promotion."""

from modelarium.core.groups.service import EVENTS_PATH, GroupService, PickResult
from modelarium.core.groups.views import GroupView, MemberView, Rules

__all__ = ["EVENTS_PATH", "GroupService", "GroupView", "MemberView", "PickResult", "Rules"]
