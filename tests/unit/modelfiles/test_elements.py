"""Splitting a Modelfile into library elements, and composing elements back."""

from __future__ import annotations

from modelarium.core.modelfiles import (
    Command,
    Elements,
    Message,
    Modelfile,
    compose,
    parse,
    split_elements,
    validate,
    write,
)

SOURCE = '''FROM llama3:8b
ADAPTER ./lora
SYSTEM draft prompt
TEMPLATE """{{ range .Messages }}{{ .Role }}: {{ .Content }}
{{ end }}"""
SYSTEM You are concise.
PARAMETER temperature 1
PARAMETER stop <|eot_id|>
PARAMETER temperature 0.2
PARAMETER stop "User:"
MESSAGE user Hi
MESSAGE assistant Hello!
LICENSE MIT
LICENSE Llama 3 Community License
RENDERER qwen3
'''


def test_split_resolves_duplicates_as_ollama_create_does() -> None:
    elements = split_elements(parse(SOURCE))
    assert elements == Elements(
        base="llama3:8b",
        system="You are concise.",
        template="{{ range .Messages }}{{ .Role }}: {{ .Content }}\n{{ end }}",
        parameters={"temperature": "0.2", "stop": ["<|eot_id|>", "User:"]},
        messages=[Message("user", "Hi"), Message("assistant", "Hello!")],
        adapters=["./lora"],
        licenses=["MIT", "Llama 3 Community License"],
        renderer="qwen3",
    )


def test_compose_writes_in_ollama_show_order() -> None:
    mf = compose(
        "llama3:8b",
        system="Be brief.",
        template="{{ .System }}User: {{ .Prompt }}</s>",
        parameters={"temperature": 0.7, "use_mmap": False, "stop": ["</s>", "User:"]},
        messages=[("user", "Hi"), {"role": "assistant", "content": "Hello"}],
        adapters=["./lora.gguf"],
        licenses=["MIT"],
        requires="0.14.0",
    )
    assert write(mf) == (
        "FROM llama3:8b\n"
        "ADAPTER ./lora.gguf\n"
        "TEMPLATE {{ .System }}User: {{ .Prompt }}</s>\n"
        "SYSTEM Be brief.\n"
        "PARAMETER temperature 0.7\n"
        "PARAMETER use_mmap false\n"
        "PARAMETER stop </s>\n"
        "PARAMETER stop User:\n"
        "LICENSE MIT\n"
        "MESSAGE user Hi\n"
        "MESSAGE assistant Hello\n"
        "REQUIRES 0.14.0\n"
    )
    assert validate(mf) == []


def test_compose_of_split_builds_the_same_model() -> None:
    elements = split_elements(parse(SOURCE))
    rebuilt = elements.compose()
    assert split_elements(rebuilt) == elements
    assert split_elements(parse(write(rebuilt))) == elements


def test_canonical_modelfile_survives_split_and_compose_unchanged() -> None:
    canonical = compose("qwen2.5:7b", system="s", parameters={"num_ctx": 4096}, licenses=["A"])
    assert split_elements(canonical).compose() == canonical


def test_elements_mix_across_modelfiles() -> None:
    a = split_elements(
        parse('FROM llama3\nSYSTEM """You are a pirate."""\nPARAMETER temperature 1.2\n')
    )
    b = split_elements(parse("FROM mistral\nPARAMETER num_ctx 8192\n"))
    mixed = compose(b.base, system=a.system, parameters={**a.parameters, **b.parameters})
    assert mixed == Modelfile(
        [
            Command.from_("mistral"),
            Command("system", "You are a pirate."),
            Command.parameter("temperature", "1.2"),
            Command.parameter("num_ctx", "8192"),
        ]
    )


def test_to_dict_is_plain_data_and_from_dict_inverts_it() -> None:
    elements = split_elements(parse(SOURCE))
    data = elements.to_dict()
    assert data["messages"] == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
    ]
    assert data["parameters"]["stop"] == ["<|eot_id|>", "User:"]
    assert Elements.from_dict(data) == elements


def test_local_files_merged_by_ollama_stay_together() -> None:
    mf = parse("FROM /blobs/model\nADAPTER /blobs/adapter\nFROM /blobs/projector\n")
    elements = split_elements(mf)
    assert (elements.base, elements.extra_froms) == ("/blobs/model", ["/blobs/projector"])
    assert write(elements.compose()) == (
        "FROM /blobs/model\nADAPTER /blobs/adapter\nFROM /blobs/projector\n"
    )


def test_overridden_model_name_is_dropped() -> None:
    assert split_elements(parse("FROM llama3\nFROM mistral\n")).base == "mistral"


def test_empty_modelfile_splits_to_nothing() -> None:
    assert split_elements(Modelfile()) == Elements()
    assert compose(None) == Modelfile()
