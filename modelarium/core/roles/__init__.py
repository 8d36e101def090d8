"""The roles capability: grants and revocations as changes (the rbac engine decides who may)."""
