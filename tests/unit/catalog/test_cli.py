"""`modelarium catalog validate DIR` and `modelarium catalog schema`: offline, for CI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelarium.core.catalog import schema
from modelarium.entrypoints.cli import main
from tests.fakes.hf_hub import FakeHub, fake_hub
from tests.unit.catalog.helpers import entry_json, write_entries

__all__ = ["fake_hub"]


def test_schema_prints_the_published_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["catalog", "schema"]) == 0
    assert json.loads(capsys.readouterr().out) == schema()


def test_validate_a_clean_checkout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_entries(tmp_path / "models", [entry_json("a"), entry_json("b")])
    assert main(["catalog", "validate", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "2 entries" in out and "2 valid, 0 with errors" in out
    assert not (tmp_path / "var").exists()  # no database was created


def test_validate_exits_non_zero_and_names_each_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_entries(
        tmp_path / "models",
        [entry_json("a"), entry_json("b", status="live", architecture="NoSuchForCausalLM")],
    )
    assert main(["catalog", "validate", str(tmp_path)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("models/b.json: status: must be one of draft")
    assert "1 valid, 1 with errors" in lines[-1]
    write_entries(tmp_path / "models", [entry_json("b", architecture="NoSuchForCausalLM")])
    assert main(["catalog", "validate", str(tmp_path), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    assert report["issues"] == [
        {
            "file": "models/b.json",
            "path": "architecture",
            "message": "vLLM does not serve NoSuchForCausalLM",
            "severity": "error",
        }
    ]


def test_entries_folder_from_the_setting_or_the_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_entries(tmp_path / "catalog" / "entries", [entry_json("a")])
    monkeypatch.setenv("MODELARIUM_CATALOG_PATH", "catalog/entries")
    assert main(["catalog", "validate", str(tmp_path)]) == 0
    assert "1 entry" in capsys.readouterr().out
    monkeypatch.delenv("MODELARIUM_CATALOG_PATH")
    assert main(["catalog", "validate", str(tmp_path), "--path", "catalog/entries/"]) == 0


def test_not_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["catalog", "validate", str(tmp_path / "missing")]) == 2
    assert "is not a directory" in capsys.readouterr().err


def test_hub_checks_only_when_asked(
    tmp_path: Path,
    fake_hub: FakeHub,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake_hub.add_model("Qwen/Qwen2.5-7B-Instruct", {"config.json": "{}"}, license="apache-2.0")
    head = fake_hub.repo("Qwen/Qwen2.5-7B-Instruct").head.sha
    good = entry_json("good", huggingface={"repo": "Qwen/Qwen2.5-7B-Instruct", "commit": head})
    good["storage_uri"] = f"pvc://m/models--Qwen--Qwen2.5-7B-Instruct/snapshots/{head}"
    missing = entry_json("missing", huggingface={"repo": "nobody/nothing", "commit": head})
    missing["storage_uri"] = None
    missing["status"] = "draft"
    licence = entry_json(
        "licence",
        license="mit",
        huggingface={"repo": "Qwen/Qwen2.5-7B-Instruct", "commit": head},
        storage_uri=good["storage_uri"],
    )
    write_entries(tmp_path / "models", [good, missing, licence])
    monkeypatch.setenv("HF_ENDPOINT", fake_hub.url)
    fake_hub.clear_log()
    assert main(["catalog", "validate", str(tmp_path)]) == 0  # offline: nothing to see
    assert fake_hub.log == []
    assert main(["catalog", "validate", str(tmp_path), "--hub"]) == 1
    out = capsys.readouterr().out
    assert "models/missing.json: huggingface.repo: nobody/nothing: no such model on the Hub" in out
    assert "models/licence.json: license: says mit, the Hub says apache-2.0" in out
    assert "models/good.json" not in out
