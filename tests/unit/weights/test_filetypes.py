"""What `/model upload` accepts: files checked by content, not by name."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from modelarium.config.settings import StorageLocation
from modelarium.core.errors import ValidationError
from modelarium.core.weights.filetypes import check_file

BIG = 1 << 30


def _safetensors(path: Path, header: dict, data: bytes) -> Path:
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    return path


def test_a_valid_safetensors_file(tmp_path: Path) -> None:
    header = {
        "a": {"dtype": "BF16", "shape": [2, 3], "data_offsets": [0, 12]},
        "b": {"dtype": "F32", "shape": [1], "data_offsets": [12, 16]},
    }
    path = _safetensors(tmp_path / "m.safetensors", header, bytes(16))
    assert check_file(path, path.name, BIG, BIG) == "safetensors"


@pytest.mark.parametrize(
    ("header", "data", "why"),
    [
        ({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, bytes(8), "does not fit"),
        ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, bytes(8), "holes"),
        ({"a": {"dtype": "Q4", "shape": [1], "data_offsets": [0, 4]}}, bytes(4), "no valid dtype"),
        ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, bytes(6), "after the last"),
    ],
)
def test_broken_safetensors_are_refused(
    tmp_path: Path, header: dict, data: bytes, why: str
) -> None:
    path = _safetensors(tmp_path / "m.safetensors", header, data)
    with pytest.raises(ValidationError, match=why):
        check_file(path, path.name, BIG, BIG)


def test_a_truncated_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    path.write_bytes(struct.pack("<Q", 1000) + b"{}")
    with pytest.raises(ValidationError, match="header length"):
        check_file(path, path.name, BIG, BIG)


def test_json_and_tokenizers(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"hidden_size": 8}')
    (tmp_path / "merges.txt").write_text("#version: 0.2\nĠ t\nh e\n")
    (tmp_path / "vocab.txt").write_text("[PAD]\nhello\n")
    (tmp_path / "tokenizer.model").write_bytes(b"\x0a\x05hello")
    (tmp_path / "cl100k.tiktoken").write_text("IQ== 0\nIg== 1\n")
    for name in ("config.json", "merges.txt", "vocab.txt", "tokenizer.model", "cl100k.tiktoken"):
        check_file(tmp_path / name, name, BIG, BIG)
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(ValidationError, match="not a JSON object"):
        check_file(tmp_path / "list.json", "list.json", BIG, BIG)
    (tmp_path / "tokenizer.model").write_bytes(b"PK\x03\x04zip")
    with pytest.raises(ValidationError, match="not a SentencePiece model"):
        check_file(tmp_path / "tokenizer.model", "tokenizer.model", BIG, BIG)


def test_s3_locations_in_settings() -> None:
    loc = StorageLocation(name="s3", type="s3", bucket="my-models", prefix="/team/a")
    assert (loc.prefix, loc.display, loc.is_bucket) == ("team/a/", "s3://my-models/team/a/", True)
    with pytest.raises(ValueError, match="an s3 location needs a bucket"):
        StorageLocation(name="s3", type="s3")
    with pytest.raises(ValueError, match="takes no path or pvc"):
        StorageLocation(name="s3", type="s3", bucket="my-models", path="/x")
    with pytest.raises(ValueError, match="a local location needs a path"):
        StorageLocation(name="v")
