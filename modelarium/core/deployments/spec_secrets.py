"""Secrets in an InferenceService spec stay in the cluster, never in Modelarium's records.

KServe's inference logger has no header to carry a credential, so a canary group's logger URL
carries its token as a query parameter. Everything Modelarium keeps or shows of a spec (the
change's plan and diff, the living message, the deployment's applied spec and history, drift
diffs) holds :data:`~modelarium.core.ports.LOGGER_TOKEN_MASK` in its place: the token is
revealed on the way to the API server and concealed again on everything read back, so the spec
Modelarium applied and the live object still compare equal.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from modelarium.core.ports import LOGGER_TOKEN_MASK

COMPONENTS = ("predictor", "transformer", "explainer")
TOKEN_PARAM = "token"


def _loggers(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    spec = obj.get("spec") if isinstance(obj, Mapping) else None
    if not isinstance(spec, Mapping):
        return []
    found = []
    for component in COMPONENTS:
        part = spec.get(component)
        logger = part.get("logger") if isinstance(part, Mapping) else None
        if isinstance(logger, dict) and isinstance(logger.get("url"), str):
            found.append(logger)
    return found


def _with_token(url: str, value: str) -> str:
    parts = urlsplit(url)
    query = [(k, value if k == TOKEN_PARAM else v) for k, v in parse_qsl(parts.query, True)]
    return urlunsplit(parts._replace(query=urlencode(query, safe="-")))


def _has_token(url: str) -> bool:
    return any(k == TOKEN_PARAM for k, _ in parse_qsl(urlsplit(url).query, True))


def conceal(obj: Any) -> Any:
    """``obj`` with every logger URL's token replaced by the mask (a copy when one was)."""
    if not isinstance(obj, Mapping) or not any(_has_token(lg["url"]) for lg in _loggers(obj)):
        return obj
    out = json.loads(json.dumps(obj))
    for logger in _loggers(out):
        if _has_token(logger["url"]):
            logger["url"] = _with_token(logger["url"], LOGGER_TOKEN_MASK)
    return out


def revealer(reveal_url: Callable[[str], str]) -> Callable[[Any], Any]:
    """What :class:`~modelarium.core.clients.kubernetes.KubeClient` sends: masked logger URLs
    filled in by ``reveal_url`` (the ``reveal_logger_url`` port)."""

    def reveal(obj: Any) -> Any:
        masked = [lg for lg in _loggers(obj) if LOGGER_TOKEN_MASK in lg["url"]]
        if not masked:
            return obj
        out = json.loads(json.dumps(obj))
        for logger in _loggers(out):
            if LOGGER_TOKEN_MASK in logger["url"]:
                logger["url"] = reveal_url(logger["url"])
        return out

    return reveal
