"""Self-tests for FakeHub: the REAL huggingface_hub client and raw httpx must accept it as the Hub.

huggingface_hub reads HF_* variables once, at import: they are set below before the import (for
a run where this module imports it first), and every call passes ``endpoint=``, ``token=`` and
``cache_dir=`` explicitly so nothing depends on that order or on a developer's own cache/token.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import threading
import time
import tracemalloc
from pathlib import Path

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_DISABLE_XET", "1")

import httpx
import pytest
from huggingface_hub import (
    HfApi,
    hf_hub_download,
    scan_cache_dir,
    snapshot_download,
)
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from tests.fakes.hf_hub import (
    DEFAULT_TOKEN,
    FakeHub,
    GeneratedContent,
    fake_hub,
    random_content,
    safetensors_content,
)

__all__ = ["fake_hub"]  # the fixture is imported for pytest, not unused

CONFIG = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64}


def tiny(hub: FakeHub, repo_id: str = "org/tiny", **meta: object) -> None:
    """A small repo: a real safetensors file (LFS), a JSON config, a file in a sub-folder."""
    weights = safetensors_content({"embed": ("BF16", [32, 16]), "head": ("F32", [16])}, seed=1)
    files = {"model.safetensors": weights, "tokenizer.json": '{"v": 1}', "sub/notes.txt": "hi\n"}
    hub.add_model(repo_id, files, config=CONFIG, **meta)  # type: ignore[arg-type]


def api(hub: FakeHub, token: str | bool = False) -> HfApi:
    return HfApi(endpoint=hub.url, token=token)


def real(hub: FakeHub) -> list:
    """The log without the client's optional telemetry probe."""
    return [r for r in hub.log if r.path != "/api/agent-harnesses"]


def sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# -- content generation ----------------------------------------------------------------------
def test_generated_content_is_deterministic_and_random_access() -> None:
    size = 3 * (1 << 20) + 12345
    content = random_content(size, seed="abc", prefix=b"HEADER")
    whole = content.read()
    assert len(whole) == size and whole.startswith(b"HEADER")
    assert random_content(size, seed="abc", prefix=b"HEADER").read() == whole
    assert random_content(size, seed="abd", prefix=b"HEADER").read() != whole
    rng = random.Random(7)
    for _ in range(50):
        a = rng.randrange(size)
        b = rng.randrange(a, size + 1)
        assert content.read(a, b) == whole[a:b]
    starts = range(6, size - 4096, 1 << 20)
    assert len({whole[i : i + 4096] for i in starts}) == len(starts)  # no block repeats


def test_safetensors_content_has_a_real_header() -> None:
    content = safetensors_content({"a": ("BF16", [4, 8]), "b": ("F32", [3])}, seed=0)
    n = int.from_bytes(content.read(0, 8), "little")
    header = json.loads(content.read(8, 8 + n))
    assert header["a"] == {"dtype": "BF16", "shape": [4, 8], "data_offsets": [0, 64]}
    assert header["b"]["data_offsets"] == [64, 76]
    assert content.size == 8 + n + 76 and n % 8 == 0


def test_hashes_are_real_git_objects(fake_hub: FakeHub, tmp_path: Path) -> None:
    """Blob, LFS-pointer, tree and directory ids match what git itself computes."""
    tiny(fake_hub)
    repo = fake_hub.repo("org/tiny")
    commit = repo.head
    work = tmp_path / "git"
    work.mkdir()
    for path, blob in commit.files.items():
        target = work / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if blob.lfs:
            pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{blob.sha256}\n"
            target.write_text(pointer + f"size {blob.size}\n")
            assert blob.sha256 == hashlib.sha256(blob.content.read()).hexdigest()
        else:
            target.write_bytes(blob.content.read())
    env = {**os.environ, "GIT_DIR": str(tmp_path / "dotgit"), "GIT_WORK_TREE": str(work)}
    subprocess.run(["git", "init", "-q"], env=env, check=True)
    subprocess.run(["git", "add", "-A"], env=env, check=True, cwd=work)
    tree = subprocess.run(["git", "write-tree"], env=env, check=True, capture_output=True)
    assert tree.stdout.decode().strip() == commit.trees[""]
    for path, blob in commit.files.items():
        out = subprocess.run(
            ["git", "hash-object", str(work / path)], env=env, check=True, capture_output=True
        )
        assert out.stdout.decode().strip() == blob.git_oid, path
    sub = subprocess.run(
        ["git", "rev-parse", f"{commit.trees['']}:sub"], env=env, check=True, capture_output=True
    )
    assert sub.stdout.decode().strip() == commit.trees["sub"]
    assert len(commit.sha) == 40 and int(commit.sha, 16) >= 0


