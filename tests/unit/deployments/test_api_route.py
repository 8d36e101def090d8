"""`GET /api/v1/deployments`: what `/model deployments` lists, for scripts; deploying through the
API needs the deploy scope."""

from __future__ import annotations

import json

from modelarium.bot.api.schemas import Deployments
from modelarium.core.app import Core
from tests.fakes.kubernetes import FakeKubernetes
from tests.integration.api.helpers import api_client
from tests.unit.deployments.conftest import install, run_jobs
from tests.unit.discovery.hubdata import LLAMA_8B


def test_deployments_route_lists_what_the_command_lists(
    core: Core, runner, cluster: FakeKubernetes
) -> None:
    install(core, LLAMA_8B)
    with api_client(core, "U_ADMIN", "read") as reader:
        refused = reader.post("/commands", json={"text": f"deploy {LLAMA_8B} --name chat"})
        assert refused.status_code == 403 and "deploy scope" in refused.json()["data"]["error"]
        assert reader.get("/deployments").json()["deployments"] == []

    with api_client(core, "U_ADMIN", "deploy,read") as client:
        proposed = client.post(
            "/commands",
            json={"text": f"deploy {LLAMA_8B} --name chat --namespace dev --context 8k"},
        )
        assert proposed.status_code == 200, proposed.text
        assert proposed.json()["data"]["job"]  # dev needs no approval
        run_jobs(core)
        listed = client.get("/deployments", params={"namespace": "dev"})
        assert listed.status_code == 200, listed.text
        body = Deployments.model_validate(listed.json())
        assert [(d.key, d.model) for d in body.deployments] == [("dev/chat", LLAMA_8B)]
        listed_by_command = runner.execute("deployments --namespace dev", user="U_ADMIN").data
        assert listed.json() == json.loads(json.dumps(listed_by_command, default=str))
        assert client.get("/deployments", params={"page": 0}).status_code == 422
