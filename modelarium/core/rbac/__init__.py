"""Roles (viewer < operator < admin) and who holds them."""

from modelarium.core.rbac.roles import Role
from modelarium.core.rbac.service import RbacService, RoleAssignment

__all__ = ["RbacService", "Role", "RoleAssignment"]
