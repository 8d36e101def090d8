"""`GET /api/v1/catalog`: what `/model catalog list` lists, for scripts; catalog changes through
the API need the catalog scope."""

from __future__ import annotations

from modelarium.bot.api.schemas import Catalog
from modelarium.core.app import Core
from tests.fakes.hf_hub import FakeHub
from tests.integration.api.helpers import api_client
from tests.unit.discovery.hubdata import QWEN_7B

ID = "qwen2.5-7b-instruct"


def test_catalog_route_lists_entries_and_drafts(core: Core, hub: FakeHub) -> None:
    with api_client(core, "U_ADMIN", "read,deploy") as client:
        refused = client.post("/commands", json={"text": f"catalog add {QWEN_7B}"})
        assert refused.status_code == 403 and "catalog scope" in refused.json()["data"]["error"]
        assert client.get("/catalog").json()["entries"] == []

    with api_client(core, "U_ADMIN", "catalog,read") as client:
        added = client.post("/commands", json={"text": f"catalog add {QWEN_7B} --tag chat"})
        assert added.status_code == 200, added.text
        listed = client.get("/catalog")
        assert listed.status_code == 200, listed.text
        body = Catalog.model_validate(listed.json())
        assert [(e.id, e.status) for e in body.entries] == [(ID, "draft")]
        assert (
            body.entries[0].draft is not None
            and body.entries[0].draft["huggingface"]["repo"] == QWEN_7B
        )
        assert client.get("/catalog", params={"status": "approved"}).json()["entries"] == []
        assert client.get("/catalog", params={"status": "bogus"}).status_code == 422
