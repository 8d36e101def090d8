"""What users may type for endpoints: names, URLs, types, health paths, keys; model names."""

from __future__ import annotations

import pytest

from modelarium.core.endpoints import model_key
from modelarium.core.endpoints import validation as v
from modelarium.core.endpoints.probe import _discovered, _names, openai_url
from modelarium.core.errors import UsageError


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("http://gpu-1:11434", "http://gpu-1:11434"),
        ("HTTPS://API.Example.COM/v1/", "https://api.example.com/v1"),
        ("  http://10.0.0.5:8000  ", "http://10.0.0.5:8000"),
        ("http://[::1]:11434/", "http://[::1]:11434"),
        ("https://host/some/prefix//", "https://host/some/prefix"),
    ],
)
def test_urls_are_normalized(raw: str, normalized: str):
    assert v.check_url(raw) == normalized


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "give the endpoint's base URL"),
        ("ftp://host", "must start with http:// or https:// (got 'ftp://')"),
        ("gpu-1:11434", "must start with http:// or https://"),
        ("host:11434", "must start with http:// or https://"),
        ("http://", "has no host name"),
        ("http://host:99999", "port is not a number"),
        ("http://host:abc", "port is not a number"),
        ("http://host/path?key=sk-123", "must not have a query string"),
        ("http://host/#x", "must not have a query string or fragment"),
        ("http://host name", "must not contain spaces"),
        ("http://" + "a" * 1100, "longer than 1024"),
    ],
)
def test_bad_urls_get_one_clear_line(raw: str, message: str):
    with pytest.raises(UsageError) as error:
        v.check_url(raw)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    "url", ["http://bob:hunter2@host:11434", "https://token@host", "http://:pw@h"]
)
def test_credentials_in_urls_are_refused_without_being_echoed(url: str):
    with pytest.raises(UsageError) as error:
        v.check_url(url)
    text = str(error.value)
    assert "must not contain credentials" in text
    assert "hunter2" not in text and "token" not in text.replace("tokens", "")
    assert "--api-key -" in text


def test_names():
    assert v.check_name(" GPU-1 ") == "gpu-1"
    assert v.check_name("a.b_c-9") == "a.b_c-9"
    for bad in ("", "-x", "has space", "x" * 65, "ünicode", "a/b"):
        with pytest.raises(UsageError, match="bad endpoint name"):
            v.check_name(bad)


def test_types_and_sharing():
    assert v.check_type("OpenAI") == "openai-compatible"
    assert v.check_type("custom") == "custom"
    with pytest.raises(UsageError, match="one of ollama, openai-compatible, custom"):
        v.check_type("vllm")
    assert v.check_shared_with("Everyone") == "everyone"
    with pytest.raises(UsageError, match="owner \\(private\\) or everyone"):
        v.check_shared_with("team")


def test_health_paths():
    assert v.check_health_path(None, "custom") == "/health"
    assert v.check_health_path("/ready?full=1", "custom") == "/ready?full=1"
    assert v.check_health_path(None, "ollama") is None
    with pytest.raises(UsageError, match="custom endpoints only"):
        v.check_health_path("/health", "ollama")
    for bad in ("health", "//evil.example/x", "/a b", "/x#y"):
        with pytest.raises(UsageError):
            v.check_health_path(bad, "custom")


def test_api_keys_and_their_last_four():
    assert v.check_api_key("  sk-abc  ") == "sk-abc"
    for bad in ("", "   ", "sk abc", "sk-\n1", "sk-é"):
        with pytest.raises(UsageError):
            v.check_api_key(bad)
    assert v.last4("sk-0123456789abcdef") == "cdef"
    assert v.last4("short-key") is None  # four characters of a short key say too much


def test_model_names_compare_like_ollama_tags():
    assert model_key("Llama3.2") == model_key("llama3.2:latest")
    assert model_key("llama3.2:1b") != model_key("llama3.2")
    assert model_key("meta-llama/Llama-3.1-8B") == "meta-llama/llama-3.1-8b"


def test_openai_urls_accept_a_base_with_or_without_v1():
    assert openai_url("http://h:8000", "models") == "http://h:8000/v1/models"
    assert openai_url("http://h:8000/v1", "models") == "http://h:8000/v1/models"
    assert openai_url("https://h/openai/v1/", "models") == "https://h/openai/v1/models"


def test_discovered_model_lists_are_bounded_and_tolerant():
    assert _names(
        [{"name": "b"}, {"model": "a"}, "c", 5, {"name": "x" * 300}], "name", "model"
    ) == (
        "a",
        "b",
        "c",
    )
    assert len(_names([{"id": f"m{i}"} for i in range(5000)], "id")) == 2000
    assert _discovered({"data": [{"id": "x"}]}) == ("x",)
    assert _discovered({"models": [{"name": "y"}]}) == ("y",)
    assert _discovered({"status": "ok"}) is None
    assert _discovered(["not", "a", "dict"]) is None
