"""``/model publish``: copy verified weights from a volume into a bucket location, and verify a
bucket's copy again (``/model verify`` on a bucket location).

A publish is a change (approved above the install threshold) run as a job: ``check`` (the bucket
answers, with these credentials) -> ``copy`` (each file's SHA-256 checked against the verified
install before its upload completes; resumable) -> ``activate`` (every object present with its
size, then the manifest, last). The bucket's copy gets its own weights record, so inventory,
pins, verify and purge treat it like any install; its ``storage_uri`` is what KServe loads.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from modelarium.config.units import format_size
from modelarium.core.changes import (
    ApprovalPolicy,
    ChangeContext,
    ChangeKind,
    ChangeView,
    Failed,
    Inverse,
    Plan,
    Retryable,
)
from modelarium.core.clients.s3 import BucketError, BucketUnreachable, s3_client
from modelarium.core.db.models.weights import WeightRecord
from modelarium.core.errors import ConflictError, ModelariumError, NotFoundError, UsageError
from modelarium.core.jobs import JobContext, JobFailed, JobView
from modelarium.core.rbac import Role
from modelarium.core.weights.buckets import Bucket, manifest_key, model_prefix, storage_uri
from modelarium.core.weights.layout import RepoLayout
from modelarium.core.weights.objects import BucketCopy, FileToCopy
from modelarium.core.weights.records import PURGE_JOB, record_files, short_ref

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from modelarium.core.ports import CatalogStorage
    from modelarium.core.weights.service import WeightsService

PUBLISH = "weights.publish"
BUCKET_VERIFY_JOB = "weights.verify_bucket"


class PublishChange(ChangeKind):
    name = PUBLISH
    stages = ("check", "copy", "activate")
    role = Role.OPERATOR
    stage_labels = {"copy": "copy + verify"}

    def __init__(self, weights: WeightsService, catalog: CatalogStorage | None = None) -> None:
        self.weights = weights
        self.catalog = catalog
        """The ``catalog_storage`` port: proposes the catalog entries' storage_uri update."""

    def describe(self, params: dict[str, Any]) -> str:
        return f"Publish {short_ref(params['repo'], params['commit'])} to {params['to']}"

    def plan(self, params: dict[str, Any], user: str) -> Plan:
        weights = self.weights
        target = weights.location(params["to"])
        if not target.is_bucket:
            buckets = [loc.name for loc in weights.locations if loc.is_bucket]
            raise UsageError(
                f"{target.name} is not a bucket location; publish copies to one of: "
                + (", ".join(buckets) or "(none configured: add a location with type s3)")
            )
        Bucket(target).check()  # a missing bucket or refused credentials: one line, now
        sources = [
            r
            for r in weights.matching(
                params["repo"], params.get("revision"), params.get("from"), ("installed",)
            )
            if not weights.location(r.location).is_bucket
        ]
        if not sources:
            what = params["repo"] + (f"@{params['revision']}" if params.get("revision") else "")
            raise NotFoundError(
                f"{what} is not installed on a volume" + (
                    f" ({params['from']})" if params.get("from") else ""
                ) + f": install it first (`install {what}`)"
            )  # fmt: skip
        source = max(sources, key=lambda r: (r.verified_at is not None, r.installed_at or 0, r.id))
        if source.verified_at is None:
            raise ConflictError(
                f"{short_ref(source.repo_id, source.commit)} in {source.location} was never "
                f"verified: run `verify {source.repo_id}@{source.commit[:7]}` first"
            )
        existing = weights.matching(source.repo_id, source.commit, target.name, ("installed",))
        if existing and Bucket(target).has_manifest(source.repo_id, source.commit):
            raise ConflictError(
                f"{short_ref(source.repo_id, source.commit)} is already in {target.name} "
                f"({storage_uri(target, source.repo_id, source.commit)})"
            )
        uri = storage_uri(target, source.repo_id, source.commit)
        size = source.size_bytes
        threshold = weights.settings.install_approval_threshold
        approval = (
            ApprovalPolicy.required(
                f"{format_size(size)} is above the {format_size(threshold)} approval threshold",
                role=Role.ADMIN,
            )
            if size > threshold
            else ApprovalPolicy.none(f"{format_size(size)} is below the approval threshold")
        )
        return Plan(
            target=f"weights:{target.name}/{source.repo_id}@{source.commit}",
            summary=(
                f"Publish {short_ref(source.repo_id, source.commit)} from {source.location} to "
                f"{target.name}, {format_size(size)}"
            ),
            params={
                "repo": source.repo_id,
                "revision": source.revision,
                "commit": source.commit,
                "from": source.location,
                "to": target.name,
                "source_id": source.id,
                "size": size,
                "files": source.file_count,
            },
            approval=approval,
            diff=(f"+ {uri} ({source.file_count} file(s), {format_size(size)})",),
            facts={"storage_uri": uri, "size": size, "files": source.file_count},
        )

    def start(self, session: Session, change: ChangeView, job: JobView) -> dict[str, Any]:
        p = change.params
        record = self.weights.open_record(
            session,
            {**p, "location": p["to"], "force": False},
            change.requested_by,
        )
        source = session.get(WeightRecord, int(p["source_id"]))
        if source is None:
            raise ConflictError("the verified install it copies from is gone")
        record.files = list(source.files or [])
        record.file_count = source.file_count
        record.size_bytes = source.size_bytes
        record.job_id = job.id
        return {"weight_id": record.id}

    def check(self, params: dict[str, Any]) -> None:
        try:
            source = self.weights.record(int(params["source_id"]))
        except ModelariumError:
            raise Failed("the verified install it copies from is gone") from None
        if source.status != "installed" or source.commit != params["commit"]:
            raise Failed(f"the install in {params['from']} is {source.status} now")

    def _files(self, params: dict[str, Any]) -> list[FileToCopy]:
        source = self.weights.record(int(params["source_id"]))
        loc = self.weights.location(params["from"])
        layout = RepoLayout(loc.root, source.repo_id)
        unique = {f.path: f for f in record_files(source)}
        return [
            FileToCopy(
                f.path,
                layout.blob(f.etag),
                f.size,
                f.sha256,
                None if f.sha256 else f.blob_id,
            )
            for f in sorted(unique.values(), key=lambda f: f.path)
        ]

    def _copy(self, params: dict[str, Any]) -> BucketCopy:
        settings = self.weights.settings
        return BucketCopy(
            self.weights.location(params["to"]),
            params["repo"],
            params["commit"],
            part_size=settings.s3_part_size,
            concurrency=settings.s3_concurrency,
            backoff=settings.s3_retry_backoff,
        )

    def run_stage(self, ctx: ChangeContext, stage: str) -> None:
        p = ctx.params
        try:
            if stage == "check":
                bucket = Bucket(self.weights.location(p["to"]))
                try:
                    bucket.check()
                except BucketUnreachable as exc:
                    raise Retryable(str(exc)) from None
                except BucketError as exc:
                    raise Failed(str(exc)) from None
            elif stage == "copy":
                self._copy(p).run(ctx, self._files(p))
            elif stage == "activate":
                self._activate(ctx)
        except Failed as exc:
            self.weights.update(
                int(p["weight_id"]), status="failed", error=str(exc), reserved_bytes=0
            )
            raise

    def _activate(self, ctx: ChangeContext) -> None:
        p = ctx.params
        files = self._files(p)
        copy = self._copy(p)
        done = dict(ctx.state.get("done") or {})
        copy.check_complete(files, done)
        target = self.weights.location(p["to"])
        now = self.weights._clock.now()
        try:
            copy.bucket.write_manifest(
                p["repo"],
                p["commit"],
                {
                    "model_id": p["repo"],
                    "version": p["commit"],
                    "repo": p["repo"],
                    "commit": p["commit"],
                    "revision": p.get("revision"),
                    "source": f"publish from {p['from']}",
                    "created_by": p["_requested_by"],
                    "created_at": now.isoformat(),
                    "files": [
                        {"path": f.path, "size": f.size, "sha256": done[f.path]["sha256"]}
                        for f in files
                    ],
                },
            )
        except BucketUnreachable as exc:
            raise Retryable(str(exc)) from None
        except BucketError as exc:
            raise Failed(str(exc)) from None
        self.weights.update(
            int(p["weight_id"]),
            status="installed",
            installed_at=now,
            last_access_at=now,
            verified_at=now,
            reserved_bytes=0,
            reinstall=False,
            error=None,
        )
        uri = storage_uri(target, p["repo"], p["commit"])
        self.weights._core.audit.record(
            p["_requested_by"],
            "weights.published",
            target=f"{p['repo']}@{p['commit']}",
            params={"from": p["from"], "to": p["to"], "storage_uri": uri, "size": p["size"]},
        )
        catalog: list[str] = list(ctx.state.get("catalog") or [])
        if self.catalog is not None and "catalog" not in ctx.state:  # once, even if resumed
            try:
                catalog = self.catalog(p["repo"], p["commit"], uri, p["_requested_by"], None)
            except ModelariumError as exc:  # the weights are published either way
                catalog = [f"catalog storage_uri not proposed: {exc}"]
            ctx.checkpoint(catalog=catalog)
        ctx.record(
            f"✅ Published {short_ref(p['repo'], p['commit'])} to `{p['to']}`: `{uri}`",
            *(f"• {line}" for line in catalog),
            storage_uri=uri,
            manifest=manifest_key(target, p["repo"], p["commit"]),
            catalog=catalog,
        )

    def on_cancel(self, ctx: ChangeContext) -> None:
        """Abort the unfinished multipart uploads and remove what was copied (never activated)."""
        p = ctx.params
        if "weight_id" not in p:
            return
        copy = self._copy(p)
        copy.abort_unfinished(ctx.state)
        if not copy.bucket.has_manifest(p["repo"], p["commit"]):
            copy.bucket.remove(p["repo"], p["commit"])
            self.weights.discard(int(p["weight_id"]))

    def revert(self, change: ChangeView) -> Inverse:
        p = change.params
        return Inverse(PURGE_JOB, {"location": p["to"], "select": [f"{p['repo']}@{p['commit']}"]})