# -- listing -----------------------------------------------------------------------------------
def test_list_models_filters_sort_and_pagination(fake_hub: FakeHub) -> None:
    fake_hub.page_size = 2
    tiny(fake_hub, "org/tiny", tags=["chat"], library_name="transformers", downloads=50, likes=1)
    fake_hub.add_model("org/big", {"a.txt": "a"}, downloads=900, likes=3, pipeline_tag="fill-mask")
    fake_hub.add_model("meta/llama", {"a.txt": "b"}, tags=["chat"], downloads=10, likes=99)
    fake_hub.add_model("meta/gated", {"a.txt": "c"}, gated="manual", downloads=5)
    fake_hub.add_model("someone/old", {"a.txt": "d"}, last_modified="2020-01-01T00:00:00Z")
    hf = api(fake_hub)

    ids = [m.id for m in hf.list_models(sort="downloads")]
    assert ids == ["org/big", "org/tiny", "meta/llama", "meta/gated", "someone/old"]
    pages = [r for r in real(fake_hub) if r.path == "/api/models"]
    assert len(pages) == 3  # 2 + 2 + 1, following absolute Link URLs
    assert all(p.query.get("sort") == ["downloads"] for p in pages)

    fake_hub.clear_log()
    assert [m.id for m in hf.list_models(sort="likes", limit=3)] == [
        "meta/llama",
        "org/big",
        "org/tiny",
    ]
    assert len(real(fake_hub)) == 2  # limit=3 with pages of 2
    assert [m.id for m in hf.list_models(author="meta")] == ["meta/llama", "meta/gated"]
    assert {m.id for m in hf.list_models(filter="chat")} == {"org/tiny", "meta/llama"}
    assert [m.id for m in hf.list_models(filter=["chat", "transformers"])] == ["org/tiny"]
    assert [m.id for m in hf.list_models(search="LLA")] == ["meta/llama"]
    assert [m.id for m in hf.list_models(pipeline_tag="fill-mask")] == ["org/big"]
    assert [m.id for m in hf.list_models(gated=True)] == ["meta/gated"]
    assert [m.id for m in hf.list_models(sort="last_modified")][-1] == "someone/old"
    assert [m.id for m in hf.list_models(num_parameters="min:100,max:1K")] == ["org/tiny"]

    first = next(iter(hf.list_models(search="tiny")))
    assert first.downloads == 50 and first.sha is None and first.siblings is None
    assert first.tags == ["chat", "transformers"] and first.library_name == "transformers"
    full = next(iter(hf.list_models(search="tiny", full=True, cardData=True, fetch_config=True)))
    assert full.sha == fake_hub.repo("org/tiny").head.sha and full.author == "org"
    assert full.config == CONFIG and full.siblings is not None
    assert sorted(s.rfilename for s in full.siblings) == [
        "config.json",
        "model.safetensors",
        "sub/notes.txt",
        "tokenizer.json",
    ]
    expanded = next(iter(hf.list_models(search="tiny", expand=["likes", "safetensors"])))
    assert expanded.likes == 1 and expanded.safetensors is not None
    assert expanded.downloads is None  # only what was asked for


