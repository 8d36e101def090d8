"""Ollama operations through a registered endpoint: list, show/extract, create, copy, pull,
push, delete.

Long transfers (pull, push) and creates are jobs, so their progress edits one message in place
and a daemon restart resumes them; delete goes through an approval. The endpoint is resolved
for the calling user every time (in the job: for the user who started it), so its URL and API
key are never copied into job parameters.
"""

from __future__ import annotations

import math
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from modelarium.core.changes import (
    ApprovalPolicy,
    ChangeContext,
    ChangeKind,
    ChangeView,
    Inverse,
    NotRevertible,
    Plan,
)
from modelarium.core.clients.ollama import (
    LocalModel,
    OllamaClient,
    OllamaError,
    Progress,
    ShowResult,
    human_size,
)
from modelarium.core.errors import (
    ConflictError,
    NotBuiltError,
    NotFoundError,
    PermissionDeniedError,
    UsageError,
    ValidationError,
    is_retryable,
)
from modelarium.core.jobs import JobContext, JobFailed, JobKind, JobService, JobView
from modelarium.core.modelfiles import parameters as params
from modelarium.core.modelfiles.elements import Elements, split_elements
from modelarium.core.modelfiles.errors import ModelfileParseError
from modelarium.core.modelfiles.library import ModelfileLibrary, RevisionView
from modelarium.core.modelfiles.model import Modelfile
from modelarium.core.modelfiles.parser import parse
from modelarium.core.modelfiles.validate import is_local_path, validate
from modelarium.core.modelfiles.writer import write
from modelarium.core.rbac import Role

if TYPE_CHECKING:
    from modelarium.core.kernel import Kernel

PULL_JOB = "ollama.pull"
PUSH_JOB = "ollama.push"
CREATE_JOB = "ollama.create"
DELETE_ACTION = "ollama.delete"
CANCEL_CHECK_INTERVAL = 1.0
"""Seconds between cancel checks within one stream status (each check reads the job row)."""


class Endpoint(Protocol):
    """What the endpoint registry's ``resolve`` returns (``ResolvedEndpoint``)."""

    name: str
    base_url: str
    type: str
    api_key: str | None
    revision: int


Resolver = Callable[[str, str], Endpoint]


@dataclass(frozen=True)
class Extracted:
    """A model's Modelfile from ``/api/show``, made reusable: FROM is the model's name."""

    model: str
    base: str
    text: str
    modelfile: Modelfile
    elements: Elements
    dropped: tuple[str, ...]
    """Lines left out because they name files inside the endpoint (inherited through FROM)."""


def create_request(
    modelfile: Modelfile, model: str, *, quantize: str | None = None
) -> dict[str, Any]:
    """The structured ``/api/create`` body ``ollama create`` would send for ``modelfile``.

    Mirrors ``parser.Modelfile.CreateRequest``: last TEMPLATE/SYSTEM/... wins, licenses and
    messages accumulate, parameters are typed by ``FormatParams`` (deprecated ones dropped),
    REQUIRES loses its ``v``. Local files (FROM/ADAPTER/DRAFT paths) would have to be uploaded
    as blobs from the machine holding them, which a chat bot is not, so they are refused.
    """
    errors = [p for p in validate(modelfile) if p.severity == "error"]
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ValidationError(f"{errors[0]}{more}")
    for kind in ("from", "adapter", "draft"):
        for cmd in modelfile.where(kind):
            if is_local_path(cmd.args):
                where = f"line {cmd.line}: " if cmd.line else ""
                raise ValidationError(
                    f"{where}{kind.upper()} {cmd.args} is a local file; creating over the API"
                    " needs a model name (pull or create the base on the endpoint first)"
                )
    request: dict[str, Any] = {"model": model, "from": modelfile.from_}
    for key in ("template", "system", "renderer", "parser"):
        value = getattr(modelfile, key)
        if value:
            request[key] = value
    licenses = modelfile.licenses
    if licenses:
        request["license"] = licenses[0] if len(licenses) == 1 else licenses
    pairs = [(cmd.key, cmd.args) for cmd in modelfile.where("parameter")]
    resolved = {
        key: float32_json(value) if isinstance(value, float) else value
        for key, value in params.resolve(pairs).items()
    }
    if resolved:
        request["parameters"] = resolved
    if modelfile.messages:
        request["messages"] = [{"role": m.role, "content": m.content} for m in modelfile.messages]
    if modelfile.requires:
        request["requires"] = modelfile.requires.removeprefix("v")
    if quantize:
        request["quantize"] = quantize
    return request


