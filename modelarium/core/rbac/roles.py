"""The three roles and their order: viewer < operator < admin."""

from __future__ import annotations

from enum import IntEnum

from modelarium.core.errors import UsageError


class Role(IntEnum):
    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3

    @classmethod
    def parse(cls, value: str | Role) -> Role:
        if isinstance(value, Role):
            return value
        try:
            return cls[value.strip().upper()]
        except KeyError:
            raise UsageError(f"unknown role {value!r}; roles are viewer, operator, admin") from None

    def __str__(self) -> str:
        return self.name.lower()
