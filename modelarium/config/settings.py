"""Every tunable of Modelarium in one typed place.

Values come, in rising precedence, from defaults, an optional TOML/YAML file named by
``MODELARIUM_CONFIG``, and the environment (``MODELARIUM_*`` plus the ecosystem's own names:
``SLACK_BOT_TOKEN``, ``HF_ENDPOINT``, ``GITHUB_TOKEN``, ``KUBECONFIG``...). Fields are flat so
that every variable is simply ``MODELARIUM_<FIELD>``; the ``group`` of each field only orders
``modelarium config show`` and lets the config file use ``[group]`` tables.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote, unquote

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from modelarium.config.files import read_config_file
from modelarium.config.units import parse_duration, parse_size

Duration = Annotated[float, BeforeValidator(parse_duration)]
"""Seconds; accepts ``30s``, ``5m``, ``2h``, ``1d`` or a number."""

Size = Annotated[int, BeforeValidator(parse_size)]
"""Bytes; accepts ``500GiB``, ``2TB`` or a number."""

Role = Literal["viewer", "operator", "admin"]

_HOSTNAME = re.compile(
    r"(?i)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*\.?"
)


def _comma_list(value: Any) -> Any:
    """``"U1, U2"`` -> ``["U1", "U2"]``; JSON lists and real lists pass through."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [item.strip() for item in text.split(",") if item.strip()]
    return value


def _json_value(value: Any) -> Any:
    """Structured values (lists of tables) arrive from env vars as JSON text."""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return []
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"expected JSON ({exc.msg} at char {exc.pos})") from None
    return value


CommaList = Annotated[list[str], NoDecode, BeforeValidator(_comma_list)]


class StorageLocation(BaseModel):
    """A named root for model weights: a local volume in the Hugging Face cache layout, or an
    S3-compatible bucket (``type: s3``) holding one folder per model revision.

    A bucket's credentials come from AWS's own sources (``AWS_ACCESS_KEY_ID``/``AWS_PROFILE``,
    the shared config files, or an IAM role), never from a Modelarium setting.
    """

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    type: Literal["local", "s3"] = "local"
    path: Path | None = Field(None, description="The folder of a local location.")
    pvc: str | None = Field(
        None,
        pattern=r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$",
        description="The PersistentVolumeClaim mounted at path: deployments serve its verified "
        "snapshots from pvc://<claim>/<pvc_path>/...; unset, deployments pull from the Hub and "
        "catalog storage_uri values assume a claim named like the location.",
    )
    bucket: str | None = Field(
        None,
        pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
        description="The bucket of an s3 location.",
    )
    prefix: str = Field("", description="Key prefix inside the bucket (a folder).")
    endpoint_url: str | None = Field(
        None, description="S3-compatible endpoint (MinIO, Ceph...); default: AWS."
    )
    region: str | None = None
    service_account: str | None = Field(
        None,
        description="Kubernetes service account with the bucket's credentials, for deployments "
        "that load s3:// storage URIs.",
    )
    capacity: Size | None = None
    high_watermark: float = Field(0.85, gt=0, le=1)
    low_watermark: float = Field(0.75, gt=0, le=1)
    min_age: Duration = 3600.0
    max_age: Duration | None = None
    pvc_path: str = ""
    """Where ``path`` is inside the claim ("" = the claim's root), e.g. ``hub``."""

    @field_validator("prefix", mode="before")
    @classmethod
    def _folder_prefix(cls, value: Any) -> Any:
        """``models``, ``/models`` and ``models/`` are the same folder: ``models/``."""
        if isinstance(value, str):
            text = value.strip().strip("/")
            return f"{text}/" if text else ""
        return value

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("endpoint_url must be an http:// or https:// URL")
        return value

    @model_validator(mode="after")
    def _watermarks_ordered(self) -> StorageLocation:
        if self.low_watermark >= self.high_watermark:
            raise ValueError("low_watermark must be below high_watermark")
        if self.type == "local" and self.path is None:
            raise ValueError(f"location {self.name!r}: a local location needs a path")
        if self.type == "s3":
            if not self.bucket:
                raise ValueError(f"location {self.name!r}: an s3 location needs a bucket")
            if self.path is not None or self.pvc is not None:
                raise ValueError(f"location {self.name!r}: an s3 location takes no path or pvc")
        if self.pvc_path.startswith("/") or ".." in self.pvc_path.split("/"):
            raise ValueError("pvc_path must be a relative path inside the claim")
        return self

    @property
    def is_bucket(self) -> bool:
        return self.type == "s3"

    @property
    def root(self) -> Path:
        """The folder of a local location (callers check :attr:`is_bucket` first)."""
        if self.path is None:
            raise ValueError(f"location {self.name!r} is a bucket, not a folder")
        return self.path

    @property
    def display(self) -> str:
        if self.is_bucket:
            return f"s3://{self.bucket}/{self.prefix}"
        return str(self.path)


