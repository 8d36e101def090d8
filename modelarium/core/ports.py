"""Ports: what one capability needs from another, as narrow interfaces passed in.

A capability never reaches into another's service. It asks for a port here; the manifest says
which capability provides it (``provides=``), and the core resolves it when first called, so
capabilities can be built in any order and a missing provider has a safe default.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from modelarium.core.errors import NotBuiltError

LOGGER_TOKEN_MASK = "hidden-logger-token"
"""What stands for a group's logger token in every spec Modelarium keeps or shows; the
``reveal_logger_url`` port fills it in on the way to the cluster."""


class ResolvedEndpointLike(Protocol):
    name: str
    base_url: str
    type: str
    api_key: str | None
    revision: int


class EndpointResolver(Protocol):
    """Connection details of a registered endpoint for a user (raises if not visible)."""

    def __call__(self, name: str, user: str) -> ResolvedEndpointLike: ...


class EndpointStatus(Protocol):
    """A registered endpoint's health for a user: healthy, down, unknown (raises if not visible)."""

    def __call__(self, name: str, user: str) -> str: ...


class WeightsInUse(Protocol):
    """Who serves these weights (deployment names); purges spare them."""

    def __call__(self, repo_id: str, commit: str, location: str) -> list[str]: ...


@dataclass(frozen=True)
class InstalledSnapshot:
    """Verified weights of one commit in one storage location, as the weights capability has
    them: where the snapshot is on disk (Hugging Face cache layout), or in a bucket."""

    repo: str
    revision: str
    commit: str
    location: str
    path: Path
    record_id: int
    storage_uri: str | None = None
    """Weights in a bucket location: where a server loads them (``s3://...``); ``path`` is
    then not a local folder."""
    service_account: str | None = None
    """The bucket location's Kubernetes service account (its credentials to read the bucket)."""
    config: dict[str, Any] | None = None
    """A bucket snapshot's config.json, read from the bucket."""


class InstalledWeights(Protocol):
    """Installed snapshots of a repo (``revision``: a ref name or a commit prefix), newest last."""

    def __call__(self, repo_id: str, revision: str | None) -> list[InstalledSnapshot]: ...


@dataclass(frozen=True)
class ModelConfig:
    """A Hub model pinned to a commit: its config.json and safetensors summary."""

    repo: str
    revision: str
    commit: str
    config: dict[str, Any] | None
    safetensors: dict[str, Any] | None


class ModelConfigs(Protocol):
    """Resolve ``repo@revision`` on the Hub to a commit and read its config.json (cached)."""

    def __call__(self, repo_id: str, revision: str | None) -> ModelConfig: ...


class ModelFacts(Protocol):
    """What discovery knows about a model on the Hub (the hub capability provides it)."""

    architectures: Any

    def describe(self, repo_id: str, revision: str | None = None) -> Any: ...

    def fit(self, repo_id: str, revision: str | None = None, **options: Any) -> Any: ...


class WeightsStore(Protocol):
    """The installed weights and their storage locations (the weights capability)."""

    @property
    def locations(self) -> list[Any]: ...

    def location(self, name: str | None = None) -> Any: ...

    def matching(
        self,
        repo_id: str,
        revision: str | None = None,
        location: str | None = None,
        statuses: Any = None,
    ) -> list[Any]: ...

    def bucket_uri(self, location: str, repo_id: str, commit: str) -> str:
        """``s3://...``: where a bucket location keeps (or would keep) these weights."""
        ...


class CatalogStorage(Protocol):
    """Weights of ``repo_id@commit`` are now at ``storage_uri``: propose the catalog entries'
    update (the catalog capability's PR flow); one line per entry proposed or refused."""

    def __call__(
        self, repo_id: str, commit: str, storage_uri: str, user: str, channel: str | None
    ) -> list[str]: ...


class CatalogHistoryPort(Protocol):
    """Record an event of ``repo_id``'s model (a group promotion) in its catalog entries'
    history; returns the entry ids recorded (none: the catalog does not list the model)."""

    def __call__(
        self, repo_id: str, action: str, text: str, *, user: str | None = None,
        source: str | None = None, detail: dict[str, Any] | None = None,
    ) -> list[str]: ...  # fmt: skip


