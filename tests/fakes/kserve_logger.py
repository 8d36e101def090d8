"""CloudEvents as KServe's inference logger sends them (pkg/logger/worker.go).

Binary content mode: the payload is the body, the attributes are ``Ce-*`` headers: id (the
request's id, shared by its response), specversion 1.0, type
``org.kubeflow.serving.inference.request`` or ``.response``, source, time (RFC 3339 with
nanoseconds, set when the event is sent) and the extensions ``inferenceservicename``,
``namespace``, ``component``, ``endpoint`` (``default`` or ``canary``) and ``metadata`` (JSON).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

REQUEST = "org.kubeflow.serving.inference.request"
RESPONSE = "org.kubeflow.serving.inference.response"


def rfc3339_nanos(epoch: float) -> str:
    """Go's time.RFC3339Nano of an instant (nanoseconds, trailing zeros trimmed, ``Z``)."""
    moment = datetime.fromtimestamp(epoch, UTC)
    nanos = f"{moment.microsecond:06d}" + f"{int(epoch * 1e9) % 1000:03d}"
    nanos = nanos.rstrip("0")
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{nanos}" if nanos else "") + "Z"


def binary(
    kind: str,
    event_id: str,
    at: float,
    data: Any,
    *,
    service: str = "chat",
    namespace: str = "default",
    endpoint: str = "default",
) -> tuple[dict[str, str], bytes]:
    headers = {
        "Ce-Id": event_id,
        "Ce-Specversion": "1.0",
        "Ce-Type": kind,
        "Ce-Source": "http://localhost:9081/",
        "Ce-Time": rfc3339_nanos(at),
        "Ce-Inferenceservicename": service,
        "Ce-Namespace": namespace,
        "Ce-Component": "predictor",
        "Ce-Endpoint": endpoint,
        "Ce-Metadata": "{}",
        "Content-Type": "application/json",
    }
    return headers, json.dumps(data).encode()


def structured(kind: str, event_id: str, at: float, data: Any) -> tuple[dict[str, str], bytes]:
    event = {
        "specversion": "1.0",
        "id": event_id,
        "type": kind,
        "source": "http://localhost:9081/",
        "time": rfc3339_nanos(at),
        "datacontenttype": "application/json",
        "data": data,
    }
    return {"Content-Type": "application/cloudevents+json"}, json.dumps(event).encode()


def chat_request(model: str, prompt: str) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": prompt}]}


def chat_response(model: str, text: str, prompt_tokens: int, completion_tokens: int) -> dict:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text},
             "finish_reason": "stop"}
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }  # fmt: skip


def error_response(message: str = "CUDA out of memory", code: int = 500) -> dict[str, Any]:
    """vLLM's OpenAI-compatible error body."""
    return {"object": "error", "message": message, "type": "InternalServerError", "param": None,
            "code": code}  # fmt: skip
