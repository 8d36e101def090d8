"""What `/model upload` accepts, checked by content: a file must be what its name says.

- ``*.safetensors``: the 8-byte header length, a JSON header that parses, every tensor with a
  known dtype, a shape, and data offsets that tile the data section exactly;
- ``*.json`` (configs, ``tokenizer.json``...): a JSON object;
- tokenizer files: ``tokenizer.model`` (a SentencePiece protobuf), ``vocab.txt``,
  ``merges.txt`` and ``*.tiktoken`` (UTF-8 text of the expected shape).

Anything else is refused with the list of what is accepted.
"""

from __future__ import annotations

import base64
import json
import math
import re
import struct
from pathlib import Path

from modelarium.config.units import format_size
from modelarium.core.errors import ValidationError

SAFETENSORS_DTYPES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1, "I16": 2, "U16": 2,
    "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "F64": 8, "I64": 8, "U64": 8,
    "F4": 0.5, "F6_E2M3": 0.75, "F6_E3M2": 0.75,
}  # fmt: skip
MAX_HEADER = 100 * 1024 * 1024
TEXT_FILES = ("vocab.txt", "merges.txt")
ACCEPTED = "*.safetensors, *.json, tokenizer.model, vocab.txt, merges.txt, *.tiktoken"


def kind_of(name: str) -> str:
    lower = name.lower()
    if lower.endswith(".safetensors"):
        return "safetensors"
    if lower.endswith(".json"):
        return "json"
    if lower == "tokenizer.model" or lower.endswith(".tiktoken") or lower in TEXT_FILES:
        return "tokenizer"
    raise ValidationError(f"{name}: not a file type upload accepts ({ACCEPTED})")


def check_file(path: Path, name: str, max_size: int, max_text_size: int) -> str:
    """The file's kind, or a one-line :class:`ValidationError` saying why it is refused."""
    kind = kind_of(name)
    size = path.stat().st_size
    limit = max_size if kind == "safetensors" else max_text_size
    if size > limit:
        raise ValidationError(
            f"{name} is {format_size(size)}, above the {format_size(limit)} limit for "
            f"{'weights' if kind == 'safetensors' else 'configs and tokenizers'}"
        )
    if size == 0:
        raise ValidationError(f"{name} is empty")
    if kind == "safetensors":
        _check_safetensors(path, name, size)
    elif kind == "json":
        _check_json(path, name)
    else:
        _check_tokenizer(path, name)
    return kind


def _check_safetensors(path: Path, name: str, size: int) -> None:
    bad = f"{name} is not a safetensors file"
    with path.open("rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            raise ValidationError(f"{bad}: shorter than its header")
        (length,) = struct.unpack("<Q", head)
        if length > MAX_HEADER or 8 + length > size:
            raise ValidationError(f"{bad}: its header length ({length}) does not fit the file")
        raw = handle.read(length)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValidationError(f"{bad}: its header is not JSON ({exc})") from None
    if not isinstance(header, dict):
        raise ValidationError(f"{bad}: its header is not a JSON object")
    data_size = size - 8 - length
    spans = []
    for tensor, info in header.items():
        if tensor == "__metadata__":
            if not isinstance(info, dict) or not all(isinstance(v, str) for v in info.values()):
                raise ValidationError(f"{bad}: __metadata__ must map strings to strings")
            continue
        try:
            dtype, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
            width = SAFETENSORS_DTYPES[dtype]
            count = math.prod(int(d) for d in shape)
        except (KeyError, TypeError, ValueError):
            raise ValidationError(
                f"{bad}: tensor {tensor!r} has no valid dtype/shape/offsets"
            ) from None
        if not (0 <= begin <= end <= data_size) or end - begin != math.ceil(count * width):
            raise ValidationError(f"{bad}: tensor {tensor!r} does not fit its data offsets")
        spans.append((begin, end))
    spans.sort()
    position = 0
    for begin, end in spans:
        if begin != position:
            raise ValidationError(f"{bad}: its tensors overlap or leave holes in the data")
        position = end
    if position != data_size:
        raise ValidationError(f"{bad}: {data_size - position} byte(s) after the last tensor")


def _check_json(path: Path, name: str) -> None:
    try:
        data = json.loads(path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValidationError(f"{name} is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValidationError(f"{name} is not a JSON object")


def _check_tokenizer(path: Path, name: str) -> None:
    lower = name.lower()
    raw = path.read_bytes()
    if lower == "tokenizer.model":
        # A SentencePiece ModelProto starts with field 1 (pieces), length-delimited: tag 0x0a.
        if raw[:1] != b"\x0a":
            raise ValidationError(f"{name} is not a SentencePiece model")
        return
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError(f"{name} is not UTF-8 text") from None
    lines = [line for line in text.splitlines() if line]
    if lower.endswith(".tiktoken"):
        for line in lines[:1000]:
            token, _, rank = line.partition(" ")
            try:
                base64.b64decode(token, validate=True)
                int(rank)
            except ValueError:
                raise ValidationError(
                    f"{name} is not a tiktoken file (base64 token, rank)"
                ) from None
    elif lower == "merges.txt":
        body = lines[1:] if lines and lines[0].startswith("#version") else lines
        if any(len(line.split(" ")) != 2 for line in body[:1000]):
            raise ValidationError(f"{name} is not a BPE merges file (two tokens per line)")
    elif lower == "vocab.txt" and any(re.search(r"\s", line) for line in lines[:1000]):
        raise ValidationError(f"{name} is not a vocabulary (one token per line)")
