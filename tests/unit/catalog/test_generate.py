"""Drafting entries from the Hub, config.json, the vLLM table and the fit."""

from __future__ import annotations

import pytest

from modelarium.config.settings import StorageLocation
from modelarium.core.app import Core
from modelarium.core.catalog import Checks, validate_document
from modelarium.core.catalog.generate import (
    draft_from_report,
    parse_storage_uri,
    storage_uri_for,
)
from modelarium.core.errors import NotFoundError, UsageError, ValidationError
from modelarium.core.vllm import load_catalog
from tests.fakes.hf_hub import FakeHub
from tests.unit.discovery.hubdata import CUSTOM, GGUF, QWEN_7B, QWEN_AWQ, QWEN_MOE

pytestmark = pytest.mark.db


def test_a_draft_from_the_hub_passes_offline_validation(core: Core, hub: FakeHub) -> None:
    entry = draft_from_report(core.hub.describe(QWEN_7B), owners=["U_ADMIN"], tags=["Chat"])
    assert entry.id == "qwen2.5-7b-instruct"
    assert entry.display_name == "Qwen2.5-7B-Instruct"
    assert entry.commit == hub.repo(QWEN_7B).head.sha
    assert (entry.license, entry.architecture) == ("apache-2.0", "Qwen2ForCausalLM")
    assert entry.params_total == entry.params_active == 7_615_616_512
    assert entry.context_length == 32768
    assert entry.quantization == "bf16"
    assert set(entry.gpu_compatibility) == {"L4", "L40S", "A100-80GB", "H100-80GB"}
    assert entry.serving_gpu in entry.fitting_gpus
    assert "--max-model-len" in entry.serving_args
    assert (entry.status, entry.owners, entry.tags) == ("draft", ("U_ADMIN",), ("chat",))
    checks = Checks(architectures=load_catalog())
    assert validate_document(entry.to_json(), checks, entry.path_name).issues == []


def test_moe_and_quantized_models(core: Core) -> None:
    moe = draft_from_report(core.hub.describe(QWEN_MOE))
    assert moe.params_active < moe.params_total / 5  # 3B of 30B per token
    assert draft_from_report(core.hub.describe(QWEN_AWQ)).quantization == "awq"


def test_what_cannot_be_drafted(core: Core) -> None:
    with pytest.raises(NotFoundError, match=r"names no architecture"):
        draft_from_report(core.hub.describe(GGUF))
    with pytest.raises(UsageError, match="not a catalog id"):
        draft_from_report(core.hub.describe(QWEN_7B), entry_id="my/model")
    custom = draft_from_report(core.hub.describe(CUSTOM))
    result = validate_document(
        custom.to_json(), Checks(architectures=load_catalog()), custom.path_name
    )
    assert [i.path for i in result.errors] == ["architecture"]


def test_storage_uris(tmp_path) -> None:  # type: ignore[no-untyped-def]
    commit = "a" * 40
    claim = StorageLocation(name="fast", path=tmp_path, pvc="models-rwx")
    assert storage_uri_for(claim, "org/m", commit) == (
        f"pvc://models-rwx/models--org--m/snapshots/{commit}"
    )
    plain = StorageLocation(name="default", path=tmp_path)
    ref = parse_storage_uri(storage_uri_for(plain, "org/m", commit))
    assert (ref.scheme, ref.volume, ref.commit) == ("pvc", "default", commit)
    with pytest.raises(ValidationError):
        parse_storage_uri("file:///x")
