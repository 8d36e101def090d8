"""The API's body limit must not refuse a request its own document calls valid."""

from __future__ import annotations

import json

from modelarium.bot.api.schemas import CommandRequest
from modelarium.config.settings import Settings


def _field_max(name: str) -> int:
    limit = CommandRequest.model_json_schema()["properties"][name]
    lengths = [part.get("maxLength") for part in limit.get("anyOf", [limit])]
    return max(length for length in lengths if length is not None)


def test_the_default_body_limit_admits_the_largest_valid_command() -> None:
    # the costliest character to send: one outside the BMP, escaped as a surrogate pair
    # (12 bytes) by json.dumps' default ensure_ascii
    wide = "\U0001f600"
    body = json.dumps(
        {"text": wide * _field_max("text"), "stdin": wide * _field_max("stdin")}
    ).encode()
    assert len(body) <= Settings().api_max_body