class DeployNamespace(BaseModel):
    """Defaults and policy for deployments into one Kubernetes namespace."""

    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
    runtime: str | None = None
    """ServingRuntime name (``spec.predictor.model.runtime``); unset lets KServe pick its
    Hugging Face runtime for ``modelFormat: huggingface``."""
    service_account: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    approvals: int = Field(1, ge=0, le=5)
    """Approvals a deploy, rollback, stop, start or delete needs here (0: none)."""
    approver_role: Role = "admin"


class GpuProfileSetting(BaseModel):
    """A GPU type for clusters whose nodes carry no GPU feature discovery labels."""

    name: str
    memory: Size
    count: int = Field(1, ge=1)
    nodes: int = Field(1, ge=1)


class NotificationRoute(BaseModel):
    """Sends notifications whose kind/severity match to a Slack channel (first match wins)."""

    channel: str
    kinds: list[str] = Field(default_factory=list)
    severities: list[Literal["info", "warning", "critical"]] = Field(default_factory=list)


class WebhookTarget(BaseModel):
    """A generic HTTP receiver; deliveries are HMAC-SHA256 signed with ``secret``."""

    name: str
    url: str
    secret: SecretStr
    kinds: list[str] = Field(default_factory=list)
    severities: list[Literal["info", "warning", "critical"]] = Field(default_factory=list)


def _env(name: str, *ecosystem: str) -> AliasChoices:
    """Accept the field name (file), ``MODELARIUM_<NAME>`` and any ecosystem-standard names."""
    return AliasChoices(name, f"modelarium_{name}", *ecosystem)


