"""Property-based tests generated from the API's own OpenAPI document (schemathesis).

For every operation, schemathesis generates requests from the document, valid ones and
invalid ones, and sends them to the running server with an admin token; every answer must not
be a 500 and must match what the document says (status code, headers, content type, schema),
invalid input must be refused, and a request without the token must get 401.

(Schemathesis' own pytest plugin does not run on pytest 9, so the strategies are driven with
Hypothesis directly.) The example count is kept small so `make test` stays fast.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.fakes.hf_hub import FakeHub
from tests.integration.api.conftest import ADMIN_A, Api
from tests.unit.weights.helpers import MiB, add_model, run_jobs

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    ignored_auth,
]
EXAMPLES = 10
"""Per operation and mode: 9 operations x 2 modes x 10 = 180 requests per database."""


def test_the_api_keeps_to_its_document(api: Api, fake_hub: FakeHub) -> None:
    # something to find: a finished install (job 1, change 1), one waiting for approval (1)
    add_model(fake_hub, "org/small", size=1 * MiB)
    add_model(fake_hub, "org/big", size=6 * MiB)
    token = api.token(ADMIN_A, "admin")
    assert api.command(token, "install org/small").json()["data"]["job"] == 1
    run_jobs(api.core)
    assert api.command(token, "install org/big").json()["data"]["approval"] == 1
    schema = schemathesis.openapi.from_url(api.url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 9
    tried: dict[str, int] = {}
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def check(case: schemathesis.Case) -> None:
                case.call_and_validate(base_url=api.url, headers=api.auth(token), checks=CHECKS)
                key = f"{case.operation.method.upper()} {case.operation.path}"
                tried[key] = tried.get(key, 0) + 1

            check()
    assert len(tried) == 9 and sum(tried.values()) >= 9 * EXAMPLES
