"""Every tunable of Modelarium in one typed place.

Values come, in rising precedence, from defaults, an optional TOML/YAML file named by
``MODELARIUM_CONFIG``, and the environment (``MODELARIUM_*`` plus the ecosystem's own names:
``SLACK_BOT_TOKEN``, ``HF_ENDPOINT``, ``GITHUB_TOKEN``, ``KUBECONFIG``...). Fields are flat so
that every variable is simply ``MODELARIUM_<FIELD>``; the ``group`` of each field only orders
``modelarium config show`` and lets the config file use ``[group]`` tables.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

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

from modelarium.config.units import parse_duration, parse_size

Duration = Annotated[float, BeforeValidator(parse_duration)]
"""Seconds; accepts ``30s``, ``5m``, ``2h``, ``1d`` or a number."""

Size = Annotated[int, BeforeValidator(parse_size)]
"""Bytes; accepts ``500GiB``, ``2TB`` or a number."""

Role = Literal["viewer", "operator", "admin"]


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
    """A named root for model weights, in the Hugging Face cache layout."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    path: Path
    capacity: Size | None = None
    high_watermark: float = Field(0.85, gt=0, le=1)
    low_watermark: float = Field(0.75, gt=0, le=1)
    min_age: Duration = 3600.0
    max_age: Duration | None = None

    @model_validator(mode="after")
    def _watermarks_ordered(self) -> StorageLocation:
        if self.low_watermark >= self.high_watermark:
            raise ValueError("low_watermark must be below high_watermark")
        return self


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
        description='Slack user group id -> role, JSON: {"S012AB": "operator"}.',
    )
    group_sync_interval: Duration = Field(900.0, json_schema_extra={"group": "rbac"})
    approval_expiry: Duration = Field(86400.0, json_schema_extra={"group": "approvals"})
    self_approval_actions: CommaList = Field(
        default_factory=list,
        json_schema_extra={"group": "approvals"},
        description="Action types whose requester may approve their own request.",
    )
    approvals_channel: str | None = Field(None, json_schema_extra={"group": "approvals"})

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

    # -- github ---------------------------------------------------------------------------
    github_token: SecretStr | None = Field(
        None, validation_alias=_env("github_token"), json_schema_extra={"group": "github"}
    )
    github_api_url: str = Field("https://api.github.com", json_schema_extra={"group": "github"})
    catalog_repo: str | None = Field(None, json_schema_extra={"group": "github"})

    # -- storage --------------------------------------------------------------------------
    storage_locations: Annotated[list[StorageLocation], NoDecode, BeforeValidator(_json_value)] = (
        Field(default_factory=list, json_schema_extra={"group": "storage"})
    )
    install_approval_threshold: Size = Field(100 * 1024**3, json_schema_extra={"group": "storage"})
    purge_approval_threshold: Size = Field(50 * 1024**3, json_schema_extra={"group": "storage"})
    # Files fetched at once per install. 8 is huggingface_hub's own default; bench/install on 2
    # CPUs measured 0.87-0.94x of snapshot_download's throughput with 4, 1.10x with 8.
    download_concurrency: int = Field(8, ge=1, le=64, json_schema_extra={"group": "storage"})

    # -- endpoints ------------------------------------------------------------------------
    health_timeout: Duration = Field(5.0, json_schema_extra={"group": "endpoints"})
    health_concurrency: int = Field(200, ge=1, json_schema_extra={"group": "endpoints"})
    health_fail_threshold: int = Field(3, ge=1, json_schema_extra={"group": "endpoints"})
    health_recover_threshold: int = Field(2, ge=1, json_schema_extra={"group": "endpoints"})
    health_history: int = Field(100, ge=1, json_schema_extra={"group": "endpoints"})
    endpoint_cooldown: Duration = Field(60.0, json_schema_extra={"group": "endpoints"})

    # -- alerts and notifications ---------------------------------------------------------
    task_failure_threshold: int = Field(3, ge=1, json_schema_extra={"group": "alerts"})
    alert_repeat_interval: Duration = Field(4 * 3600.0, json_schema_extra={"group": "alerts"})
    notify_default_channel: str | None = Field(None, json_schema_extra={"group": "notify"})
    notify_routes: Annotated[list[NotificationRoute], NoDecode, BeforeValidator(_json_value)] = (
        Field(default_factory=list, json_schema_extra={"group": "notify"})
    )
    webhooks: Annotated[list[WebhookTarget], NoDecode, BeforeValidator(_json_value)] = Field(
        default_factory=list, json_schema_extra={"group": "notify"}
    )
    delivery_max_attempts: int = Field(8, ge=1, json_schema_extra={"group": "notify"})

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

    @field_validator("slack_api_url", "hf_endpoint", "github_api_url", "vllm_architectures_url")
    @classmethod
    def _check_http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @model_validator(mode="after")
    def _unique_location_names(self) -> Settings:
        names = [location.name for location in self.storage_locations]
        if len(names) != len(set(names)):
            raise ValueError("storage_locations: location names must be unique")
        return self

    # -- derived values -------------------------------------------------------------------

    @property
    def effective_database_url(self) -> str:
        if self.database_url is not None:
            url = self.database_url.get_secret_value()
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


class ConfigFileSource(PydanticBaseSettingsSource):
    """Values from the TOML/YAML file named by ``MODELARIUM_CONFIG``; ``[group]`` tables allowed."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError  # __call__ is overridden; pydantic-settings never calls this

    def __call__(self) -> dict[str, Any]:
        from modelarium.config.files import read_config_file

        path = os.environ.get("MODELARIUM_CONFIG")
        return read_config_file(Path(path)) if path else {}


def field_group(name: str) -> str:
    extra = Settings.model_fields[name].json_schema_extra
    return str(extra.get("group", "general")) if isinstance(extra, dict) else "general"


SECRET_FIELDS = frozenset(
    name
    for name, info in Settings.model_fields.items()
    if "SecretStr" in str(info.annotation) or name in {"webhooks"}
)