def float32_json(value: float) -> float:
    """The float Go's ``json.Marshal`` writes for a ``float32``: its shortest decimal.

    ``FormatParams`` keeps floats as float32, so ``ollama create`` sends ``0.6``; sending the
    widened ``0.6000000238418579`` would be stored (and shown back) by the server as is.
    """
    if not math.isfinite(value):
        return value
    target = struct.unpack("f", struct.pack("f", value))[0]
    for digits in range(1, 10):
        candidate = float(f"{value:.{digits}g}")
        if struct.unpack("f", struct.pack("f", candidate))[0] == target:
            return candidate
    return value


def extract(show: ShowResult, model: str) -> Extracted:
    """Turn ``ollama show --modelfile`` output into a Modelfile that builds on ``model``.

    Ollama writes FROM as a blob path inside its own store, adds one FROM per projector and
    lists parameters in random (Go map) order. The header names the model to use instead
    (``# FROM llama3:latest``); we use it, drop the blob lines (the new model inherits them
    through FROM) and sort parameters, so extracting twice gives the same text.
    """
    try:
        parsed = parse(show.modelfile)
    except ModelfileParseError as err:
        raise ValidationError(f"Ollama returned a Modelfile that does not parse: {err}") from None
    base = model
    for line in show.modelfile.splitlines():
        stripped = line.strip()
        if stripped.startswith("# FROM "):
            base = stripped.removeprefix("# FROM ").strip() or model
            break
    elements = split_elements(parsed)
    dropped = [f"FROM {f}" for f in parsed.froms if is_local_path(f)]
    dropped += [f"ADAPTER {a}" for a in elements.adapters if is_local_path(a)]
    if elements.draft and is_local_path(elements.draft):
        dropped.append(f"DRAFT {elements.draft}")
    data = elements.to_dict()
    data.update(
        base=base,
        extra_froms=[],
        adapters=[a for a in elements.adapters if not is_local_path(a)],
        draft=None if elements.draft and is_local_path(elements.draft) else elements.draft,
        parameters=dict(sorted(elements.parameters.items())),
    )
    text = write(Elements.from_dict(data).compose())
    modelfile = parse(text)
    return Extracted(model, base, text, modelfile, split_elements(modelfile), tuple(dropped))


