"""The packaged vLLM architectures data and the validator for refreshed copies."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from modelarium.core.errors import ValidationError
from modelarium.core.vllm import (
    TASKS,
    architecture_for_config,
    is_supported,
    load_catalog,
    lookup,
    parse_catalog,
    parse_source,
    search,
)

PACKAGED = (
    Path(__file__).resolve().parents[3] / "modelarium" / "core" / "vllm" / "architectures.json"
)


def _minimal(**entry: Any) -> dict[str, Any]:
    base = {"name": "LlamaForCausalLM", "description": "Llama", "tasks": ["generate"]}
    return {
        "schema_version": 1,
        "source": "https://example.test/registry.py",
        "generated_at": "2026-01-01T00:00:00Z",
        "architectures": [{**base, **entry}],
    }


def test_packaged_file_has_provenance_and_the_real_list() -> None:
    catalog = load_catalog()
    assert "vllm-project/vllm" in catalog.source
    assert "registry.py" in catalog.source
    assert catalog.generated_at.endswith("Z")
    assert catalog.vllm_commit is not None
    assert len(catalog.vllm_commit) == 40
    assert len(catalog.architectures) > 300
    for name in (
        "LlamaForCausalLM",
        "MistralForCausalLM",
        "Qwen2ForCausalLM",
        "Qwen3ForCausalLM",
        "Qwen3MoeForCausalLM",
        "Gemma2ForCausalLM",
        "Gemma3ForCausalLM",
        "Phi3ForCausalLM",
        "MixtralForCausalLM",
        "DeepseekV3ForCausalLM",
        "DeepseekV2ForCausalLM",
        "GptOssForCausalLM",
        "Gemma3ForConditionalGeneration",
        "WhisperForConditionalGeneration",
        "BertModel",
        "XLMRobertaForSequenceClassification",
    ):
        assert catalog.is_supported(name), name


def test_entries_are_complete() -> None:
    catalog = load_catalog()
    for arch in catalog.architectures:
        assert arch.description
        assert arch.tasks
        assert set(arch.tasks) <= TASKS
        assert arch.implementation
    with_examples = [a for a in catalog.architectures if a.examples]
    assert len(with_examples) > 0.95 * len(catalog.architectures)


def test_generation_models() -> None:
    llama = lookup("LlamaForCausalLM")
    assert llama is not None
    assert llama.task == "generate"
    assert "embed" in llama.tasks  # vLLM also serves Llama-based embedding models
    assert any(ex.startswith("meta-llama/") for ex in llama.examples)
    assert not llama.multimodal
    assert llama.engine_args == {}
    assert llama.cli_flags() == []
    mixtral = lookup("MixtralForCausalLM")
    assert mixtral is not None
    assert "mixture-of-experts" in mixtral.description


def test_engine_args_from_vllm() -> None:
    v3 = lookup("DeepseekV3ForCausalLM")
    assert v3 is not None
    assert v3.needs_trust_remote_code
    assert v3.cli_flags() == ["--trust-remote-code"]
    chatglm = lookup("ChatGLMModel")
    assert chatglm is not None
    assert chatglm.needs_trust_remote_code
    mistral = lookup("MistralForCausalLM")
    assert mistral is not None
    assert not mistral.needs_trust_remote_code
    (conditional,) = mistral.conditional_engine_args
    assert conditional.args["tokenizer_mode"] == "mistral"
    assert "params.json" in conditional.when
    voxtral = lookup("VoxtralForConditionalGeneration")
    assert voxtral is not None
    assert voxtral.engine_args == {"tokenizer_mode": "mistral"}
    assert voxtral.cli_flags() == ["--tokenizer-mode", "mistral"]


def test_pooling_and_multimodal_entries() -> None:
    bert = lookup("BertModel")
    assert bert is not None
    assert bert.tasks == ("embed",)
    reranker = lookup("XLMRobertaForSequenceClassification")
    assert reranker is not None
    assert reranker.tasks == ("classify", "score")
    gemma3 = lookup("Gemma3ForConditionalGeneration")
    assert gemma3 is not None
    assert gemma3.multimodal
    assert gemma3.inputs == ("text", "image")
    whisper = lookup("WhisperForConditionalGeneration")
    assert whisper is not None
    assert "transcription" in whisper.tasks
    mtp = lookup("DeepSeekMTPModel")
    assert mtp is not None
    assert mtp.tasks == ("draft",)


def test_lookup_and_is_supported() -> None:
    # vLLM registers case variants (LLaMAForCausalLM for decapoda-research/llama-*).
    assert lookup("llamaforcausallm") is lookup("LlamaForCausalLM")
    alias = lookup("LLaMAForCausalLM")
    assert alias is not None
    assert alias.name == "LLaMAForCausalLM"
    assert alias.description.startswith("Alias served by LlamaForCausalLM")
    assert lookup("NoSuchForCausalLM") is None
    assert is_supported("Qwen3MoeForCausalLM")
    assert not is_supported("NoSuchForCausalLM")


def test_search_ranks_name_matches_first() -> None:
    results = search("qwen3")
    names = [a.name for a in results]
    assert "Qwen3ForCausalLM" in names
    # Every class whose name contains the word comes before any description/example match.
    in_name = [("qwen3" in n.lower()) for n in names]
    assert in_name == sorted(in_name, reverse=True)
    assert search("LlamaForCausalLM")[0].name == "LlamaForCausalLM"


def test_search_needs_every_word() -> None:
    for arch in search("gemma embed"):
        text = " ".join([arch.name, arch.description, *arch.tasks, *arch.examples]).lower()
        assert "gemma" in text
        assert "embed" in text
    assert lookup("Gemma2Model") in search("gemma embed")
    assert search("") == []
    assert len(search("llama", limit=3)) == 3
    assert search("zzz-nothing-zzz") == []


def test_architecture_for_config() -> None:
    assert architecture_for_config({"architectures": ["Qwen2ForCausalLM"]}) is lookup(
        "Qwen2ForCausalLM"
    )
    assert architecture_for_config({"architectures": ["Unknown"]}) is None
    assert architecture_for_config({}) is None


def test_parse_source_accepts_the_packaged_file_and_its_text() -> None:
    text = PACKAGED.read_text(encoding="utf-8")
    from_text = parse_source(text)
    from_dict = parse_source(json.loads(text))
    assert [a.name for a in from_text] == [a.name for a in from_dict]
    assert len(from_text) == len(load_catalog().architectures)
    assert parse_source(text.encode())[0].name == from_text[0].name


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("source"), "lacks a 'source'"),
        (lambda d: d.pop("generated_at"), "lacks a 'generated_at'"),
        (lambda d: d.update(schema_version=2), "schema_version 2"),
        (lambda d: d.update(architectures=[]), "no 'architectures' list"),
        (lambda d: d["architectures"].append(dict(d["architectures"][0])), "twice"),
        (lambda d: d["architectures"][0].update(name="not a class"), "class name"),
        (lambda d: d["architectures"][0].update(tasks=[]), "must not be empty"),
        (lambda d: d["architectures"][0].update(tasks=["dance"]), "unknown task 'dance'"),
        (lambda d: d["architectures"][0].update(description=""), "'description'"),
        (lambda d: d["architectures"][0].update(engine_args=["x"]), "'engine_args'"),
        (lambda d: d["architectures"][0].update(examples="meta-llama/x"), "'examples'"),
        (lambda d: d["architectures"][0].update(multimodal="yes"), "'multimodal'"),
        (lambda d: d["architectures"][0].update(conditional_engine_args=[{"x": 1}]), "'when'"),
        (lambda d: d["architectures"].__setitem__(0, "LlamaForCausalLM"), "must be an object"),
    ],
)
def test_parse_source_rejects_bad_data(mutate: Any, message: str) -> None:
    payload = copy.deepcopy(_minimal())
    mutate(payload)
    with pytest.raises(ValidationError, match=message):
        parse_source(payload)


def test_parse_catalog_keeps_provenance() -> None:
    catalog = parse_catalog(json.dumps(_minimal()))
    assert catalog.source == "https://example.test/registry.py"
    assert catalog.generated_at == "2026-01-01T00:00:00Z"
    assert catalog.vllm_commit is None


def test_parse_source_rejects_non_json_and_non_objects() -> None:
    with pytest.raises(ValidationError, match="not valid JSON"):
        parse_source("{not json")
    with pytest.raises(ValidationError, match="JSON object"):
        parse_source("[1, 2]")


def test_errors_are_one_line_and_name_the_entry() -> None:
    payload = _minimal(tasks=["dance"])
    with pytest.raises(ValidationError) as info:
        parse_source(payload)
    assert "\n" not in str(info.value)
    assert "entry 0 (LlamaForCausalLM)" in str(info.value)


def test_override_file(tmp_path: Path) -> None:
    payload = _minimal(engine_args={"trust_remote_code": True, "hf_overrides": {"a": 1}})
    path = tmp_path / "architectures.json"
    path.write_text(json.dumps(payload), encoding="utf-8")
    catalog = load_catalog(path)
    assert catalog.names() == ["LlamaForCausalLM"]
    assert lookup("LlamaForCausalLM", catalog) is catalog.architectures[0]
    assert not is_supported("Qwen2ForCausalLM", catalog)
    arch = catalog.architectures[0]
    assert arch.cli_flags() == ["--trust-remote-code", "--hf-overrides", '{"a":1}']
    assert search("llama", catalog)[0] is arch
    with pytest.raises(ValidationError, match="cannot read"):
        load_catalog(tmp_path / "missing.json")
