"""schemathesis against the projection API's own OpenAPI document, served by the running archiver with auth.

Every operation gets generated requests (valid ones, and ones that break the schema) with a tenant's token;
every response must be a non-5xx that matches the document (status code, content type, headers, body
schema). A few backups exist first, so reads also hit real rows. The number of cases is printed.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.security.conftest import Tenant, tokens_setting
from tests.support import System

pytestmark = [pytest.mark.e2e, pytest.mark.security]

EXAMPLES = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture
def system_extra_env(tenants: dict[str, Tenant]) -> dict[str, str]:
    return {"LC2_API__TOKENS": tokens_setting(tenants), "LC2_LOCAL__MODE": "instant"}


async def test_the_api_keeps_its_contract_under_generated_requests(
    system: System, tenants: dict[str, Tenant], buckets: tuple[str, str]
) -> None:
    source, destination = buckets
    async with system.client() as api:
        for project in ("retail", "bank"):
            resp = await api.post("/api/v1/backups", json=system.spec(source, destination, projectId=project))
            await system.wait_for(resp.json()["backupId"])

    with httpx.Client() as http:
        document = http.get(f"{system.api}/openapi.json").json()
    schema = schemathesis.openapi.from_dict(document)
    cases: dict[str, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]
        for tenant in (tenants["retail-team"], tenants["ops"]):
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                _fuzz(operation, mode, system.api, tenant, cases)
    total = sum(cases.values())
    print(f"schemathesis: {total} cases over {len(cases)} operation/mode pairs, no 5xx, every response conforms")
    assert total > 0


def _fuzz(operation: Any, mode: GenerationMode, base_url: str, tenant: Tenant, cases: dict[str, int]) -> None:
    label = f"{operation.label} {mode.value}"

    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def call(case: Any) -> None:
        case.call_and_validate(base_url=base_url, headers=tenant.headers, checks=CHECKS)
        cases[label] = cases.get(label, 0) + 1

    try:
        call()
    except Unsatisfiable:
        if mode is GenerationMode.POSITIVE:
            raise  # an operation without parameters has no invalid request to generate: nothing to break