class Settings(BaseSettings):
    """The effective configuration. Build it with :func:`modelarium.config.load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix="MODELARIUM_",
        case_sensitive=False,
        extra="ignore",
        populate_by_name=True,
        validate_default=True,
    )

    # -- general --------------------------------------------------------------------------
    data_dir: Path = Field(Path("./var"), json_schema_extra={"group": "general"})
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", json_schema_extra={"group": "general"}
    )
    log_format: Literal["auto", "json", "console"] = Field(
        "auto", json_schema_extra={"group": "general"}
    )
    host: str = Field("0.0.0.0", json_schema_extra={"group": "general"})
    port: int = Field(3000, ge=0, le=65535, json_schema_extra={"group": "general"})
    auto_upgrade: bool = Field(True, json_schema_extra={"group": "database"})

    # -- database -------------------------------------------------------------------------
    database_url: SecretStr | None = Field(
        None,
        json_schema_extra={"group": "database"},
        description="SQLAlchemy URL; default sqlite under data_dir. postgresql:// uses psycopg 3.",
    )
    database_pool_size: int = Field(10, ge=1, json_schema_extra={"group": "database"})
    database_busy_timeout: Duration = Field(30.0, json_schema_extra={"group": "database"})
    schema_check_interval: Duration = Field(
        15.0,
        gt=0,
        json_schema_extra={"group": "database"},
        description="How often running processes check that the schema is still there "
        "(a database recreated empty is migrated again, or the process exits).",
    )

    # -- slack ----------------------------------------------------------------------------
    slack_bot_token: SecretStr | None = Field(
        None, validation_alias=_env("slack_bot_token"), json_schema_extra={"group": "slack"}
    )
    slack_signing_secret: SecretStr | None = Field(
        None, validation_alias=_env("slack_signing_secret"), json_schema_extra={"group": "slack"}
    )
    slack_app_token: SecretStr | None = Field(
        None, validation_alias=_env("slack_app_token"), json_schema_extra={"group": "slack"}
    )
    slack_api_url: str = Field("https://slack.com/api/", json_schema_extra={"group": "slack"})
    slack_command: str = Field(
        "/model", pattern=r"^/[a-z0-9_-]{1,31}$", json_schema_extra={"group": "slack"}
    )
    slack_retry_attempts: int = Field(2, ge=0, le=10, json_schema_extra={"group": "slack"})
    slack_max_body: Size = Field(
        1024**2,
        ge=1024,
        json_schema_extra={"group": "slack"},
        description="Larger POST /slack/events bodies get 413 before they are read.",
    )
    message_update_interval: Duration = Field(
        1.5,
        json_schema_extra={"group": "slack"},
        description="Minimum seconds between in-place edits of one message (Slack rate limits).",
    )

    # -- roles and approvals --------------------------------------------------------------
    admins: CommaList = Field(default_factory=list, json_schema_extra={"group": "rbac"})
    default_role: Role = Field("viewer", json_schema_extra={"group": "rbac"})
    group_roles: Annotated[dict[str, Role], NoDecode, BeforeValidator(_json_value)] = Field(
        default_factory=dict,
        json_schema_extra={"group": "rbac"},
        description='Slack user group id -> role (not admin), JSON: {"S012AB": "operator"}.',
    )
    group_sync_interval: Duration = Field(900.0, json_schema_extra={"group": "rbac"})
    approval_expiry: Duration = Field(86400.0, json_schema_extra={"group": "approvals"})
    self_approval_actions: CommaList = Field(
        default_factory=list,
        json_schema_extra={"group": "approvals"},
        description="Action types whose requester may approve their own request.",
    )
    approvals_channel: str | None = Field(None, json_schema_extra={"group": "approvals"})
    approver_groups: Annotated[dict[str, Role], NoDecode, BeforeValidator(_json_value)] = Field(
        default_factory=dict,
        json_schema_extra={"group": "approvals"},
        description=(
            'Slack user group to mention for approvals needing a role, JSON: {"S0ADMINS": '
            '"admin"}; without one, the approvers are mentioned by name.'
        ),
    )
    approval_dm: bool = Field(
        False,
        json_schema_extra={"group": "approvals"},
        description="Also send each approver a direct message when a change waits for them.",
    )

    # -- security -------------------------------------------------------------------------
    audit_hmac_key: SecretStr | None = Field(
        None,
        json_schema_extra={"group": "security"},
        description="Signs the audit chain; generated into data_dir when unset.",
    )
    encryption_keys: Annotated[list[SecretStr], NoDecode, BeforeValidator(_comma_list)] = Field(
        default_factory=list,
        json_schema_extra={"group": "security"},
        description="Fernet keys, newest first; generated into data_dir when unset.",
    )

    # -- HTTP API -------------------------------------------------------------------------
    api_token_pepper: SecretStr | None = Field(
        None,
        json_schema_extra={"group": "api"},
        description=(
            "Server-side secret mixed into every API token's hash; generated into data_dir when "
            "unset. Set it (the same on every replica) when several processes serve the API."
        ),
    )
    api_token_expiry: Duration = Field(
        90 * 86400.0,
        json_schema_extra={"group": "api"},
        description="Lifetime of a new API token when `token create` gives no --expires (0: none).",
    )
    api_rate_limit: int = Field(
        600,
        ge=0,
        json_schema_extra={"group": "api"},
        description="Requests per minute per API token in each process (0: no limit).",
    )
    api_rate_burst: int = Field(
        60,
        ge=1,
        json_schema_extra={"group": "api"},
        description="Requests an API token may make at once before the per-minute rate applies.",
    )
    api_max_body: Size = Field(
        1024 * 1024,
        json_schema_extra={"group": "api"},
        description=(
            "Largest request body the HTTP API reads (larger: 413). The default admits every "
            "request the API's document allows, however its text is escaped."
        ),
    )
    api_wait_max: Duration = Field(
        300.0,
        json_schema_extra={"group": "api"},
        description="Longest ?wait= a job request may hold (longer waits are cut to this).",
    )
    api_cors_origins: CommaList = Field(
        default_factory=list,
        json_schema_extra={"group": "api"},
        description="Browser origins allowed to call the HTTP API (CORS); empty: CORS off.",
    )

    # -- hugging face ---------------------------------------------------------------------
    hf_endpoint: str = Field(
        "https://huggingface.co",
        validation_alias=_env("hf_endpoint"),
        json_schema_extra={"group": "huggingface"},
    )
    hf_token: SecretStr | None = Field(
        None, validation_alias=_env("hf_token"), json_schema_extra={"group": "huggingface"}
    )
    hub_timeout: Duration = Field(10.0, json_schema_extra={"group": "huggingface"})
    hub_search_ttl: Duration = Field(600.0, json_schema_extra={"group": "cache"})
    hub_info_ttl: Duration = Field(3600.0, json_schema_extra={"group": "cache"})
    hub_stale_ttl: Duration = Field(
        7 * 86400.0,
        json_schema_extra={"group": "cache"},
        description="How long an expired entry may still be served when the hub is down.",
    )
    vllm_architectures_url: str | None = Field(None, json_schema_extra={"group": "huggingface"})

    # -- kubernetes -----------------------------------------------------------------------
    kubeconfig: Path | None = Field(
        None, validation_alias=_env("kubeconfig"), json_schema_extra={"group": "kubernetes"}
    )
    kube_context: str | None = Field(None, json_schema_extra={"group": "kubernetes"})
    kube_namespace: str = Field("default", json_schema_extra={"group": "kubernetes"})
    gpu_inventory_ttl: Duration = Field(300.0, json_schema_extra={"group": "cache"})
    gpu_profiles: Annotated[list[GpuProfileSetting], NoDecode, BeforeValidator(_json_value)] = (
        Field(default_factory=list, json_schema_extra={"group": "kubernetes"})
    )

    # -- deployments ----------------------------------------------------------------------
    deploy_namespaces: Annotated[list[DeployNamespace], NoDecode, BeforeValidator(_json_value)] = (
        Field(
            default_factory=list,
            json_schema_extra={"group": "deployments"},
            description='Namespaces deployments may use, with their policy, JSON: [{"name": "dev", '
            '"approvals": 0}, {"name": "prod", "approvals": 2}]; unset: kube_namespace only, one '
            "approval from someone other than the requester.",
        )
    )
    deploy_runtime: str | None = Field(
        None,
        json_schema_extra={"group": "deployments"},
        description="Default ServingRuntime for namespaces that name none.",
    )
    deploy_ready_timeout: Duration = Field(
        900.0,
        json_schema_extra={"group": "deployments"},
        description="How long an apply waits for Ready before it counts as failed.",
    )
    deploy_rollback: Literal["automatic", "propose"] = Field(
        "automatic",
        json_schema_extra={"group": "deployments"},
        description="A failed rollout over a serving spec: re-apply that spec at once, or "
        "propose the rollback as a change (with its approval buttons).",
    )
    deploy_not_ready_grace: Duration = Field(
        600.0,
        json_schema_extra={"group": "deployments"},
        description="How long a deployment may stay not Ready before it alerts.",
    )

    # -- github ---------------------------------------------------------------------------
    github_token: SecretStr | None = Field(
        None, validation_alias=_env("github_token"), json_schema_extra={"group": "github"}
    )
    github_api_url: str = Field(
        "https://api.github.com",
        json_schema_extra={"group": "github"},
        description="GitHub REST API base; GitHub Enterprise Server: https://HOST/api/v3.",
    )
    github_timeout: Duration = Field(15.0, json_schema_extra={"group": "github"})
    github_retries: int = Field(
        3,
        ge=0,
        le=10,
        json_schema_extra={"group": "github"},
        description="Retries of a request GitHub answered 5xx (or did not answer), with backoff.",
    )
    github_max_rate_wait: Duration = Field(
        60.0,
        json_schema_extra={"group": "github"},
        description="Longest rate-limit wait (Retry-After / reset) sat out; longer ones fail.",
    )
    github_write_interval: Duration = Field(
        1.0,
        json_schema_extra={"group": "github"},
        description="Seconds between writes (GitHub's advice against secondary rate limits).",
    )
    catalog_repo: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}$",
        json_schema_extra={"group": "catalog"},
        description="The catalog's GitHub repository, org/repo.",
    )
    catalog_path: str = Field(
        "models/",
        pattern=r"^([A-Za-z0-9._-]+/)*$",
        json_schema_extra={"group": "catalog"},
        description="Folder of the entries in the catalog repository ('' for the root).",
    )
    catalog_branch: str | None = Field(
        None,
        json_schema_extra={"group": "catalog"},
        description="Branch the catalog is read from and PRs target; default: the repo's.",
    )
    catalog_prs_per_day: int = Field(
        10,
        ge=0,
        json_schema_extra={"group": "catalog"},
        description="Most update PRs catalog_watch opens or refreshes per day.",
    )

    # -- storage --------------------------------------------------------------------------
    storage_locations: Annotated[list[StorageLocation], NoDecode, BeforeValidator(_json_value)] = (
        Field(default_factory=list, json_schema_extra={"group": "storage"})
    )
    install_approval_threshold: Size = Field(100 * 1024**3, json_schema_extra={"group": "storage"})
    purge_approval_threshold: Size = Field(50 * 1024**3, json_schema_extra={"group": "storage"})
    # Files fetched at once per install. 8 is huggingface_hub's own default; bench/install on 2
    # CPUs measured 0.87-0.94x of snapshot_download's throughput with 4, 1.10x with 8.
    download_concurrency: int = Field(8, ge=1, le=64, json_schema_extra={"group": "storage"})
    download_retry_backoff: Duration = Field(
        0.5,
        json_schema_extra={"group": "storage"},
        description="First pause before resuming a file transfer that failed (doubles per "
        "failure, at most 8 s).",
    )

    s3_part_size: Size = Field(
        16 * 1024**2,
        json_schema_extra={"group": "storage"},
        description="Part size of multipart uploads to buckets (at least 5 MiB; raised for files "
        "that would need more than 10,000 parts).",
    )
    s3_concurrency: int = Field(
        8,
        ge=1,
        le=64,
        json_schema_extra={"group": "storage"},
        description="Parts uploaded at once per file to a bucket.",
    )
    s3_retry_backoff: Duration = Field(
        0.5,
        json_schema_extra={"group": "storage"},
        description="First pause before retrying a part or request a bucket failed (doubles "
        "per attempt; 4 attempts, then the job runner retries the stage).",
    )
    upload_max_size: Size = Field(
        10 * 1024**3,
        json_schema_extra={"group": "storage"},
        description="Largest file `/model upload` accepts (weights).",
    )
    upload_max_text_size: Size = Field(
        64 * 1024**2,
        json_schema_extra={"group": "storage"},
        description="Largest JSON config or tokenizer file `/model upload` accepts.",
    )

    # -- backups --------------------------------------------------------------------------
    backup_location: str | None = Field(
        None,
        json_schema_extra={"group": "backups"},
        description="Where backups are written and listed: a directory (default: "
        "data_dir/backups).",
    )
    backup_keep_daily: int = Field(
        7,
        ge=0,
        json_schema_extra={"group": "backups"},
        description="Scheduled backups kept: the newest of each of the last N days with one.",
    )
    backup_keep_weekly: int = Field(
        4,
        ge=0,
        json_schema_extra={"group": "backups"},
        description="Scheduled backups kept: the newest of each of the last M ISO weeks with one "
        "(manual backups are never pruned).",
    )
    pg_bin_dir: Path | None = Field(
        None,
        json_schema_extra={"group": "backups"},
        description="Folder of pg_dump, pg_restore and psql (at least the server's version); "
        "default: found on PATH.",
    )

    # -- endpoints ------------------------------------------------------------------------
    health_timeout: Duration = Field(5.0, json_schema_extra={"group": "endpoints"})
    health_concurrency: int = Field(200, ge=1, json_schema_extra={"group": "endpoints"})
    health_fail_threshold: int = Field(3, ge=1, json_schema_extra={"group": "endpoints"})
    health_recover_threshold: int = Field(2, ge=1, json_schema_extra={"group": "endpoints"})
    health_history: int = Field(100, ge=1, json_schema_extra={"group": "endpoints"})
    endpoint_cooldown: Duration = Field(60.0, json_schema_extra={"group": "endpoints"})
    endpoint_allowlist: CommaList = Field(
        default_factory=list,
        json_schema_extra={"group": "endpoints"},
        description="Hosts or CIDR ranges endpoints may use although they are loopback, "
        "link-local or private (refused by default); e.g. 10.0.0.0/8,gpu-1.internal.",
    )

    # -- model groups (champion/challenger) ----------------------------------------------
    public_url: str | None = Field(
        None,
        json_schema_extra={"group": "groups"},
        description="The address the cluster reaches Modelarium at (KServe's inference logger "
        "posts to <public_url>/inference/events/<group>/<member>).",
    )
    group_min_requests: int = Field(
        200,
        ge=1,
        json_schema_extra={"group": "groups"},
        description="Promotion rule: requests every member needs before a comparison counts.",
    )
    group_max_error_increase: float = Field(
        0.01,
        ge=0.0,
        le=1.0,
        json_schema_extra={"group": "groups"},
        description="Promotion rule: how much higher (absolute, 0.01 = 1 point) the "
        "challenger's error rate may be than the champion's.",
    )
    group_max_p95_ratio: float = Field(
        1.2,
        gt=0.0,
        json_schema_extra={"group": "groups"},
        description="Promotion rule: the challenger's p95 latency over the champion's, at most.",
    )
    group_significance: float = Field(
        0.05,
        gt=0.0,
        lt=0.5,
        json_schema_extra={"group": "groups"},
        description="Significance level of the comparison's tests (a breach counts only when "
        "its p-value is below it).",
    )
    group_retention: Duration = Field(
        30 * 86400.0,
        json_schema_extra={"group": "groups"},
        description="How long inference records are kept per group (default 30 days).",
    )
    group_guard_window: Duration = Field(
        3600.0,
        json_schema_extra={"group": "groups"},
        description="The window group_guard judges a running challenger over.",
    )
    group_payloads: Literal["off", "hashes", "full"] = Field(
        "off",
        json_schema_extra={"group": "groups"},
        description="What inference records keep of prompts and completions: nothing, their "
        "SHA-256, or the full text.",
    )
    group_step_interval: Duration = Field(
        600.0,
        json_schema_extra={"group": "groups"},
        description="How long each step of a progressive promotion (`group promote --steps`) "
        "serves before its analysis decides on the next.",
    )
    group_promote_approvals: int = Field(
        2,
        ge=0,
        json_schema_extra={"group": "groups"},
        description="Approvals a promotion needs (two people by default).",
    )
    group_change_approvals: int = Field(
        0,
        ge=0,
        json_schema_extra={"group": "groups"},
        description="Approvals a traffic change or a rollback needs (deleting a group needs at "
        "least one).",
    )
    group_eval_concurrency: int = Field(
        4,
        ge=1,
        le=64,
        json_schema_extra={"group": "groups"},
        description="Requests `group eval` has in flight at once, over all members.",
    )
    group_eval_timeout: Duration = Field(
        120.0,
        json_schema_extra={"group": "groups"},
        description="Deadline for one `group eval` request.",
    )
    schedule_group_guard: Duration = Field(300.0, json_schema_extra={"group": "schedule"})
    schedule_group_retention: Duration = Field(3600.0, json_schema_extra={"group": "schedule"})

    # -- alerts and notifications ---------------------------------------------------------
    task_failure_threshold: int = Field(3, ge=1, json_schema_extra={"group": "alerts"})
    alert_repeat_interval: Duration = Field(4 * 3600.0, json_schema_extra={"group": "alerts"})
    alert_runbooks: Annotated[dict[str, str], NoDecode, BeforeValidator(_json_value)] = Field(
        default_factory=dict,
        json_schema_extra={"group": "alerts"},
        description=(
            'A runbook link per alert rule, shown on its cards, JSON: {"endpoint_down": '
            '"https://wiki.example/runbooks/endpoint-down"}.'
        ),
    )
    notify_default_channel: str | None = Field(None, json_schema_extra={"group": "notify"})
    notify_routes: Annotated[list[NotificationRoute], NoDecode, BeforeValidator(_json_value)] = (
        Field(default_factory=list, json_schema_extra={"group": "notify"})
    )
    webhooks: Annotated[list[WebhookTarget], NoDecode, BeforeValidator(_json_value)] = Field(
        default_factory=list, json_schema_extra={"group": "notify"}
    )
    delivery_max_attempts: int = Field(8, ge=1, json_schema_extra={"group": "notify"})
    webhook_timeout: Duration = Field(
        10.0,
        gt=0,
        json_schema_extra={"group": "notify"},
        description="Deadline for one whole webhook delivery (connect, send, answer).",
    )

    # -- schedule -------------------------------------------------------------------------
    schedule_health_checks: Duration = Field(60.0, json_schema_extra={"group": "schedule"})
    schedule_cache_refresh: Duration = Field(900.0, json_schema_extra={"group": "schedule"})
    schedule_gpu_inventory: Duration = Field(300.0, json_schema_extra={"group": "schedule"})
    schedule_purge: Duration = Field(3600.0, json_schema_extra={"group": "schedule"})
    schedule_disk_usage: Duration = Field(300.0, json_schema_extra={"group": "schedule"})
    schedule_fit_check: Duration = Field(3600.0, json_schema_extra={"group": "schedule"})
    schedule_archs_refresh: Duration = Field(86400.0, json_schema_extra={"group": "schedule"})
    schedule_role_sync: Duration = Field(900.0, json_schema_extra={"group": "schedule"})
    schedule_housekeeping: Duration = Field(60.0, json_schema_extra={"group": "schedule"})
    schedule_deployments_reconcile: Duration = Field(60.0, json_schema_extra={"group": "schedule"})
    schedule_catalog_sync: Duration = Field(300.0, json_schema_extra={"group": "schedule"})
    schedule_catalog_watch: Duration = Field(6 * 3600.0, json_schema_extra={"group": "schedule"})
    schedule_backup: Duration = Field(
        86400.0,
        json_schema_extra={"group": "schedule"},
        description="How often the daemon makes a verified backup and applies retention; 0: never.",
    )
    misfire_grace: Duration = Field(30.0, json_schema_extra={"group": "schedule"})
    leader_lease: Duration = Field(15.0, json_schema_extra={"group": "schedule"})
    job_workers: int = Field(2, ge=0, le=64, json_schema_extra={"group": "schedule"})
    job_heartbeat: Duration = Field(5.0, json_schema_extra={"group": "schedule"})
    job_stale_after: Duration = Field(30.0, json_schema_extra={"group": "schedule"})
    job_max_attempts: int = Field(3, ge=1, json_schema_extra={"group": "schedule"})

    @field_validator("database_url", mode="before")
    @classmethod
    def _check_database_url(cls, value: Any) -> Any:
        if value is None or value == "":
            return None
        text = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
        scheme = text.split("://", 1)[0] if "://" in text else ""
        if not scheme.startswith(("sqlite", "postgresql", "postgres")):
            raise ValueError(
                "not a database URL; expected sqlite:///path/file.db or "
                "postgresql://user@host:5432/dbname"
            )
        return text

    @field_validator(
        "slack_api_url", "hf_endpoint", "github_api_url", "vllm_architectures_url", "public_url"
    )
    @classmethod
    def _check_http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("group_roles")
    @classmethod
    def _no_admin_groups(cls, value: dict[str, str]) -> dict[str, str]:
        # Whoever manages the Slack group would make admins without the two-person rule.
        for group, role in value.items():
            if role == "admin":
                raise ValueError(
                    f"{group} may not be mapped to admin: admins are granted one at a time, "
                    "with a second admin's approval (`role grant <user> admin`)"
                )
        return value

    @field_validator("endpoint_allowlist")
    @classmethod
    def _check_allowlist(cls, value: list[str]) -> list[str]:
        for entry in value:
            text = entry.strip().strip("[]")
            if "/" in text or text.replace(".", "").isdigit() or ":" in text:
                try:
                    ipaddress.ip_network(text, strict=False)
                except ValueError:
                    raise ValueError(
                        f"{entry!r} is not a CIDR range or an address (e.g. 10.0.0.0/8)"
                    ) from None
            elif not _HOSTNAME.fullmatch(text):
                raise ValueError(f"{entry!r} is not a host name or a CIDR range")
        return value

    @field_validator("catalog_path", mode="before")
    @classmethod
    def _folder(cls, value: Any) -> Any:
        """``models``, ``/models`` and ``models/`` all name the same folder: ``models/``."""
        if isinstance(value, str):
            text = value.strip().strip("/")
            return f"{text}/" if text else ""
        return value

    @model_validator(mode="after")
    def _unique_location_names(self) -> Settings:
        names = [location.name for location in self.storage_locations]
        if len(names) != len(set(names)):
            raise ValueError("storage_locations: location names must be unique")
        spaces = [ns.name for ns in self.deploy_namespaces]
        if len(spaces) != len(set(spaces)):
            raise ValueError("deploy_namespaces: namespace names must be unique")
        return self

    # -- derived values -------------------------------------------------------------------

    @property
    def effective_database_url(self) -> str:
        if self.database_url is not None:
            url = _encode_userinfo(self.database_url.get_secret_value())
            if url.startswith("postgres://"):
                url = "postgresql://" + url.removeprefix("postgres://")
            if url.startswith("postgresql://"):
                url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
            return url
        return f"sqlite:///{(self.data_dir / 'modelarium.db').resolve()}"

    @property
    def locations(self) -> list[StorageLocation]:
        """Configured locations, or the single ``default`` one under data_dir."""
        if self.storage_locations:
            return list(self.storage_locations)
        return [StorageLocation(name="default", path=self.data_dir / "weights")]

    @property
    def slack_enabled(self) -> bool:
        return self.slack_bot_token is not None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Precedence: explicit kwargs (tests, CLI) > environment > config file > defaults.
        return (init_settings, env_settings, ConfigFileSource(settings_cls))


def _encode_userinfo(url: str) -> str:
    """``url`` with its user and password percent-encoded, so that a password containing
    ``@``, ``/`` or ``:`` is read whole: the host is what follows the *last* ``@`` before the
    query (SQLAlchemy splits at the first, which made the rest of the password the host name,
    shown in every connection error). Already encoded parts stay as they are."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.startswith("sqlite"):  # a file path, which may contain "@"
        return url
    head = rest.split("?", 1)[0]
    at = head.rfind("@")
    if at < 0:
        return url
    user, colon, password = rest[:at].partition(":")
    userinfo = quote(unquote(user), safe="")
    if colon:
        userinfo += ":" + quote(unquote(password), safe="")
    return f"{scheme}://{userinfo}@{rest[at + 1 :]}"


class ConfigFileSource(PydanticBaseSettingsSource):
    """Values from the TOML/YAML file named by ``MODELARIUM_CONFIG``; ``[group]`` tables allowed."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError  # __call__ is overridden; pydantic-settings never calls this

    def __call__(self) -> dict[str, Any]:
        path = os.environ.get("MODELARIUM_CONFIG")
        return read_config_file(Path(path), Settings.model_fields, field_group) if path else {}


def field_group(name: str) -> str:
    extra = Settings.model_fields[name].json_schema_extra
    return str(extra.get("group", "general")) if isinstance(extra, dict) else "general"


SECRET_FIELDS = frozenset(
    name
    for name, info in Settings.model_fields.items()
    if "SecretStr" in str(info.annotation) or name in {"webhooks"}
)