# -- verify a bucket's copy -------------------------------------------------------------------


def describe_bucket_verify(params: dict[str, Any]) -> str:
    return f"Verify {params['repo']}@{str(params.get('commit') or '')[:7]} in {params['location']}"


class BucketVerify:
    """Reads every object of a bucket folder back and checks its SHA-256 against the record."""

    def __init__(self, weights: WeightsService) -> None:
        self.weights = weights

    def run(self, ctx: JobContext, stage: str) -> None:
        weights = self.weights
        record = weights.record(int(ctx.params["weight_id"]))
        loc = weights.location(record.location)
        client = s3_client(loc)
        bucket = Bucket(loc, client)
        manifest = bucket.read_manifest(record.repo_id, record.commit)
        if manifest is None:
            raise JobFailed(
                f"{short_ref(record.repo_id, record.commit)} has no manifest in {loc.name}: "
                "it is not installed there",
                retry=False,
            )
        expected = {f["path"]: f for f in manifest.get("files") or []}
        prefix = model_prefix(loc, record.repo_id, record.commit)
        total = sum(int(f["size"]) for f in expected.values())
        seen = 0
        for index, (path, entry) in enumerate(sorted(expected.items())):
            ctx.check_cancelled()
            digest = hashlib.sha256()
            size = 0
            try:
                body = client.get_object(Bucket=loc.bucket, Key=f"{prefix}{path}")["Body"]
                for block in body.iter_chunks(4 * 1024 * 1024):
                    digest.update(block)
                    size += len(block)
                    seen += len(block)
                    ctx.progress(
                        seen, total, unit="bytes", message=f"{index}/{len(expected)} files"
                    )
            except Exception as exc:  # a missing object or a dropped read: one line
                message = f"verify failed: {path} cannot be read from {loc.name} ({exc})"
                weights.update(record.id, status="failed", error=message[:500])
                raise JobFailed(message.splitlines()[0], retry=False) from None
            if size != int(entry["size"]) or digest.hexdigest() != entry["sha256"]:
                message = (
                    f"verify failed: {path} in {loc.name} does not match its sha256 "
                    f"({digest.hexdigest()[:12]}…, expected {str(entry['sha256'])[:12]}…)"
                )
                weights.update(record.id, status="failed", error=message)
                raise JobFailed(message, retry=False)
        weights.update(record.id, verified_at=weights._clock.now(), error=None)
        ctx.record(
            f"✅ All {len(expected)} file(s) of {short_ref(record.repo_id, record.commit)} in "
            f"`{loc.name}` match their sha256 ({format_size(total)})"
        )
