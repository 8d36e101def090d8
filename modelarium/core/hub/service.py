"""Discovery on the Hugging Face Hub: search, model details, config.json, and fit estimates.

Every Hub answer goes through the shared database cache with stale-while-revalidate reads
(:mod:`modelarium.core.refresh`): a search or a model card is answered from the cache when it
can be, a stale entry is answered at once and refreshed behind, and when the Hub is down the
cached answer is served and marked stale. Fit estimates are the ``core.fit`` estimator's; this
module only fetches what it needs and picks the GPUs to size against.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from huggingface_hub import errors as hf_errors
from huggingface_hub import hf_hub_download

from modelarium.config.settings import Settings
from modelarium.core.cache import Cache
from modelarium.core.clients.huggingface import (
    HubUnreachableError,
    hub_api,
    hub_errors,
    hub_token,
)
from modelarium.core.clock import Clock
from modelarium.core.db.uow import Database
from modelarium.core.errors import (
    ModelariumError,
    NotFoundError,
    PermissionDeniedError,
    UsageError,
    ValidationError,
)
from modelarium.core.fit import estimate, kv_dtype_bytes, parse_context, parse_quant
from modelarium.core.fit.sizing import SizedGpu, recommend
from modelarium.core.hub.architectures import ArchitectureStore
from modelarium.core.hub.models import HubModel, ModelSummary, model_from_info, summary_from_info
from modelarium.core.hub.search import EXPAND, SearchAnswer, SearchQuery, filter_rows
from modelarium.core.messages import timestamp
from modelarium.core.ports import ModelConfig
from modelarium.core.refresh import Fetched, Revalidator
from modelarium.core.vllm import Architecture

if TYPE_CHECKING:
    from modelarium.core.gpus import GpuChoice, GpuInventory

SEARCH = "hub.search"
INFO = "hub.info"
CONFIG = "hub.config"
HOT_NAMESPACES = (SEARCH, INFO)


@dataclass(frozen=True)
class FitReport:
    model: HubModel
    fetched: Fetched
    config_source: str
    sized: list[SizedGpu]
    notes: list[str] = field(default_factory=list)

    @property
    def recommended(self) -> SizedGpu | None:
        return recommend(self.sized)

    @property
    def explained(self) -> SizedGpu | None:
        """Whose arithmetic to show: the recommendation, else the closest miss."""
        if self.recommended is not None:
            return self.recommended
        estimated = [s for s in self.sized if s.result is not None]
        if not estimated:
            return None
        return max(
            estimated,
            key=lambda s: (
                s.result.max_model_len if s.result else 0,
                s.choice.profile.memory_bytes * s.choice.profile.count,
            ),
        )


@dataclass(frozen=True)
class ModelReport:
    """Everything `/model info` merges about one model revision."""

    model: HubModel
    fetched: Fetched
    config: dict[str, Any] | None
    config_note: str | None
    architecture: str | None
    vllm: Architecture | None
    fit: FitReport | None
    fit_error: str | None


@dataclass(frozen=True)
class HotRefresh:
    refreshed: int
    failed: int
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = f"refreshed {self.refreshed} hot cache entr{'y' if self.refreshed == 1 else 'ies'}"
        if self.failed:
            text += f", {self.failed} failed ({self.errors[0]})"
        return text


class HubService:
    def __init__(
        self, settings: Settings, db: Database, cache: Cache, clock: Clock, gpus: GpuInventory
    ) -> None:
        self.settings = settings
        self._cache = cache
        self._clock = clock
        self.gpus = gpus
        self.architectures = ArchitectureStore(settings, db, clock)
        self._revalidate = Revalidator(
            cache,
            clock,
            label="Hugging Face",
            stale_ttl=settings.hub_stale_ttl,
            deadline=settings.hub_timeout,
            unreachable=HubUnreachableError,
        )

    # -- upstream calls (run in the revalidator's threads) -----------------------------------
    def _list(self, params: dict[str, Any]) -> dict[str, Any]:
        api = hub_api(self.settings)
        with hub_errors("searching the Hub"):
            found = api.list_models(expand=EXPAND, **params)  # type: ignore[arg-type]
            models = [summary_from_info(m).to_json() for m in found]
        return {"models": models}

    def _info(self, repo: str, revision: str | None) -> dict[str, Any]:
        api = hub_api(self.settings)
        label = f"{repo}@{revision}" if revision else repo
        with hub_errors(label):
            info = api.model_info(repo, revision=revision, timeout=self.settings.hub_timeout)
        return model_from_info(info, revision or "main").to_json()

    def _config(self, repo: str, sha: str) -> dict[str, Any]:
        with hub_errors(f"{repo} config.json"):
            try:
                path = hf_hub_download(
                    repo,
                    "config.json",
                    revision=sha,
                    endpoint=self.settings.hf_endpoint.rstrip("/"),
                    token=hub_token(self.settings) or False,
                    cache_dir=self.settings.data_dir / "hub-metadata",
                    etag_timeout=self.settings.hub_timeout,
                )
            except hf_errors.RemoteEntryNotFoundError:
                return {"missing": True}
            except hf_errors.GatedRepoError:
                return {"denied": f"{repo} is gated: accept its terms on the Hub and set HF_TOKEN"}
            except hf_errors.LocalEntryNotFoundError as exc:
                # Raised when the Hub cannot be reached and nothing is on disk; it is an
                # EntryNotFoundError subclass, which hub_errors would call a missing file.
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
                raise HubUnreachableError(f"Hugging Face is unreachable ({first})") from None
        try:
            config = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise NotFoundError(f"{repo}: config.json is not valid JSON ({exc})") from None
        if not isinstance(config, dict):
            raise NotFoundError(f"{repo}: config.json is not a JSON object")
        return {"config": config}

    # -- cached reads ---------------------------------------------------------------------
    def search(self, query: SearchQuery) -> SearchAnswer:
        gpu = None
        warnings: list[str] = []
        if query.fits:  # an unknown GPU name fails before any Hub call
            snapshot = self.gpus.snapshot()
            choice = self.gpus.choices(query.fits, snapshot)[0]
            gpu = choice.profile
            if choice.source == "named" and snapshot.choices():
                warnings.append(f"{gpu.name} is not one of the cluster's GPU types")
        params = query.hub_params()
        fetched = self._revalidate.get(
            SEARCH, query.cache_key(), lambda: self._list(params), self.settings.hub_search_ttl
        )
        models = [ModelSummary.from_json(m) for m in fetched.value.get("models", [])]
        rows = filter_rows(query, models, self.architectures.catalog(), gpu)
        return SearchAnswer(
            query,
            rows,
            len(models),
            fetched.fetched_at,
            fetched.stale,
            fetched.note,
            fetched.cached,
            gpu,
            warnings,
        )

    def model(self, repo: str, revision: str | None = None) -> tuple[HubModel, Fetched]:
        key = f"{repo}@{revision or 'main'}"
        fetched = self._revalidate.get(
            INFO, key, lambda: self._info(repo, revision), self.settings.hub_info_ttl
        )
        return HubModel.from_json(fetched.value), fetched

    def model_config(self, repo: str, revision: str | None = None) -> ModelConfig:
        """The ``model_configs`` port: a revision pinned to its commit, with its config.json
        (or the Hub's summary of it) and safetensors summary."""
        model, _ = self.model(repo, revision)
        if not model.sha:
            raise NotFoundError(f"{repo}@{revision or 'main'}: the Hub gave no commit")
        config, _, problem = self._sizing_config(model)
        if config is None and problem:
            raise NotFoundError(f"cannot size {model.id}: {problem}")
        return ModelConfig(model.id, revision or "main", model.sha, config, model.safetensors)

    def architecture(self, name: str) -> Architecture | None:
        """The ``vllm_architecture`` port: from the (refreshable) architectures catalog."""
        return self.architectures.catalog().lookup(name)

    def config(self, repo: str, sha: str) -> dict[str, Any] | None:
        """config.json at a commit (None when the repo has none, e.g. GGUF-only repos).

        Raises PermissionDeniedError for a gated repo we hold no access to; that answer is cached
        too (per token state), so a gated model card does not ask the Hub on every view.
        """
        authed = "#token" if self.settings.hf_token else ""
        fetched = self._revalidate.get(
            CONFIG,
            f"{repo}@{sha}{authed}",
            lambda: self._config(repo, sha),
            self.settings.hub_info_ttl,
        )
        if "denied" in fetched.value:
            raise PermissionDeniedError(str(fetched.value["denied"]))
        config = fetched.value.get("config")
        return config if isinstance(config, dict) else None

    def _sizing_config(self, model: HubModel) -> tuple[dict[str, Any] | None, str, str | None]:
        """(config to size with, where it came from, why config.json itself is unavailable)."""
        problem: str | None = None
        try:
            config = self.config(model.id, model.sha or model.revision)
            if config is not None:
                return config, "config.json", None
            problem = "no config.json in this repo"
        except PermissionDeniedError as exc:
            problem = str(exc)
        # The Hub's own summary of config.json: complete for some repos, partial for most.
        if model.config and "hidden_size" in model.config:
            return model.config, "the Hub's config summary (config.json unavailable)", problem
        if model.quant == "gguf":
            problem = (problem or "no config.json") + (
                "; size the original repo with --quant Q4_K_M (or another GGUF type)"
            )
        return None, "", problem

    # -- sizing ---------------------------------------------------------------------------
    def fit(
        self,
        repo: str,
        revision: str | None = None,
        *,
        gpu: str | None = None,
        gpus: int | None = None,
        context: int | str | None = None,
        quant: str | None = None,
        kv_cache_dtype: str = "auto",
    ) -> FitReport:
        """The estimator's answer for each GPU type to consider (``gpu``: just that one)."""
        # Bad arguments fail before any Hub call.
        choices = self.gpus.choices(gpu)
        if context is not None:
            parse_context(context)
        if quant is not None and quant.strip().lower() not in ("", "auto"):
            parse_quant(quant)
        kv_dtype_bytes(kv_cache_dtype)
        model, fetched = self.model(repo, revision)
        config, source, problem = self._sizing_config(model)
        if config is None:
            raise NotFoundError(f"cannot size {model.id}: {problem}")
        return self._size(
            model, fetched, config, source, choices, gpus, context, quant, kv_cache_dtype
        )

    def _size(
        self,
        model: HubModel,
        fetched: Fetched,
        config: dict[str, Any],
        source: str,
        choices: list[GpuChoice],
        gpus: int | None = None,
        context: int | str | None = None,
        quant: str | None = None,
        kv_cache_dtype: str = "auto",
    ) -> FitReport:
        sized: list[SizedGpu] = []
        for choice in choices:
            try:
                result = estimate(
                    config,
                    choice.profile,
                    gpus=gpus,
                    context=context,
                    quant=quant,
                    kv_cache_dtype=kv_cache_dtype,
                    safetensors=model.safetensors,
                )
                sized.append(SizedGpu(choice, result))
            except UsageError:
                raise  # the caller's own argument is wrong: say so once, not per GPU
            except ModelariumError as exc:
                sized.append(SizedGpu(choice, error=str(exc)))
        if sized and all(s.error for s in sized):
            raise ValidationError(f"cannot size {model.id}: {sized[0].error}")
        notes: list[str] = []
        if fetched.stale:
            notes.append(f"Hub data from {timestamp(fetched.fetched_at)} ({fetched.note})")
        return FitReport(model, fetched, source, sized, notes)

    def describe(self, repo: str, revision: str | None = None) -> ModelReport:
        """Hub metadata + config.json + vLLM support + the fit on each GPU type."""
        choices = self.gpus.choices()
        model, fetched = self.model(repo, revision)
        config, source, problem = self._sizing_config(model)
        shown = config if config is not None else model.config
        note = problem
        if problem and shown is not None:
            note = f"{problem}; showing the Hub's summary of it"
        archs = (shown or {}).get("architectures")
        arch_name = archs[0] if isinstance(archs, list) and archs else None
        vllm = self.architectures.catalog().lookup(arch_name) if arch_name else None
        fit: FitReport | None = None
        fit_error: str | None = None
        if config is None:
            fit_error = f"cannot size {model.id}: {problem}"
        else:
            try:
                fit = self._size(model, fetched, config, source, choices)
            except ModelariumError as exc:
                fit_error = str(exc)
        return ModelReport(model, fetched, shown, note, arch_name, vllm, fit, fit_error)

    # -- daemon ---------------------------------------------------------------------------
    def refresh_hot(self, limit: int = 20, window: float = 86400.0) -> HotRefresh:
        """Re-fetch the most-used search and model entries of the last ``window`` seconds."""
        since = self._clock.now() - timedelta(seconds=window)
        refreshed = failed = 0
        errors: list[str] = []
        for namespace in HOT_NAMESPACES:
            for key in self._cache.hot_keys(namespace, limit=limit, since=since):
                try:
                    if namespace == SEARCH:
                        params = json.loads(key)
                        self._revalidate.refresh(
                            SEARCH,
                            key,
                            lambda p=params: self._list(p),  # type: ignore[misc]
                            self.settings.hub_search_ttl,
                        )
                    else:
                        repo, _, rev = key.partition("@")
                        revision = None if rev == "main" else rev
                        self._revalidate.refresh(
                            INFO,
                            key,
                            lambda r=repo, v=revision: self._info(r, v),  # type: ignore[misc]
                            self.settings.hub_info_ttl,
                        )
                    refreshed += 1
                except (ModelariumError, ValueError) as exc:
                    failed += 1
                    errors.append(str(exc))
        return HotRefresh(refreshed, failed, errors)

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait for background refreshes (tests; a clean shutdown)."""
        return self._revalidate.wait_idle(timeout)