class _Throttle:
    """True at most every ``interval`` seconds of wall time (cancel checks during a stream)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._last = time.monotonic()

    def __call__(self) -> bool:
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            return True
        return False


def follow(ctx: JobContext, stream: Iterator[Progress], *, what: str) -> str:
    """Report a pull/push/create stream as job progress; returns the last status.

    Byte counts are summed over layers (Ollama reports each layer's digest, total and
    completed); a new status (a new layer, "verifying", "writing manifest") is reported at
    once, byte updates are throttled by the job service.
    """
    layers: dict[str, tuple[int, int]] = {}
    last = ""
    check = _Throttle(CANCEL_CHECK_INTERVAL)
    try:
        for event in stream:
            if event.digest and event.total:
                layers[event.digest] = (min(event.completed, event.total), event.total)
            done = sum(c for c, _ in layers.values())
            total = sum(t for _, t in layers.values())
            message = event.status
            if total:
                message = f"{event.status} · {human_size(done)} / {human_size(total)}"
            changed = event.status != last
            ctx.progress(done, total or None, unit="B", message=message, force=changed)
            last = event.status
            if changed or check():
                ctx.check_cancelled()
    except OllamaError as exc:
        raise JobFailed(str(exc), retry=is_retryable(exc)) from None
    if last != "success":
        raise JobFailed(f"{what}: the stream ended before success (last: {last or 'nothing'})")
    return last


class OllamaOps:
    """Ollama model management; endpoints come through the ``endpoint_resolver`` port."""

    def __init__(self, jobs: JobService, library: ModelfileLibrary, resolver: Resolver) -> None:
        self._jobs = jobs
        self._library = library
        self.resolver = resolver

    # -- endpoints --------------------------------------------------------------------------

    def resolve(self, endpoint: str | None, user: str) -> Endpoint:
        if not endpoint:
            raise UsageError("--endpoint is required (the name of a registered Ollama endpoint)")
        resolved = self.resolver(endpoint, user)
        if str(resolved.type).lower() != "ollama":
            raise UsageError(
                f"endpoint {resolved.name} is a {resolved.type} endpoint; this needs an Ollama one"
            )
        return resolved

    def client(self, endpoint: str | None, user: str) -> OllamaClient:
        return self.open_client(self.resolve(endpoint, user))

    @staticmethod
    def open_client(resolved: Endpoint) -> OllamaClient:
        """A client for a resolved endpoint, through the registry's address guard."""
        return OllamaClient(
            resolved.base_url,
            api_key=resolved.api_key,
            name=resolved.name,
            policy=getattr(resolved, "policy", None),
        )

    # -- immediate calls --------------------------------------------------------------------

    def list_models(self, endpoint: str | None, user: str) -> list[LocalModel]:
        with self.client(endpoint, user) as client:
            return sorted(client.list_models(), key=lambda m: m.name)

    def show(self, endpoint: str | None, user: str, model: str) -> tuple[ShowResult, Extracted]:
        with self.client(endpoint, user) as client:
            shown = client.show(model)
        return shown, extract(shown, model)

    def copy(self, endpoint: str | None, user: str, source: str, destination: str) -> None:
        with self.client(endpoint, user) as client:
            client.copy(source, destination)

    # -- jobs and approvals -----------------------------------------------------------------

    def start_transfer(
        self, kind: str, endpoint: str | None, user: str, model: str, *, channel: str | None
    ) -> JobView:
        resolved = self.resolve(endpoint, user)  # fail now, not in the daemon, when it cannot
        return self._jobs.enqueue(
            kind,
            {"endpoint": resolved.name, "model": model, "user": user},
            created_by=user,
            channel=channel,
        )

    def start_create(
        self,
        endpoint: str | None,
        user: str,
        model: str,
        revision: RevisionView,
        *,
        quantize: str | None = None,
        channel: str | None = None,
    ) -> JobView:
        resolved = self.resolve(endpoint, user)
        create_request(revision.modelfile, model, quantize=quantize)  # refuse bad ones now
        return self._jobs.enqueue(
            CREATE_JOB,
            {
                "endpoint": resolved.name,
                "model": model,
                "modelfile": revision.name,
                "revision": revision.number,
                "quantize": quantize,
                "user": user,
            },
            created_by=user,
            channel=channel,
        )

    # -- job stages (run in the daemon) -----------------------------------------------------

    def _job_client(self, ctx: JobContext) -> OllamaClient:
        """The client for a job, as the user who started it; a lost endpoint (deleted, made
        private, retyped) fails the job at once: retrying would not bring it back."""
        try:
            return self.client(ctx.params["endpoint"], ctx.params["user"])
        except (NotFoundError, PermissionDeniedError, UsageError, NotBuiltError) as exc:
            raise JobFailed(str(exc), retry=False) from None

    def run_transfer(self, ctx: JobContext, stage: str) -> None:
        p = ctx.params
        with self._job_client(ctx) as client:
            stream = client.pull(p["model"]) if stage == "pull" else client.push(p["model"])
            follow(ctx, stream, what=f"{stage} {p['model']}")

    def run_create(self, ctx: JobContext, stage: str) -> None:
        p = ctx.params
        if stage == "create":
            try:
                revision = self._library.revision(p["modelfile"], p["revision"])
                request = create_request(revision.modelfile, p["model"], quantize=p.get("quantize"))
            except (NotFoundError, ValidationError) as exc:
                raise JobFailed(str(exc), retry=False) from None
            with self._job_client(ctx) as client:
                follow(ctx, client.create(request), what=f"create {p['model']}")
        elif stage == "record":
            self._library.record_application(
                p["modelfile"],
                p["revision"],
                endpoint=p["endpoint"],
                model=p["model"],
                user=p["user"],
                job_id=ctx.job_id,
            )


