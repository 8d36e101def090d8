"""Hostile endpoint input (issue 13, item 13): deep JSON imports, invisible URL characters."""

from __future__ import annotations

import json

import pytest

from modelarium.core.errors import UsageError

OWNER = "U_OWNER"


@pytest.mark.parametrize(
    "document",
    [
        "[" * 100_000 + "]" * 100_000,
        '{"endpoints": ' + '{"a": ' * 50_000 + "1" + "}" * 50_000 + "}",
        json.dumps(
            {"endpoints": [{"name": "a", "base_url": "http://a.example:1", "x": [[[[[[]]]]]]}]}
        ).replace("[[[[[[]]]]]]", "[" * 5000 + "]" * 5000),
    ],
    ids=["arrays", "objects", "inside-an-entry"],
)
def test_deeply_nested_import_json_is_one_clear_error(runner, core, tmp_path, document):
    path = tmp_path / "endpoints.json"
    path.write_text(document)
    reply = runner.execute(f"endpoint import --file {path}", user=OWNER)
    assert not reply.ok
    error = reply.data["error"]
    assert "Something went wrong" not in reply.text
    assert "nested more than" in error and "nothing was imported" in error
    assert core.endpoints.list("U_ADMIN") == []


@pytest.mark.parametrize(
    "url",
    [
        "http://gpu-1.example:11434/v1\x00/x",
        "http://gpu-1.example:11434/\u202egpj.exe",
        "http://gpu-1.example:11434/\x1b[31m",
        "http://gpu-1.example:11434/a\u200bb",
        "http://gpu-1.example:11434/\u2066x\u2069",
        "http://gpu-1.example:11434/\x7f",
    ],
)
def test_endpoint_urls_refuse_control_and_bidi_characters(core, url):
    with pytest.raises(UsageError) as error:
        core.endpoints.add(OWNER, "gpu-1", url)
    text = str(error.value)
    assert "control or invisible character" in text
    assert text.isprintable() and "\u202e" not in text
    assert core.endpoints.list("U_ADMIN") == []
    with pytest.raises(UsageError, match="control or invisible character"):
        core.endpoints.add(OWNER, "c", "http://c.example:1", "custom", health_path="/h\u202ex")
