"""Re-encrypting every stored secret under the newest key (``modelarium keys rotate``).

Capabilities that store encrypted columns register them on ``core.secret_columns``. Rotation is
online: MultiFernet still decrypts with older keys while rows are rewritten one transaction per
table, so fronts keep working throughout.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa

if TYPE_CHECKING:
    from modelarium.core.app import Core


def rotate_all(core: Core) -> str:
    added = core.keyring.add_primary_key()
    rewritten = 0
    for column in core.secret_columns:
        table = column.class_
        key_columns = list(sa.inspect(table).primary_key)
        with core.db.transaction() as session:
            rows = session.execute(sa.select(*key_columns, column).where(column.is_not(None))).all()
            for row in rows:
                *keys, token = row
                session.execute(
                    sa.update(table)
                    .where(*[c == k for c, k in zip(key_columns, keys, strict=True)])
                    .values({column.key: core.keyring.reencrypt(token)})
                )
                rewritten += 1
    if added:
        core.keyring.retire_old_keys()
        where = "a new key was generated in the data directory"
    else:
        where = (
            "keys come from MODELARIUM_ENCRYPTION_KEYS: secrets now use its first key; "
            "remove the old keys from the variable when every replica has restarted"
        )
    core.audit.record("system", "keys.rotate", params={"rewritten": rewritten})
    return (
        f"re-encrypted {rewritten} secret(s) under key {core.keyring.primary_fingerprint}; {where}"
    )
