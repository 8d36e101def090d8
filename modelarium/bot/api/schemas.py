"""What the HTTP API reads and answers, as pydantic models: they make the OpenAPI document.

Typed resources are the structured data of the command each route runs (what
``modelarium cmd --json -- jobs 12`` prints under ``data``), so they may carry more fields than
listed here; the listed ones are the contract.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_TEXT = 20_000
"""Longest command text the API accepts (the runner's own limit for one command)."""

ErrorCode = Literal[
    "usage",
    "denied",
    "unknown",
    "not_found",
    "conflict",
    "invalid",
    "upstream",
    "not_built",
    "error",
    "crash",
    "unauthorized",
    "rate_limited",
    "too_large",
    "invalid_request",
    "method_not_allowed",
]


class _Open(BaseModel):
    """A response model that allows more fields than it lists (commands grow their data)."""

    model_config = ConfigDict(extra="allow")


class CommandRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(
        max_length=MAX_TEXT,
        description="The command, as typed after `/model` (an empty text runs `help`).",
        examples=["status", "install Qwen/Qwen2.5-0.5B-Instruct", "changes --kind weights.install"],
    )
    stdin: str | None = Field(
        None,
        max_length=65_536,
        description="What the command reads from standard input, e.g. the key for `--api-key -`.",
    )


class FileOut(BaseModel):
    filename: str
    title: str | None = None
    content_base64: str


class Envelope(BaseModel):
    """The answer of `POST /commands`, as `modelarium cmd --json` prints it (plus files)."""

    ok: bool
    text: str = Field(description="The reply as plain text, as the terminal shows it.")
    data: dict[str, Any] = Field(
        description="The reply's structured data; `error` and `code` when `ok` is false."
    )
    files: list[FileOut] = Field(default_factory=list, description="Files the command produced.")


class ErrorData(_Open):
    error: str = Field(description="One line saying what went wrong.")
    code: ErrorCode = Field(description="Stable machine-readable kind of the error.")


class ErrorEnvelope(BaseModel):
    """Every error the API answers, whatever the route."""

    ok: Literal[False]
    text: str
    data: ErrorData


class Job(_Open):
    id: int
    kind: str
    summary: str
    status: str = Field(description="queued, running, succeeded, failed or cancelled")
    stage: str | None
    completed_stages: list[str]
    attempts: int
    error: str | None
    progress: dict[str, Any]
    created_by: str


class Change(_Open):
    id: int
    kind: str
    target: str
    summary: str
    status: str = Field(
        description="pending_approval, queued, running, succeeded, failed, rejected, expired "
        "or cancelled"
    )
    digest: str
    params: dict[str, Any]
    approval: int | None
    job: int | None
    requested_by: str
    outcome: str | None
    result: dict[str, Any]
    created_at: str
    decided_at: str | None
    finished_at: str | None
    diff: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    approval_status: str | None
    job_status: str | None


class PendingApproval(_Open):
    id: int
    action: str
    summary: str
    requester: str
    digest: str


class Approvals(_Open):
    pending: list[PendingApproval]


class DecisionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    digest: str | None = Field(
        None,
        max_length=64,
        pattern=r"^[0-9a-f]{6,64}$",
        description="The digest you reviewed (or its first characters); refused if it differs.",
    )
    note: str | None = Field(None, max_length=500, description="Recorded with the decision.")


class RejectRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(None, max_length=500, description="Why; shown on the card.")


class Decision(_Open):
    id: int
    status: str = Field(description="pending (more votes needed), approved, rejected or failed")
    result: str | None
    change: int | None


class Weight(_Open):
    id: int | None
    repo: str
    revision: str | None
    commit: str | None
    location: str
    status: str
    size: int | None
    pinned: bool
    deployed_by: list[str]


class LocationUsage(_Open):
    name: str
    total: int
    used: int
    free: int


class Weights(_Open):
    weights: list[Weight]
    page: int
    pages: int
    total: int
    locations: list[LocationUsage]


class Deployment(_Open):
    key: str = Field(description="namespace/name")
    namespace: str
    name: str
    model: str
    commit: str
    gpus: int | None
    state: str
    ready: bool | None
    status: str
    url: str | None
    traffic: list[Any]
    change: int | None


class Deployments(_Open):
    deployments: list[Deployment]
    page: int
    pages: int
    total: int
    note: str | None = Field(description="Why the cluster could not be read, if it could not.")


class CatalogEntry(_Open):
    id: str
    status: str
    git: dict[str, Any] | None = Field(description="The entry as Git has it.")
    draft: dict[str, Any] | None = Field(description="A draft not merged yet.")


class Catalog(_Open):
    entries: list[CatalogEntry]
    page: int
    pages: int
    total: int