class Ports:
    """The ports of one core; ``provider(port)`` returns the implementation or ``None``."""

    def __init__(self, provider: Callable[[str], Any | None]) -> None:
        self._provider = provider

    def _get(self, port: str) -> Any | None:
        return self._provider(port)

    @property
    def endpoint_resolver(self) -> EndpointResolver:
        def resolve(name: str, user: str) -> ResolvedEndpointLike:
            implementation = self._get("endpoint_resolver")
            if implementation is None:
                raise NotBuiltError("no endpoint registry is installed to resolve endpoints")
            return implementation(name, user)  # type: ignore[no-any-return]

        return resolve

    @property
    def endpoint_status(self) -> EndpointStatus:
        def status(name: str, user: str) -> str:
            implementation = self._get("endpoint_status")
            if implementation is None:
                raise NotBuiltError("no endpoint registry is installed to check endpoints")
            return str(implementation(name, user))

        return status

    @property
    def deployment_canary(self) -> Any:
        """Deployments as a canary group needs them (a
        :class:`~modelarium.core.deployments.canary.DeploymentCanary`): find, render, plan and
        run the apply stages of a revision with ``canaryTrafficPercent`` and a logger."""
        implementation = self._get("deployment_canary")
        if implementation is None:
            raise NotBuiltError("no deployments capability is installed (canary groups need it)")
        return implementation

    @property
    def gpu_inventory(self) -> Any:
        """The GPU inventory (a :class:`~modelarium.core.gpus.GpuInventory`) fits size against."""
        implementation = self._get("gpu_inventory")
        if implementation is None:
            raise NotBuiltError("no GPU inventory is installed")
        return implementation

    @property
    def model_facts(self) -> ModelFacts:
        implementation = self._get("model_facts")
        if implementation is None:
            raise NotBuiltError("no model discovery is installed")
        return implementation  # type: ignore[no-any-return]

    @property
    def weights_store(self) -> WeightsStore:
        implementation = self._get("weights_store")
        if implementation is None:
            raise NotBuiltError("no weights capability is installed")
        return implementation  # type: ignore[no-any-return]

    @property
    def weights_in_use(self) -> WeightsInUse:
        def in_use(repo_id: str, commit: str, location: str) -> list[str]:
            implementation = self._get("weights_in_use")
            return list(implementation(repo_id, commit, location)) if implementation else []

        return in_use

    @property
    def installed_weights(self) -> InstalledWeights:
        def installed(repo_id: str, revision: str | None) -> list[InstalledSnapshot]:
            implementation = self._get("installed_weights")
            return list(implementation(repo_id, revision)) if implementation else []

        return installed

    @property
    def model_configs(self) -> ModelConfigs:
        def resolve(repo_id: str, revision: str | None) -> ModelConfig:
            implementation = self._get("model_configs")
            if implementation is None:
                raise NotBuiltError("no Hub discovery is installed to resolve models")
            return implementation(repo_id, revision)  # type: ignore[no-any-return]

        return resolve

    @property
    def vllm_architecture(self) -> Callable[[str], Any]:
        """An architecture name -> :class:`~modelarium.core.vllm.Architecture` or None: the
        Hub capability's (refreshable) catalog, else the packaged one."""

        def lookup(name: str) -> Any:
            implementation = self._get("vllm_architecture")
            if implementation is None:
                from modelarium.core.vllm import lookup as packaged

                return packaged(name)
            return implementation(name)

        return lookup

    @property
    def catalog_storage(self) -> CatalogStorage:
        """Propose catalog ``storage_uri`` updates (no catalog capability: nothing to update)."""

        def propose(
            repo_id: str, commit: str, storage_uri: str, user: str, channel: str | None
        ) -> list[str]:
            implementation = self._get("catalog_storage")
            if implementation is None:
                return []
            return list(implementation(repo_id, commit, storage_uri, user, channel))

        return propose

    @property
    def model_deprecation(self) -> Callable[[str, str], str | None]:
        """(repo, commit) -> why the catalog deprecates the model, or None (no catalog: None)."""

        def deprecated(repo_id: str, commit: str) -> str | None:
            implementation = self._get("model_deprecation")
            return implementation(repo_id, commit) if implementation else None

        return deprecated

    @property
    def reveal_logger_url(self) -> Callable[[str], str]:
        """A logger URL with :data:`LOGGER_TOKEN_MASK` -> the URL KServe posts to, with its
        group's token (no groups capability, or no such group: unchanged)."""

        def reveal(url: str) -> str:
            implementation = self._get("reveal_logger_url")
            return str(implementation(url)) if implementation else url

        return reveal

    @property
    def catalog_history(self) -> CatalogHistoryPort:
        """Record a model's event in its catalog entries' history (no catalog: nothing)."""

        def record(
            repo_id: str, action: str, text: str, *, user: str | None = None,
            source: str | None = None, detail: dict[str, Any] | None = None,
        ) -> list[str]:  # fmt: skip
            implementation = self._get("catalog_history")
            if implementation is None:
                return []
            return list(
                implementation(repo_id, action, text, user=user, source=source, detail=detail)
            )

        return record
