"""Catalog entries: ids, the published schema, and the validator's field paths."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from modelarium.core.catalog import (
    CatalogEntry,
    Checks,
    HubFacts,
    check_id,
    default_id,
    schema,
    schema_issues,
    validate_dir,
    validate_document,
    validate_text,
)
from modelarium.core.errors import UpstreamError, UsageError
from modelarium.core.vllm import load_catalog
from tests.unit.catalog.helpers import COMMIT, OTHER_COMMIT, entry_json, write_entries


def paths(issues: list) -> list[str]:  # type: ignore[type-arg]
    return [i.path for i in issues]


# -- ids ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("good", ["llama-3.1-8b", "qwen2.5_7b", "a", "x" * 100])
def test_good_ids(good: str) -> None:
    assert check_id(good) == good


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("org/model", "contains '/'"),
        ("../etc", "contains '..'"),
        ("a..b", "contains '..'"),
        ("my model", "contains spaces"),
        ("Llama", "lowercase"),
        ("-lead", "lowercase"),
        ("x" * 101, "at most 100"),
    ],
)
def test_bad_ids_are_refused_with_the_reason(bad: str, why: str) -> None:
    with pytest.raises(UsageError) as refused:
        check_id(bad)
    assert why in str(refused.value) and "\n" not in str(refused.value)


def test_default_id_from_a_hub_repo() -> None:
    assert default_id("meta-llama/Llama-3.1-8B-Instruct") == "llama-3.1-8b-instruct"
    assert default_id("org/Weird Name..v2") == "weird-name.v2"
    assert check_id(default_id("org/__x__")) == "x"


# -- the schema ------------------------------------------------------------------------------
def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(schema())
    assert schema()["properties"]["status"]["enum"] == [
        "draft",
        "validated",
        "approved",
        "deprecated",
        "retired",
    ]


def test_a_valid_entry_round_trips_in_canonical_form() -> None:
    data = entry_json()
    assert schema_issues(data) == []
    entry = CatalogEntry.from_json(data)
    assert entry.to_json() == data
    assert json.loads(entry.dumps()) == data
    assert entry.dumps() == CatalogEntry.from_json(json.loads(entry.dumps())).dumps()
    assert entry.dumps().endswith("}\n")


@pytest.mark.parametrize(
    ("change", "path", "words"),
    [
        ({"id": "a/b"}, "id", "not a catalog id"),
        ({"id": "a b"}, "id", "not a catalog id"),
        (
            {"huggingface": {"repo": "Qwen/Qwen2.5-7B-Instruct", "commit": "main"}},
            "huggingface.commit",
            "40-character",
        ),
        (
            {"huggingface": {"repo": "Qwen/Qwen2.5-7B-Instruct"}},
            "huggingface.commit",
            "is required",
        ),
        ({"huggingface": {"repo": "no-slash", "commit": COMMIT}}, "huggingface.repo", "org/name"),
        ({"status": "shiny"}, "status", "must be one of draft, validated"),
        ({"context_length": "long"}, "context_length", "must be an integer"),
        ({"parameters": {"total": 0, "active": 1}}, "parameters.total", "minimum"),
        ({"storage_uri": "http://x/y"}, "storage_uri", "pvc://"),
        ({"storage_uri": None}, "storage_uri", "when status is validated or approved"),
        ({"owners": []}, "owners", "at least one owner"),
        ({"status": "deprecated"}, "status_reason", "is required when status is deprecated"),
        ({"status": "retired", "status_reason": ""}, "status_reason", "must say why"),
        ({"tags": ["Chat Bot"]}, "tags[0]", "lowercase words"),
        ({"colour": "blue"}, "colour", "not a field"),
        (
            {"serving_defaults": {"engine": "tgi", "gpu": None, "args": []}},
            "serving_defaults.engine",
            "'vllm'",
        ),
    ],
)
def test_schema_errors_name_their_field_path(change: dict, path: str, words: str) -> None:  # type: ignore[type-arg]
    issues = schema_issues(entry_json(**change))
    assert path in paths(issues), issues
    message = next(i.message for i in issues if i.path == path)
    assert words in message, message


def test_nested_gpu_compatibility_paths() -> None:
    data = entry_json()
    data["gpu_compatibility"]["L4"]["gpus"] = 0
    data["gpu_compatibility"]["T4"]["speed"] = "fast"
    assert set(paths(schema_issues(data))) == {
        "gpu_compatibility.L4.gpus",
        "gpu_compatibility.T4.speed",
    }


def test_a_draft_may_lack_storage_and_owners() -> None:
    assert schema_issues(entry_json(status="draft", storage_uri=None, owners=[])) == []


# -- checks beyond the schema -------------------------------------------------------------------
def test_facts_the_schema_cannot_express() -> None:
    data = entry_json(
        parameters={"total": 10, "active": 11},
        serving_defaults={"engine": "vllm", "gpu": "T4", "args": []},
        storage_uri=f"pvc://models/models--Qwen--Qwen2.5-7B-Instruct/snapshots/{OTHER_COMMIT}",
        architecture="FancyNewForCausalLM",
        license="unknown",
    )
    result = validate_document(data, Checks(architectures=load_catalog()), "other-name.json")
    found = {i.path: i for i in result.issues}
    assert "id must match" in found["id"].message
    assert found["parameters.active"].message == "is larger than parameters.total"
    assert found["serving_defaults.gpu"].message == "the model does not fit on T4"
    assert "holds commit 89abcdef0123" in found["storage_uri"].message
    assert found["architecture"].message == "vLLM does not serve FancyNewForCausalLM"
    assert found["license"].severity == "warning"
    assert not result.ok


def test_an_approved_entry_must_fit_somewhere() -> None:
    data = entry_json(
        gpu_compatibility={"T4": {"fits": False}},
        serving_defaults={"engine": "vllm", "gpu": None, "args": []},
    )
    result = validate_document(data)
    assert [(i.path, i.message) for i in result.errors] == [
        ("gpu_compatibility", "the model fits no GPU type")
    ]


def test_outside_facts_hub_fit_and_storage() -> None:
    data = entry_json()
    no_repo = Checks(hub=lambda repo, commit: HubFacts(False, False))
    assert [(i.path, i.message) for i in validate_document(data, no_repo).errors] == [
        ("huggingface.repo", "Qwen/Qwen2.5-7B-Instruct: no such model on the Hub")
    ]
    no_commit = Checks(hub=lambda repo, commit: HubFacts(True, False))
    assert paths(validate_document(data, no_commit).errors) == ["huggingface.commit"]
    other_licence = Checks(hub=lambda repo, commit: HubFacts(True, True, "other"))
    [licence] = validate_document(data, other_licence).errors
    assert licence.path == "license" and "the Hub says other" in licence.message

    def down(repo: str, commit: str) -> HubFacts:
        raise UpstreamError("Hugging Face is unreachable (ConnectError)")

    [unreachable] = validate_document(data, Checks(hub=down)).errors
    assert unreachable.path == "huggingface" and "could not be checked" in unreachable.message

    no_fit = Checks(fit=lambda entry: [("L4", False), ("A100-80GB", False)])
    [fit] = validate_document(data, no_fit).errors
    assert fit.message == "fits none of the inventory's GPU types (L4, A100-80GB)"
    fits = Checks(fit=lambda entry: [("L4", True)])
    assert validate_document(data, fits).ok

    unverified = Checks(storage=lambda entry: "no verified weights of that commit in models")
    [storage] = validate_document(data, unverified).errors
    assert storage.path == "storage_uri"
    unset = validate_document(entry_json(status="draft", storage_uri=None), unverified)
    assert [i.message for i in unset.errors] == ["is not set: install and verify the weights first"]


def test_not_json() -> None:
    result = validate_text('{"id": ', filename="x.json")
    assert result.issues[0].message.startswith("not valid JSON")


def test_a_checkout_is_validated_file_by_file(tmp_path: Path) -> None:
    write_entries(tmp_path / "models", [entry_json("good"), entry_json("bad", status="shiny")])
    (tmp_path / "models" / "worse.json").write_text(json.dumps(entry_json(id="x/y")))
    (tmp_path / "models" / "broken.json").write_text("{")
    (tmp_path / "README.md").write_text("not an entry")
    report = validate_dir(tmp_path, Checks(architectures=load_catalog()))
    assert report.files == 4
    assert [e.id for e in report.entries] == ["good"]
    by_file = {i.file for i in report.errors}
    assert by_file == {"models/bad.json", "models/broken.json", "models/worse.json"}
    assert "models/bad.json: status: must be one of" in str(
        next(i for i in report.errors if i.file == "models/bad.json")
    )


# -- the fast path agrees with jsonschema -----------------------------------------------------
_PATHS: list[tuple[str | int, ...]] = [
    *[(k,) for k in entry_json()],
    ("status_reason",),
    ("extra",),
    ("huggingface", "repo"),
    ("huggingface", "commit"),
    ("huggingface", "other"),
    ("parameters", "total"),
    ("parameters", "active"),
    ("serving_defaults", "engine"),
    ("serving_defaults", "gpu"),
    ("serving_defaults", "args"),
    ("gpu_compatibility", "L4"),
    ("gpu_compatibility", "L4", "fits"),
    ("gpu_compatibility", "L4", "gpus"),
    ("gpu_compatibility", "L4", "max_model_len"),
    ("gpu_compatibility", "bad/name"),
    ("owners", 0),
    ("tags", 0),
]
_INTERESTING = st.sampled_from(
    [
        "a/b",
        "ok-id",
        "a..b",
        COMMIT,
        "main",
        "Qwen/Qwen2.5-7B",
        "pvc://models/x/y",
        "s3://bucket/key",
        "http://x/y",
        "approved",
        "deprecated",
        "retired",
        "draft",
        "vllm",
        "",
        "Chat",
        "chat",
        0,
        1,
        -1,
        2.5,
        True,
        None,
        [],
        {},
        ["U1", "U1"],
        {"fits": True},
        {"fits": "yes"},
    ]
)
_VALUES = st.one_of(
    _INTERESTING,
    st.recursive(
        st.none() | st.booleans() | st.integers(-3, 10**12) | st.text(max_size=8),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
        max_leaves=5,
    ),
)


@st.composite
def _mutated(draw: st.DrawFn) -> dict:  # type: ignore[type-arg]
    data = entry_json()
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_PATHS))
        parent: Any = data
        for step in path[:-1]:
            if not isinstance(parent, dict) or step not in parent:
                parent = None
                break
            parent = parent[step]
        last = path[-1]
        in_list = isinstance(parent, list) and isinstance(last, int) and len(parent) > last
        if isinstance(parent, dict) and draw(st.booleans()) and last in parent:
            del parent[last]
        elif isinstance(parent, dict) or in_list:
            parent[last] = draw(_VALUES)
    return data


@given(_mutated())
@hsettings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_the_fast_path_agrees_with_jsonschema(document: dict) -> None:  # type: ignore[type-arg]
    from fastjsonschema import JsonSchemaException

    from modelarium.core.catalog.validate import _fast_check, _validator

    try:
        _fast_check()(document)
        fast_ok = True
    except JsonSchemaException:
        fast_ok = False
    reference_ok = not list(_validator().iter_errors(document))
    assert fast_ok == reference_ok
    assert (schema_issues(document) == []) == reference_ok