# -- model info --------------------------------------------------------------------------------
def test_model_info_with_files_metadata_and_safetensors(fake_hub: FakeHub) -> None:
    tiny(fake_hub, license="apache-2.0", card_data={"language": ["en"]}, likes=7)
    info = api(fake_hub).model_info("org/tiny", files_metadata=True)
    repo = fake_hub.repo("org/tiny")
    assert info.sha == repo.head.sha and info.likes == 7 and info.gated is False
    assert info.safetensors is not None
    assert info.safetensors.parameters == {"BF16": 512, "F32": 16}
    assert info.safetensors.total == 528
    assert info.card_data is not None and info.card_data.license == "apache-2.0"
    assert info.config == CONFIG
    assert "license:apache-2.0" in (info.tags or [])
    assert info.last_modified is not None and info.created_at is not None
    by_name = {s.rfilename: s for s in info.siblings or []}
    weights = by_name["model.safetensors"]
    blob = fake_hub.blob("org/tiny", "model.safetensors")
    assert weights.lfs is not None and weights.lfs.sha256 == blob.sha256
    assert weights.lfs.pointer_size == blob.pointer_size and weights.size == blob.size
    assert weights.blob_id == blob.git_oid
    assert by_name["tokenizer.json"].lfs is None and by_name["tokenizer.json"].size == 8
    assert real(fake_hub)[-1].query == {"blobs": ["true"]}


def test_model_info_explicit_safetensors_and_revisions(fake_hub: FakeHub) -> None:
    fake_hub.add_model(
        "org/m",
        {"README.md": "v0"},
        safetensors={"BF16": 8_030_261_248},
        branches={"dev": {"README.md": "dev"}},
    )
    first = fake_hub.repo("org/m").head.sha
    fake_hub.create_tag("org/m", "v1.0/x")
    second = fake_hub.commit("org/m", {"README.md": "v1"}, message="Bump")
    hf = api(fake_hub)
    info = hf.model_info("org/m")
    assert info.sha == second and info.safetensors is not None
    assert info.safetensors.total == 8_030_261_248
    assert hf.model_info("org/m", revision="v1.0/x").sha == first
    assert real(fake_hub)[-1].path == "/api/models/org/m/revision/v1.0%2Fx"
    assert hf.model_info("org/m", revision=first).sha == first
    assert hf.model_info("org/m", revision="dev").sha == fake_hub.repo("org/m").branches["dev"]
    refs = hf.list_repo_refs("org/m")
    assert {b.name for b in refs.branches} == {"main", "dev"}
    assert [(t.name, t.target_commit) for t in refs.tags] == [("v1.0/x", first)]
    commits = hf.list_repo_commits("org/m")
    assert [c.commit_id for c in commits] == [second, first]
    assert commits[0].title == "Bump"
    expanded = hf.model_info("org/m", expand=["downloads", "sha"])
    assert expanded.sha == second and expanded.likes is None


def test_list_repo_tree_recursive_paginated(fake_hub: FakeHub) -> None:
    fake_hub.tree_page_size = 3
    files = {f"d{i}/f{j}.txt": f"{i}{j}" for i in range(3) for j in range(2)}
    fake_hub.add_model("org/tree", {**files, "top.bin": b"\0" * 10})
    hf = api(fake_hub)
    entries = list(hf.list_repo_tree("org/tree", recursive=True))
    paths = [e.path for e in entries]
    assert sorted(paths) == sorted([*files, "top.bin", "d0", "d1", "d2"])
    assert len([r for r in real(fake_hub) if "/tree/" in r.path]) == 4  # 10 entries by 3
    top = next(e for e in entries if e.path == "top.bin")
    assert top.lfs is not None and top.lfs.sha256 == fake_hub.blob("org/tree", "top.bin").sha256
    shallow = {e.path for e in hf.list_repo_tree("org/tree")}
    assert shallow == {"d0", "d1", "d2", "top.bin"}
    assert {e.path for e in hf.list_repo_tree("org/tree", path_in_repo="d1")} == {
        "d1/f0.txt",
        "d1/f1.txt",
    }
    with_commits = list(hf.list_repo_tree("org/tree", path_in_repo="d1", expand=True))
    assert all(e.last_commit is not None for e in with_commits)
    info = hf.get_paths_info("org/tree", ["top.bin", "d2", "missing"])
    assert sorted(i.path for i in info) == ["d2", "top.bin"]
    with pytest.raises(RemoteEntryNotFoundError):
        list(hf.list_repo_tree("org/tree", path_in_repo="nope"))