def register(kernel: Kernel, ollama: OllamaOps) -> None:
    """Job kinds for pull/push/create and the change kind for delete."""

    kernel.jobs.register(
        JobKind(
            PULL_JOB,
            ("pull",),
            ollama.run_transfer,
            lambda p: f"pull {p['model']} on {p['endpoint']}",
        )
    )
    kernel.jobs.register(
        JobKind(
            PUSH_JOB,
            ("push",),
            ollama.run_transfer,
            lambda p: f"push {p['model']} from {p['endpoint']}",
        )
    )
    kernel.jobs.register(
        JobKind(
            CREATE_JOB,
            ("create", "record"),
            ollama.run_create,
            lambda p: (
                f"create {p['model']} on {p['endpoint']} from {p['modelfile']}@{p['revision']}"
            ),
        )
    )
    kernel.changes.register(OllamaRemove(ollama))


class OllamaRemove(ChangeKind):
    """``ollama rm`` behind an approval bound to what it will really touch: the endpoint's
    resolved URL and revision, not only its name (a repointed endpoint refuses to run)."""

    name = DELETE_ACTION
    stages = ("delete",)

    def __init__(self, ollama: OllamaOps) -> None:
        self.ollama = ollama

    def describe(self, params: dict[str, Any]) -> str:
        return f"Delete model {params['model']} from Ollama endpoint {params['endpoint']}"

    def plan(self, params: dict[str, Any], user: str) -> Plan:
        resolved = self.ollama.resolve(params.get("endpoint"), user)
        model = str(params["model"])
        with self.ollama.open_client(resolved) as c:
            present = {name for m in c.list_models() for name in (m.name, m.model)}
        if not {model, f"{model}:latest"} & present:
            raise NotFoundError(f"Ollama {resolved.name} has no model {model}")
        bound = {
            "endpoint": resolved.name,
            "model": model,
            "url": resolved.base_url,
            "endpoint_revision": resolved.revision,
            "user": user,
        }
        return Plan(
            target=f"ollama:{resolved.name}/{model}",
            summary=self.describe(bound),
            params=bound,
            approval=ApprovalPolicy.required(
                "deleting a model from an Ollama server cannot be undone", role=Role.OPERATOR
            ),
            diff=(f"- {model} on {resolved.name} ({resolved.base_url})",),
        )

    def check(self, params: dict[str, Any]) -> None:
        resolved = self.ollama.resolve(params["endpoint"], params["user"])
        if (resolved.base_url, resolved.revision) != (params["url"], params["endpoint_revision"]):
            raise ConflictError(
                f"endpoint {resolved.name} was edited after this was approved (it pointed at "
                f"{params['url']}, revision {params['endpoint_revision']}; now "
                f"{resolved.base_url}, revision {resolved.revision}); nothing was deleted"
            )

    def run_stage(self, ctx: ChangeContext, stage: str) -> None:
        p = ctx.params
        with self.ollama._job_client(ctx) as client:
            try:
                client.delete(p["model"])
            except OllamaError as exc:
                raise JobFailed(str(exc), retry=is_retryable(exc)) from None
        ctx.record(f"🗑️ Deleted {p['model']} from {p['endpoint']}; `ollama pull` brings it back.")

    def revert(self, change: ChangeView) -> Inverse:
        raise NotRevertible(
            f"a deleted Ollama model is gone; pull it again with "
            f"`ollama pull {change.params['model']} --endpoint {change.params['endpoint']}`"
        )
