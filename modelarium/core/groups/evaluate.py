"""``group eval``: the same prompts to every member, concurrently but bounded, each result
recorded in the group's table (source ``eval``).

Members are called the way their endpoint speaks: Ollama's ``POST /api/chat`` (non-streaming;
tokens from ``prompt_eval_count``/``eval_count``) or the OpenAI-compatible
``POST /v1/chat/completions`` (tokens from ``usage``). Connections go through the endpoint
registry's address guard, like its health checks.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from modelarium.core.clients.addresses import AddressPolicy, async_guarded_transport
from modelarium.core.errors import UsageError

BUILTIN_PROMPTS = (
    "In one sentence, what is a large language model?",
    "Write a haiku about autumn rain.",
    "What is 17 multiplied by 23? Answer with the number only.",
    "Translate 'Where is the train station?' into French.",
    "Give three tips for writing clear error messages.",
    "Summarise the plot of Romeo and Juliet in two sentences.",
    "Write a Python function that reverses a string.",
    "Explain the difference between TCP and UDP briefly.",
    "List the planets of the solar system in order from the sun.",
    "What does HTTP status 404 mean?",
)
MAX_PROMPTS = 1000
MAX_PROMPT_CHARS = 20_000


def read_prompts(text: str) -> list[str]:
    """Prompts from a file: a JSON list of strings, JSON lines (strings or {"prompt": ...}), or
    one prompt per line."""
    body = text.strip()
    if not body:
        raise UsageError("the prompts file is empty")
    prompts: list[str] = []
    if body.startswith("["):
        try:
            data = json.loads(body)
        except json.JSONDecodeError as exc:
            raise UsageError(f"the prompts file is not valid JSON ({exc.msg})") from None
        prompts = [p if isinstance(p, str) else str((p or {}).get("prompt", "")) for p in data]
    else:
        for line in body.splitlines():
            line = line.strip()
            if not line:
                continue
            if line.startswith(("{", '"')):
                try:
                    item = json.loads(line)
                except json.JSONDecodeError:
                    item = line
                line = item if isinstance(item, str) else str(item.get("prompt", ""))
            prompts.append(line)
    prompts = [p for p in prompts if p.strip()]
    if not prompts:
        raise UsageError("the prompts file holds no prompt")
    if len(prompts) > MAX_PROMPTS:
        raise UsageError(f"at most {MAX_PROMPTS} prompts per eval (the file has {len(prompts)})")
    if any(len(p) > MAX_PROMPT_CHARS for p in prompts):
        raise UsageError(f"a prompt is longer than {MAX_PROMPT_CHARS:,} characters")
    return prompts


def load_prompts(path: str | None, text: str | None, n: int | None) -> list[str]:
    if text is not None:
        prompts = read_prompts(text)
    elif path is not None:
        try:
            prompts = read_prompts(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    else:
        prompts = list(BUILTIN_PROMPTS)
    if n is not None:
        prompts = [prompts[i % len(prompts)] for i in range(n)]
    return prompts


@dataclass(frozen=True)
class Target:
    member: str
    type: str
    base_url: str
    model: str
    api_key: str | None
    policy: AddressPolicy | None


@dataclass
class Result:
    member: str
    ok: bool
    status: int | None
    latency_ms: float
    prompt_tokens: int | None
    completion_tokens: int | None
    completion: str | None
    error: str | None
    prompt: str
    ts: float


def _openai_url(base_url: str, path: str) -> str:
    base = base_url.rstrip("/")
    if urlsplit(base).path.rstrip("/").endswith("/v1"):
        return f"{base}/{path}"
    return f"{base}/v1/{path}"


async def _one(client: httpx.AsyncClient, target: Target, prompt: str, clock: Any) -> Result:
    headers = {"Accept": "application/json"}
    if target.api_key:
        headers["Authorization"] = f"Bearer {target.api_key}"
    messages = [{"role": "user", "content": prompt}]
    if target.type == "ollama":
        url = target.base_url.rstrip("/") + "/api/chat"
        body: dict[str, Any] = {"model": target.model, "messages": messages, "stream": False}
    else:
        url = _openai_url(target.base_url, "chat/completions")
        body = {"model": target.model, "messages": messages}
    ts = clock()
    started = time.perf_counter()
    try:
        response = await client.post(url, json=body, headers=headers)
        elapsed = (time.perf_counter() - started) * 1000.0
    except httpx.HTTPError as exc:
        elapsed = (time.perf_counter() - started) * 1000.0
        return Result(target.member, False, None, elapsed, None, None, None,
                      f"{type(exc).__name__}", prompt, ts)  # fmt: skip
    if response.status_code >= 400:
        return Result(target.member, False, response.status_code, elapsed, None, None, None,
                      f"HTTP {response.status_code}", prompt, ts)  # fmt: skip
    try:
        data = response.json()
        if target.type == "ollama":
            text = str((data.get("message") or {}).get("content") or "")
            prompt_tokens, completion_tokens = data.get("prompt_eval_count"), data.get("eval_count")
        else:
            choice = (data.get("choices") or [{}])[0]
            text = str((choice.get("message") or {}).get("content") or "")
            usage = data.get("usage") or {}
            prompt_tokens = usage.get("prompt_tokens")
            completion_tokens = usage.get("completion_tokens")
    except (ValueError, AttributeError, IndexError, TypeError):
        return Result(target.member, False, response.status_code, elapsed, None, None, None,
                      "the answer was not a chat completion", prompt, ts)  # fmt: skip
    return Result(
        target.member, True, response.status_code, elapsed,
        int(prompt_tokens) if isinstance(prompt_tokens, int) else None,
        int(completion_tokens) if isinstance(completion_tokens, int) else None,
        text, None, prompt, ts,
    )  # fmt: skip


async def _run(
    targets: list[Target], prompts: list[str], concurrency: int, timeout: float, clock: Any
) -> list[Result]:
    gate = asyncio.Semaphore(concurrency)
    clients: dict[str, httpx.AsyncClient] = {}
    for target in targets:
        clients[target.member] = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            transport=async_guarded_transport(target.policy or AddressPolicy()),
            follow_redirects=False,
            trust_env=False,
        )

    async def bounded(target: Target, prompt: str) -> Result:
        async with gate:
            return await _one(clients[target.member], target, prompt, clock)

    try:
        # Interleaved (prompt 1 to every member, then prompt 2...), so a slow member does not
        # leave the others' requests to the end.
        jobs = [bounded(t, p) for p in prompts for t in targets]
        return list(await asyncio.gather(*jobs))
    finally:
        for client in clients.values():
            await client.aclose()


def run(
    targets: list[Target], prompts: list[str], *, concurrency: int, timeout: float, clock: Any
) -> list[Result]:
    return asyncio.run(_run(targets, prompts, concurrency, timeout, clock))