# -- downloads ---------------------------------------------------------------------------------
def test_hf_hub_download_regular_and_lfs_via_cdn(fake_hub: FakeHub, tmp_path: Path) -> None:
    tiny(fake_hub, gated="auto")
    cache = tmp_path / "cache"
    kwargs = {"endpoint": fake_hub.url, "cache_dir": cache, "token": DEFAULT_TOKEN}
    path = hf_hub_download("org/tiny", "model.safetensors", **kwargs)  # type: ignore[arg-type]
    blob = fake_hub.blob("org/tiny", "model.safetensors")
    commit = fake_hub.repo("org/tiny").head.sha
    assert sha256(path) == blob.sha256
    assert Path(path) == cache / "models--org--tiny" / "snapshots" / commit / "model.safetensors"
    assert Path(path).resolve() == cache / "models--org--tiny" / "blobs" / blob.sha256
    assert (cache / "models--org--tiny" / "refs" / "main").read_text() == commit
    weights = ("org/tiny", "model.safetensors")
    head, get = [r for r in real(fake_hub) if r.path.endswith(weights[1]) or r.file == weights]
    assert (head.server, head.method, head.status) == ("hub", "HEAD", 302)
    assert (get.server, get.method, get.status) == ("cdn", "GET", 200)
    assert head.headers["authorization"] == f"Bearer {DEFAULT_TOKEN}"
    assert "authorization" not in get.headers  # dropped on the cross-origin CDN request
    assert fake_hub.settle()
    assert fake_hub.bytes_served("org/tiny", "model.safetensors") == blob.size

    txt = hf_hub_download("org/tiny", "sub/notes.txt", **kwargs)  # type: ignore[arg-type]
    assert Path(txt).read_text() == "hi\n"
    assert Path(txt).resolve().name == fake_hub.blob("org/tiny", "sub/notes.txt").git_oid


def test_lfs_served_directly(tmp_path: Path) -> None:
    with FakeHub(lfs_mode="direct") as hub:
        tiny(hub)
        path = hf_hub_download(
            "org/tiny", "model.safetensors", endpoint=hub.url, cache_dir=tmp_path, token=False
        )
        assert sha256(path) == hub.blob("org/tiny", "model.safetensors").sha256
        assert {r.server for r in hub.log} == {"hub"}
        head = httpx.head(f"{hub.url}/org/tiny/resolve/main/model.safetensors")
        assert head.status_code == 200
        assert head.headers["etag"] == f'"{hub.blob("org/tiny", "model.safetensors").sha256}"'
        assert not [h for h in head.headers if h.lower().startswith("x-xet")]


def test_snapshot_download_then_scan_cache_dir(fake_hub: FakeHub, tmp_path: Path) -> None:
    tiny(fake_hub)
    cache = tmp_path / "cache"
    folder = snapshot_download("org/tiny", endpoint=fake_hub.url, cache_dir=cache, token=False)
    commit = fake_hub.repo("org/tiny").head.sha
    assert Path(folder).name == commit
    assert json.loads((Path(folder) / "config.json").read_text()) == CONFIG
    assert (cache / "models--org--tiny" / "trees" / f"{commit}.json").exists()
    scanned = scan_cache_dir(cache)
    (repo,) = scanned.repos
    assert repo.repo_id == "org/tiny" and repo.nb_files == 4
    (revision,) = repo.revisions
    assert revision.commit_hash == commit and revision.refs == frozenset({"main"})

    fake_hub.clear_log()
    again = snapshot_download(
        "org/tiny", endpoint=fake_hub.url, cache_dir=cache, token=False, revision=commit
    )
    assert again == folder
    assert real(fake_hub) == []  # complete snapshot of a pinned commit: no request at all
    snapshot_download("org/tiny", endpoint=fake_hub.url, cache_dir=cache, token=False)
    assert [r.path for r in real(fake_hub)] == ["/api/models/org/tiny/revision/main"]
    only = snapshot_download(
        "org/tiny",
        endpoint=fake_hub.url,
        cache_dir=tmp_path / "c2",
        token=False,
        allow_patterns=["*.json"],
    )
    assert sorted(p.name for p in Path(only).iterdir()) == ["config.json", "tokenizer.json"]


