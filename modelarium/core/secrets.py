"""Keys for encryption at rest (Fernet/MultiFernet) and for signing the audit log.

Production sets ``MODELARIUM_ENCRYPTION_KEYS`` (newest first), ``MODELARIUM_AUDIT_HMAC_KEY`` and
``MODELARIUM_API_TOKEN_PEPPER`` (mixed into API token hashes). The embedded default generates
each one that is unset once into ``$MODELARIUM_DATA_DIR/secrets.json`` (mode 0600), so
``make run`` works on a fresh machine without leaving secrets in clear text in the database.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from modelarium.config.settings import Settings
from modelarium.core.errors import ModelariumError
from modelarium.core.logging import get_logger

log = get_logger(__name__)

SECRETS_FILE = "secrets.json"


class SecretError(ModelariumError):
    """A stored secret cannot be decrypted with the configured keys."""


class Keyring:
    def __init__(
        self,
        encryption_keys: list[str],
        audit_key: bytes,
        path: Path | None,
        token_pepper: bytes,
    ) -> None:
        if not encryption_keys:
            raise SecretError("no encryption key configured")
        self._keys = list(encryption_keys)
        self.audit_key = audit_key
        self.token_pepper = token_pepper
        """Keys API token hashes (HMAC): a leaked database alone cannot verify guesses."""
        self._path = path
        self._fernet = MultiFernet([Fernet(k.encode()) for k in self._keys])

    @classmethod
    def from_settings(cls, settings: Settings) -> Keyring:
        env_keys = [k.get_secret_value() for k in settings.encryption_keys]
        env_audit = settings.audit_hmac_key.get_secret_value() if settings.audit_hmac_key else None
        env_pepper = (
            settings.api_token_pepper.get_secret_value() if settings.api_token_pepper else None
        )
        path = settings.data_dir / SECRETS_FILE
        stored = _read(path) if not (env_keys and env_audit and env_pepper) else {}
        missing_keys = not env_keys and not stored.get("encryption_keys")
        missing_audit = not env_audit and not stored.get("audit_hmac_key")
        missing_pepper = not env_pepper and not stored.get("api_token_pepper")
        if missing_keys or missing_audit or missing_pepper:
            stored = _generate(path, stored)
        keys = env_keys or stored["encryption_keys"]
        audit = env_audit or stored["audit_hmac_key"]
        pepper = env_pepper or stored["api_token_pepper"]
        if env_keys and not env_pepper:
            log.warning(
                "secrets.pepper_generated",
                detail="MODELARIUM_API_TOKEN_PEPPER is unset: using one kept in the data dir; "
                "replicas that do not share it refuse each other's API tokens",
            )
        for key in keys:
            try:
                Fernet(key.encode())
            except (ValueError, TypeError):
                raise SecretError(
                    "MODELARIUM_ENCRYPTION_KEYS: each key must be 32 url-safe base64-encoded bytes "
                    "(make one with: modelarium keys generate)"
                ) from None
        return cls(keys, audit.encode(), None if env_keys else path, pepper.encode())

    @property
    def primary_fingerprint(self) -> str:
        return base64.urlsafe_b64encode(
            hashlib.sha256(self._keys[0].encode()).digest()[:6]
        ).decode()

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise SecretError(
                "a stored secret cannot be decrypted with the configured keys"
            ) from None

    def reencrypt(self, token: str) -> str:
        """The same secret under the primary key (MultiFernet.rotate)."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken:
            raise SecretError(
                "a stored secret cannot be decrypted with the configured keys"
            ) from None

    def add_primary_key(self) -> bool:
        """Generate a new primary key (file-managed keys only). Old keys still decrypt."""
        if self._path is None:
            return False
        new_key = Fernet.generate_key().decode()
        self._keys.insert(0, new_key)
        stored = _read(self._path)
        stored["encryption_keys"] = self._keys
        _write(self._path, stored)
        self._fernet = MultiFernet([Fernet(k.encode()) for k in self._keys])
        return True

    def retire_old_keys(self) -> None:
        """After every secret was re-encrypted, keep only the primary key in the file."""
        if self._path is None:
            return
        self._keys = self._keys[:1]
        stored = _read(self._path)
        stored["encryption_keys"] = self._keys
        _write(self._path, stored)
        self._fernet = MultiFernet([Fernet(k.encode()) for k in self._keys])


def generate_key() -> str:
    return Fernet.generate_key().decode()


def _read(path: Path) -> dict[str, object]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError:
        raise SecretError(f"{path} is corrupt; restore it from backup") from None
    return data if isinstance(data, dict) else {}


def _generate(path: Path, stored: dict[str, object]) -> dict[str, object]:
    data = dict(stored)
    data.setdefault("encryption_keys", [Fernet.generate_key().decode()])
    data.setdefault("audit_hmac_key", secrets.token_urlsafe(32))
    data.setdefault("api_token_pepper", secrets.token_urlsafe(32))
    _write(path, data)
    return data


def _write(path: Path, data: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle)
    os.replace(tmp, path)
