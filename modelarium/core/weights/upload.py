"""``/model upload``: a user's file (weights, a config, a tokenizer) into a bucket folder
``models/<model-id>/<version>/``, validated by content, resumable, as a change with one living
message.

The plan binds the file's path, size and modification time (so the worker refuses a file that
changed after it was approved) and checks its content; the worker checks it again, uploads it
(a SHA-256 per part; the whole file's SHA-256 is what the manifest records), then rewrites the
folder's manifest with the file in it: the upload is live only once that manifest is written.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from modelarium.config.units import format_size
from modelarium.core.changes import (
    ApprovalPolicy,
    ChangeContext,
    ChangeKind,
    ChangeView,
    Failed,
    Inverse,
    NotRevertible,
    Plan,
    Retryable,
)
from modelarium.core.clients.s3 import BucketError, BucketUnreachable
from modelarium.core.db.models.weights import WeightRecord
from modelarium.core.errors import UsageError, ValidationError
from modelarium.core.rbac import Role
from modelarium.core.weights.buckets import Bucket, storage_uri
from modelarium.core.weights.filetypes import check_file
from modelarium.core.weights.objects import BucketCopy, FileToCopy

if TYPE_CHECKING:
    from modelarium.core.weights.service import WeightsService

UPLOAD = "weights.upload"
MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?$")
VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


class UploadChange(ChangeKind):
    name = UPLOAD
    stages = ("upload", "activate")
    role = Role.OPERATOR
    stage_labels = {"upload": "upload + checksum"}

    def __init__(self, weights: WeightsService) -> None:
        self.weights = weights

    def describe(self, params: dict[str, Any]) -> str:
        return f"Upload {params['name']} to {params['model_id']}/{params['version']}"

    def bucket_location(self, name: str | None) -> Any:
        weights = self.weights
        buckets = [loc for loc in weights.locations if loc.is_bucket]
        if name is None:
            if not buckets:
                raise UsageError(
                    "no bucket location is configured: add one with type s3 to "
                    "MODELARIUM_STORAGE_LOCATIONS"
                )
            return buckets[0]
        loc = weights.location(name)
        if not loc.is_bucket:
            raise UsageError(
                f"{loc.name} is not a bucket location; uploads go to one of: "
                + (", ".join(b.name for b in buckets) or "(none configured)")
            )
        return loc

    def plan(self, params: dict[str, Any], user: str) -> Plan:
        model_id, version = str(params["model_id"]), str(params.get("version") or "v1")
        if not MODEL_ID.match(model_id) or ".." in model_id:
            raise UsageError(f"not a model id: {model_id!r} (letters, digits, . _ -; org/name)")
        if not VERSION.match(version):
            raise UsageError(f"not a version: {version!r} (letters, digits, . _ -)")
        path = Path(str(params["file"])).expanduser().resolve()
        if not path.is_file():
            raise UsageError(f"no file at {path}")
        name = str(params.get("name") or path.name)
        if not NAME.match(name):
            raise UsageError(f"not a file name for the folder: {name!r}")
        settings = self.weights.settings
        kind = check_file(path, name, settings.upload_max_size, settings.upload_max_text_size)
        loc = self.bucket_location(params.get("to"))
        Bucket(loc).check()
        stat = path.stat()
        uri = storage_uri(loc, model_id, version)
        return Plan(
            target=f"upload:{loc.name}/{model_id}/{version}",
            summary=f"Upload {name} ({kind}, {format_size(stat.st_size)}) to {uri}",
            params={
                "model_id": model_id,
                "version": version,
                "to": loc.name,
                "file": str(path),
                "name": name,
                "kind": kind,
                "size": stat.st_size,
                "mtime_ns": stat.st_mtime_ns,
            },
            approval=ApprovalPolicy.none("uploads add files; they never replace a model's weights"),
            diff=(f"+ {uri}{name} ({format_size(stat.st_size)})",),
            facts={"storage_uri": uri, "size": stat.st_size, "kind": kind},
        )

    def check(self, params: dict[str, Any]) -> None:
        path = Path(params["file"])
        try:
            stat = path.stat()
        except OSError:
            raise Failed(f"{path} is gone (the worker must be able to read it)") from None
        if stat.st_size != params["size"] or stat.st_mtime_ns != params["mtime_ns"]:
            raise Failed(f"{path} changed since the upload was planned; upload it again")
        settings = self.weights.settings
        try:
            check_file(
                path, params["name"], settings.upload_max_size, settings.upload_max_text_size
            )
        except ValidationError as exc:
            raise Failed(str(exc)) from None

    def _copy(self, params: dict[str, Any]) -> BucketCopy:
        settings = self.weights.settings
        return BucketCopy(
            self.weights.location(params["to"]),
            params["model_id"],
            params["version"],
            part_size=settings.s3_part_size,
            concurrency=settings.s3_concurrency,
            backoff=settings.s3_retry_backoff,
        )

    def run_stage(self, ctx: ChangeContext, stage: str) -> None:
        p = ctx.params
        copy = self._copy(p)
        file = FileToCopy(p["name"], Path(p["file"]), int(p["size"]), None)
        if stage == "upload":
            copy.run(ctx, [file])
            return
        done = dict(ctx.state.get("done") or {})
        copy.check_complete([file], done)
        sha256 = done[p["name"]]["sha256"]
        now = self.weights._clock.now()
        try:
            manifest = copy.bucket.read_manifest(p["model_id"], p["version"]) or {
                "model_id": p["model_id"],
                "version": p["version"],
                "source": "upload",
                "created_by": p["_requested_by"],
                "created_at": now.isoformat(),
                "files": [],
            }
            files = [f for f in manifest.get("files") or [] if f.get("path") != p["name"]]
            files.append({"path": p["name"], "size": int(p["size"]), "sha256": sha256})
            manifest["files"] = sorted(files, key=lambda f: f["path"])
            manifest["updated_at"] = now.isoformat()
            copy.bucket.write_manifest(p["model_id"], p["version"], manifest)
        except BucketUnreachable as exc:
            raise Retryable(str(exc)) from None
        except BucketError as exc:
            raise Failed(str(exc)) from None
        self._record(p, manifest["files"], now)
        uri = storage_uri(copy.location, p["model_id"], p["version"])
        self.weights._core.audit.record(
            p["_requested_by"],
            "weights.uploaded",
            target=f"{uri}{p['name']}",
            params={"size": p["size"], "sha256": sha256, "kind": p["kind"]},
        )
        ctx.record(
            f"✅ Uploaded {p['name']} ({format_size(int(p['size']))}, sha256 {sha256[:12]}…) "
            f"to `{uri}`",
            storage_uri=uri,
            sha256=sha256,
        )

    def _record(self, p: dict[str, Any], files: list[dict[str, Any]], now: Any) -> None:
        """The folder's weights record (inventory, pins, verify, purge), created or updated."""
        entries = [
            {"path": f["path"], "size": f["size"], "blob_id": f["sha256"], "sha256": f["sha256"]}
            for f in files
        ]
        with self.weights._db.transaction() as session:
            record = session.scalar(
                sa.select(WeightRecord).where(
                    WeightRecord.repo_id == p["model_id"],
                    WeightRecord.commit == p["version"],
                    WeightRecord.location == p["to"],
                )
            )
            if record is None:
                record = WeightRecord(
                    repo_id=p["model_id"], revision=p["version"], commit=p["version"],
                    location=p["to"], created_by=p["_requested_by"], created_at=now,
                    reserved_bytes=0, reinstall=False, pinned=False,
                )  # fmt: skip
                session.add(record)
            record.status = "installed"
            record.files = entries
            record.file_count = len(entries)
            record.size_bytes = sum(int(f["size"]) for f in entries)
            record.installed_at = record.installed_at or now
            record.last_access_at = now
            record.verified_at = now
            record.error = None

    def on_cancel(self, ctx: ChangeContext) -> None:
        self._copy(ctx.params).abort_unfinished(ctx.state)

    def revert(self, change: ChangeView) -> Inverse:
        raise NotRevertible(
            "an upload adds a file to a folder; remove the whole folder with `purge` if needed"
        )


def check_bucket_reachable(weights: WeightsService, location: str) -> None:
    """For handlers: a missing bucket or refused credentials, said before proposing."""
    Bucket(weights.location(location)).check()