def test_generated_sharded_model_end_to_end(fake_hub: FakeHub, tmp_path: Path) -> None:
    repo = fake_hub.add_generated_model("gen/llm", total_bytes=24 << 20, shards=3, seed=5)
    folder = Path(
        snapshot_download("gen/llm", endpoint=fake_hub.url, cache_dir=tmp_path, token=False)
    )
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert shards == [f"model-0000{i}-of-00003.safetensors" for i in (1, 2, 3)]
    for name in shards:
        assert sha256(folder / name) == repo.head.files[name].sha256
    meta = api(fake_hub).get_safetensors_metadata("gen/llm")
    assert meta.sharded and meta.parameter_count == {"BF16": 3 * 4 * ((8 << 20) // 4 // 2)}
    info = api(fake_hub).model_info("gen/llm")
    assert info.safetensors is not None and info.safetensors.parameters == meta.parameter_count
    assert fake_hub.settle()
    assert fake_hub.bytes_served() >= 24 << 20


@pytest.mark.slow
def test_gigabyte_repo_costs_no_memory() -> None:
    tracemalloc.start()
    try:
        with FakeHub() as hub:
            repo = hub.add_generated_model("gen/big", total_bytes=1 << 30, shards=2, seed=9)
            blob = repo.head.files["model-00002-of-00002.safetensors"]
            assert isinstance(blob.content, GeneratedContent) and blob.size > 1 << 29
            url = f"{hub.url}/gen/big/resolve/main/model-00002-of-00002.safetensors"
            with httpx.Client(follow_redirects=True) as client:
                head = client.head(url, follow_redirects=False)
                assert head.headers["x-linked-size"] == str(blob.size)
                tail = client.get(url, headers={"Range": f"bytes={blob.size - 100}-"})
                assert tail.status_code == 206 and tail.content == blob.content.read(
                    blob.size - 100
                )
            assert tracemalloc.get_traced_memory()[1] < 64 << 20
    finally:
        tracemalloc.stop()


# -- errors ------------------------------------------------------------------------------------
def test_errors_map_to_huggingface_hub_exceptions(fake_hub: FakeHub, tmp_path: Path) -> None:
    tiny(fake_hub)
    fake_hub.add_model("org/gated", {"w.bin": b"x" * 10}, gated="manual")
    fake_hub.add_model("org/private", {"a.txt": "p"}, private=True)
    hf = api(fake_hub)
    kwargs = {"endpoint": fake_hub.url, "cache_dir": tmp_path, "token": False}
    with pytest.raises(RepositoryNotFoundError):
        hf.model_info("org/nope")
    with pytest.raises(RepositoryNotFoundError):
        hf.model_info("org/private")
    assert api(fake_hub, DEFAULT_TOKEN).model_info("org/private").private is True
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("org/nope", "a.txt", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(RevisionNotFoundError):
        hf.model_info("org/tiny", revision="nope")
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download("org/tiny", "config.json", revision="nope", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(RemoteEntryNotFoundError):
        hf_hub_download("org/tiny", "missing.txt", **kwargs)  # type: ignore[arg-type]
    commit = fake_hub.repo("org/tiny").head.sha
    assert (tmp_path / "models--org--tiny" / ".no_exist" / commit / "missing.txt").exists()

    assert hf.model_info("org/gated").gated == "manual"  # metadata stays public
    with pytest.raises(GatedRepoError):
        hf_hub_download("org/gated", "w.bin", **kwargs)  # type: ignore[arg-type]
    with_token = {**kwargs, "token": DEFAULT_TOKEN}
    assert Path(hf_hub_download("org/gated", "w.bin", **with_token)).read_bytes() == b"x" * 10  # type: ignore[arg-type]
    fake_hub.deny_access("org/gated")
    with pytest.raises(GatedRepoError) as denied:
        hf_hub_download("org/gated", "w.bin", **{**with_token, "cache_dir": tmp_path / "other"})  # type: ignore[arg-type]
    assert denied.value.response is not None and denied.value.response.status_code == 403
    with pytest.raises(HfHubHTTPError):
        api(fake_hub, "hf_wrong").model_info("org/tiny")
    assert api(fake_hub, DEFAULT_TOKEN).whoami()["name"] == "fake-user"
    response = httpx.get(f"{fake_hub.url}/api/models/org/nope")
    assert response.status_code == 401 and response.headers["x-error-code"] == "RepoNotFound"


# -- faults ------------------------------------------------------------------------------------
def test_range_requests(fake_hub: FakeHub) -> None:
    data = bytes(range(256)) * 40
    fake_hub.add_model("org/r", {"data.bin": data})
    url = f"{fake_hub.url}/org/r/resolve/main/data.bin"
    with httpx.Client(follow_redirects=True) as client:
        part = client.get(url, headers={"Range": "bytes=100-199"})
        assert part.status_code == 206 and part.content == data[100:200]
        assert part.headers["content-range"] == f"bytes 100-199/{len(data)}"
        rest = client.get(url, headers={"Range": "bytes=10000-"})
        assert rest.status_code == 206 and rest.content == data[10000:]
        suffix = client.get(url, headers={"Range": "bytes=-5"})
        assert suffix.content == data[-5:]
        bad = client.get(url, headers={"Range": f"bytes={len(data)}-"})
        assert bad.status_code == 416 and bad.headers["content-range"] == f"bytes */{len(data)}"
    assert [r.range for r in fake_hub.log if r.server == "cdn"][:2] == [
        "bytes=100-199",
        "bytes=10000-",
    ]


def test_httpx_resumes_with_range_after_a_dropped_connection(fake_hub: FakeHub) -> None:
    content = random_content(300_000, seed=3)
    fake_hub.add_model("org/drop", {"w.bin": content})
    fake_hub.drop_after("org/drop", "w.bin", 120_000)
    url = f"{fake_hub.url}/org/drop/resolve/main/w.bin"
    received = bytearray()
    with httpx.Client(follow_redirects=True) as client:

        def read_all() -> None:
            with client.stream("GET", url) as response:
                for chunk in response.iter_raw():
                    received.extend(chunk)

        with pytest.raises(httpx.RemoteProtocolError):
            read_all()
        assert len(received) == 120_000
        resumed = client.get(url, headers={"Range": f"bytes={len(received)}-"})
        assert resumed.status_code == 206
        received += resumed.content
    assert hashlib.sha256(received).hexdigest() == fake_hub.blob("org/drop", "w.bin").sha256
    assert fake_hub.settle()
    cdn = [r for r in fake_hub.log if r.server == "cdn"]
    assert [(r.bytes_sent, r.complete) for r in cdn] == [(120_000, False), (180_000, True)]
    assert fake_hub.bytes_served("org/drop", "w.bin") == 300_000


def test_hf_hub_download_resumes_a_cut_transfer(fake_hub: FakeHub, tmp_path: Path) -> None:
    """The client resumes at 10 MiB granularity: a cut at 11 MiB resumes with Range 10 MiB."""
    fake_hub.add_model("org/big", {"w.bin": random_content(12 << 20, seed=4)})
    fake_hub.drop_after("org/big", "w.bin", 11 << 20)
    path = hf_hub_download(
        "org/big", "w.bin", endpoint=fake_hub.url, cache_dir=tmp_path, token=False
    )
    assert sha256(path) == fake_hub.blob("org/big", "w.bin").sha256
    gets = [r for r in fake_hub.log if r.server == "cdn"]
    assert [r.range for r in gets] == [None, "bytes=10485760-"]


def test_corrupted_file_keeps_size_and_changes_bytes(fake_hub: FakeHub, tmp_path: Path) -> None:
    fake_hub.add_model("org/c", {"w.bin": random_content(50_000, seed=8)})
    fake_hub.corrupt("org/c", "w.bin")
    path = hf_hub_download("org/c", "w.bin", endpoint=fake_hub.url, cache_dir=tmp_path, token=False)
    blob = fake_hub.blob("org/c", "w.bin")
    got = Path(path).read_bytes()
    assert len(got) == blob.size and hashlib.sha256(got).hexdigest() != blob.sha256
    assert Path(path).resolve().name == blob.sha256  # stored under the advertised name anyway
    fake_hub.corrupt("org/c", "w.bin", enabled=False)
    fresh = httpx.get(f"{fake_hub.url}/org/c/resolve/main/w.bin", follow_redirects=True)
    assert hashlib.sha256(fresh.content).hexdigest() == blob.sha256


def test_status_faults_and_retries(fake_hub: FakeHub, tmp_path: Path) -> None:
    tiny(fake_hub)
    fake_hub.fail_next(429, path="/api/models/org/tiny", retry_after=7)
    with pytest.raises(HfHubHTTPError) as limited:
        api(fake_hub).model_info("org/tiny")  # model_info does not retry
    assert limited.value.response.status_code == 429
    assert limited.value.response.headers["retry-after"] == "7"
    assert api(fake_hub).model_info("org/tiny").id == "org/tiny"

    fake_hub.clear_log()
    fake_hub.fail_next(503, path="*/resolve/*", method="HEAD")
    path = hf_hub_download(
        "org/tiny", "tokenizer.json", endpoint=fake_hub.url, cache_dir=tmp_path, token=False
    )
    assert Path(path).read_text() == '{"v": 1}'
    heads = [r.status for r in real(fake_hub) if r.method == "HEAD"]
    assert heads == [503, 200]

    fake_hub.fail_next(503, times=2, server="cdn")
    with httpx.Client(follow_redirects=True) as client:
        url = f"{fake_hub.url}/org/tiny/resolve/main/model.safetensors"
        assert [client.get(url).status_code for _ in range(3)] == [503, 503, 200]


def test_throttle_and_delay(fake_hub: FakeHub) -> None:
    fake_hub.add_model("org/slow", {"w.bin": random_content(60_000, seed=1), "a.txt": "a"})
    fake_hub.throttle(200_000, repo_id="org/slow", filename="w.bin")
    with httpx.Client(follow_redirects=True) as client:
        start = time.monotonic()
        body = client.get(f"{fake_hub.url}/org/slow/resolve/main/w.bin").content
        assert len(body) == 60_000 and time.monotonic() - start >= 0.25
        fake_hub.throttle(None, repo_id="org/slow", filename="w.bin")
        fake_hub.delay(0.3, path="/api/models")
        start = time.monotonic()
        assert client.get(f"{fake_hub.url}/api/models/org/slow").status_code == 200
        assert time.monotonic() - start >= 0.3
        start = time.monotonic()
        assert client.get(f"{fake_hub.url}/org/slow/resolve/main/a.txt").status_code == 200
        assert time.monotonic() - start < 0.3


def test_down_refuse_reset_hang_and_back_up(fake_hub: FakeHub) -> None:
    tiny(fake_hub)
    url = f"{fake_hub.url}/api/models/org/tiny"
    with httpx.Client() as client:
        assert client.get(url).status_code == 200  # a pooled keep-alive connection
        fake_hub.go_down("refuse")
        with pytest.raises(httpx.ConnectError):
            client.get(url)
        fake_hub.come_up()
        assert client.get(url).status_code == 200  # same URL again
        fake_hub.go_down("reset")
        with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
            client.get(url)
        fake_hub.go_down("hang")
        with pytest.raises(httpx.ReadTimeout):
            client.get(url, timeout=0.3)
        fake_hub.come_up()
        assert client.get(url).status_code == 200


def test_stop_does_not_wait_for_a_hung_request() -> None:
    hub = FakeHub().start()
    hub.go_down("hang")
    errors: list[BaseException] = []

    def call() -> None:
        try:
            httpx.get(f"{hub.url}/api/models", timeout=10)
        except httpx.HTTPError as exc:
            errors.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    time.sleep(0.2)
    start = time.monotonic()
    hub.stop()
    thread.join(5)
    assert time.monotonic() - start < 2 and len(errors) == 1
