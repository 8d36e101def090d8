"""Pure pieces of discovery: repo refs, quantization and license detection, search queries."""

from __future__ import annotations

import pytest

from modelarium.core.errors import UsageError
from modelarium.core.fit import get_gpu
from modelarium.core.hub.models import ModelSummary, license_of, parse_repo_ref, quant_of
from modelarium.core.hub.search import SearchQuery, filter_rows, quick_fit
from modelarium.core.vllm import load_catalog
from tests.unit.discovery.hubdata import TINY, config


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("org/name", ("org/name", None)),
        ("org/name@main", ("org/name", "main")),
        ("gpt2", ("gpt2", None)),
        ("org/n.a_m-e@v1.0/x", ("org/n.a_m-e", "v1.0/x")),
        ("org/name@" + "a" * 40, ("org/name", "a" * 40)),
    ],
)
def test_repo_refs(text: str, expected: tuple[str, str | None]) -> None:
    assert parse_repo_ref(text) == expected


@pytest.mark.parametrize(
    "text", ["", "org/", "/name", "a/b/c", "org/na me", "org/x@", "o/../x", "o/x@a..b"]
)
def test_bad_repo_refs_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError):
        parse_repo_ref(text)


def test_quantization_from_config_then_tags_then_name() -> None:
    awq = {"quantization_config": {"quant_method": "awq", "bits": 4}}
    fp8 = {"quantization_config": {"quant_method": "fp8"}}
    ct = {
        "quantization_config": {
            "quant_method": "compressed-tensors",
            "config_groups": {"g": {"weights": {"num_bits": 8, "type": "float"}}},
        }
    }
    assert quant_of("x/y", awq, [], None, False) == "awq"
    assert quant_of("x/y", fp8, [], None, False) == "fp8"
    assert quant_of("x/y", ct, [], None, False) == "fp8"
    assert quant_of("x/y", TINY, [], None, False) is None
    assert quant_of("x/y", None, ["gptq"], None, False) == "gptq"
    assert quant_of("x/y", None, [], "gguf", False) == "gguf"
    assert quant_of("x/y", None, [], None, True) == "gguf"
    assert quant_of("x/Model-7B-AWQ", None, [], None, False) == "awq"
    assert quant_of("x/Model-7B-FP8-dynamic", None, [], None, False) == "fp8"
    assert quant_of("x/awqward-model", None, [], None, False) is None


def test_license_from_tags_or_card() -> None:
    assert license_of(["license:mit", "x"], {"license": "other"}) == "mit"
    assert license_of([], {"license": "apache-2.0"}) == "apache-2.0"
    assert license_of([], {"license": ["a", "b"]}) == "a, b"
    assert license_of([], None) is None


def test_hub_side_of_a_query_is_the_cache_key() -> None:
    query = SearchQuery.build(
        text="qwen", license="Apache-2.0", task="text-generation", max_params="8B", sort="likes"
    )
    assert query.hub_params() == {
        "search": "qwen",
        "pipeline_tag": "text-generation",
        "filter": ["license:apache-2.0"],
        "num_parameters": "max:8B",
        "sort": "likes",
        "limit": 100,
    }
    # Local-only filters and paging do not change what is asked of the Hub.
    assert SearchQuery(text="qwen", fits="L4").cache_key() == SearchQuery(text="qwen").cache_key()
    assert SearchQuery(arch="llama").hub_params()["filter"] == ["llama"]
    assert "filter" not in SearchQuery(arch="LlamaForCausalLM").hub_params()
    assert SearchQuery(quant="gguf").hub_params()["filter"] == ["gguf"]
    assert SearchQuery(sort="recent").hub_params()["sort"] == "last_modified"
    assert SearchQuery.build(max_params="1.5B").hub_params()["num_parameters"] == "max:1500M"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"text": "x" * 101}, "too long"),
        ({"sort": "stars"}, "--sort"),
        ({"quant": "int3"}, "--quant"),
        ({"arch": "two words"}, "--arch takes one word"),
    ],
)
def test_bad_queries(values: dict, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        SearchQuery(**values).cache_key()


def test_the_longest_allowed_query_fits_the_cache_key_column() -> None:
    worst = SearchQuery.build(
        text='"' * 100,  # escaped to two characters each
        license="l" * 50,
        arch="a" * 50,
        task="t" * 50,
        quant="gguf",
        max_params="1.234567B",
        sort="recent",
    )
    assert len(worst.cache_key()) <= 512


def test_bad_size_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="not a model size"):
        SearchQuery.build(max_params="huge")


def _row(name: str, cfg: dict | None, params: int | None, **kw) -> ModelSummary:
    st = {"parameters": {"BF16": params}, "total": params} if params else None
    archs = (cfg or {}).get("architectures", [])
    return ModelSummary(
        id=name, params=params, safetensors=st, config=cfg, architectures=archs, **kw
    )


def test_quick_fit_uses_the_estimator_with_a_full_config() -> None:
    llama = _row("a/llama-70b", config("llama-3.1-70b-instruct"), 70_553_706_496)
    assert quick_fit(llama, get_gpu("L4")).label == "no"
    assert quick_fit(llama, get_gpu("8xH100")).label == "yes"


def test_quick_fit_falls_back_to_weights_when_the_listing_config_is_partial() -> None:
    partial = {"architectures": ["LlamaForCausalLM"], "model_type": "llama"}
    small = _row("a/small", partial, 1_000_000_000)
    big = _row("a/big", partial, 70_000_000_000)
    assert quick_fit(small, get_gpu("L4")).label == "~yes"
    assert quick_fit(big, get_gpu("L4")).label == "~no"
    assert quick_fit(_row("a/none", partial, None), get_gpu("L4")).label == "?"


def test_local_filters() -> None:
    catalog = load_catalog()
    rows = [
        _row("a/llama", config("llama-3.1-8b-instruct"), 8_030_261_248),
        _row("a/qwen-awq", config("qwen2.5-7b-instruct"), 7_000_000_000, quant="awq"),
        _row("a/fancy", TINY | {"architectures": ["FancyForCausalLM"]}, 1_000_000_000),
        _row("a/unknown", None, None),
    ]
    ids = lambda q, gpu=None: [r.model.id for r in filter_rows(q, rows, catalog, gpu)]  # noqa: E731
    assert ids(SearchQuery(arch="Qwen2ForCausalLM")) == ["a/qwen-awq"]
    assert ids(SearchQuery(quant="awq")) == ["a/qwen-awq"]
    assert ids(SearchQuery(max_params=8_000_000_000)) == ["a/qwen-awq", "a/fancy"]
    # 7.6B in bf16 outgrows a T4; an unknown size stays listed as "?"
    assert ids(SearchQuery(fits="T4"), get_gpu("T4")) == ["a/fancy", "a/unknown"]
    support = {r.model.id: r.vllm for r in filter_rows(SearchQuery(), rows, catalog, None)}
    assert support == {"a/llama": "yes", "a/qwen-awq": "yes", "a/fancy": "no", "a/unknown": "?"}
