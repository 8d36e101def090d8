"""Names of deployments: KServe wants a DNS-1035 label (it becomes a Service and a host name)."""

from __future__ import annotations

import re

from modelarium.core.errors import UsageError

DNS_1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
MAX_NAME = 63
DEFAULT_NAME_MAX = 45
"""Derived names stay short: KServe appends ``-predictor-00001`` and more to build its objects."""


def check_name(name: str) -> str:
    """``name`` if it is a valid DNS-1035 label, else a one-line UsageError saying why."""
    if len(name) > MAX_NAME or not DNS_1035.fullmatch(name):
        raise UsageError(
            f"{name!r} is not a valid deployment name: use lowercase letters, digits and '-', "
            f"starting with a letter and ending with a letter or digit, at most {MAX_NAME} "
            "characters (a DNS-1035 label)"
        )
    return name


def default_name(repo_id: str) -> str:
    """``meta-llama/Llama-3.1-8B-Instruct`` -> ``llama-3-1-8b-instruct``."""
    base = repo_id.split("/")[-1].lower()
    base = re.sub(r"[^a-z0-9]+", "-", base).strip("-")
    if not base or not base[0].isalpha():
        base = f"m-{base}".rstrip("-")
    return base[:DEFAULT_NAME_MAX].rstrip("-")


_REPO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}")


def parse_model_ref(text: str) -> tuple[str, str | None]:
    """``org/name`` or ``org/name@revision`` -> (repo id, revision or None)."""
    repo_id, _, revision = text.strip().partition("@")
    if not _REPO_ID.fullmatch(repo_id) or "--" in repo_id or ".." in repo_id:
        raise UsageError(f"not a model id: {text!r} (expected org/name or org/name@revision)")
    if "@" in text and not revision:
        raise UsageError(f"empty revision in {text!r}")
    return repo_id, revision or None
