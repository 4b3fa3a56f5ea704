"""schemathesis against the projection API's own OpenAPI document, served by the running archiver with auth.

Every operation gets generated requests (valid ones, and ones that break the schema) with a tenant's token,
given to schemathesis as the document's bearer scheme so that it also sends requests without it or with a
forged one. Every check schemathesis has runs: no 5xx; status code, content type, headers and body as
documented; a request the schema allows is accepted (``positive_data_acceptance``), one it forbids is refused
(``negative_data_rejection``), and an operation that declares auth refuses a request without it or with an
invalid token (``ignored_auth``). A few backups exist first, so reads also hit real rows. The number of cases
is printed.

One rule cannot be stated in JSON Schema: a destination in the source's bucket must not overlap the source's
prefix (it compares two values). Valid-mode bodies that break it are not generated; test_fuzzing covers it.
"""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.config import SchemathesisConfig

from tests.security import rules
from tests.security.conftest import Tenant, tokens_setting
from tests.support import System

pytestmark = [pytest.mark.e2e, pytest.mark.security]

EXAMPLES = 20
load_all_checks()
ALL_CHECKS = CHECKS.get_all()


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
    names = {check.__name__ for check in ALL_CHECKS}
    assert {"negative_data_rejection", "positive_data_acceptance", "ignored_auth"} <= names, names
    _the_checks_can_fail(document, system.api, tenants["ops"])

    cases: Counter[str] = Counter()
    for tenant in (tenants["retail-team"], tenants["ops"]):
        schema = _schema(document, tenant)
        for result in schema.get_all_operations():
            operation = result.ok()  # type: ignore[union-attr]
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                _fuzz(operation, mode, system.api, cases)
    # The token reached the API: valid-mode requests to every protected operation were answered, not all 401.
    for label in ("GET /api/v1/backups", "POST /api/v1/backups", "GET /api/v1/backups/{backup_id}"):
        assert cases[f"{label} positive 2xx"] + cases[f"{label} positive 404"] > 0, (label, cases)
    pairs = {key: n for key, n in cases.items() if key.count(" ") == 2}
    total = sum(pairs.values())
    print(
        f"schemathesis: {total} cases over {len(pairs)} operation/mode pairs,"
        f" all {len(names)} checks ({', '.join(sorted(names))}) passed; answers {_statuses(cases)}"
    )
    assert total > 0


def _schema(document: dict[str, Any], tenant: Tenant) -> Any:
    """The document with the tenant's token as its bearer scheme's credentials."""
    bearer = {"auth": {"openapi": {"HTTPBearer": {"bearer": tenant.token}}}}
    return schemathesis.openapi.from_dict(document, config=SchemathesisConfig.from_dict(bearer))


def _statuses(cases: Counter[str]) -> dict[str, int]:
    out: Counter[str] = Counter()
    for key, n in cases.items():
        if key.count(" ") == 3:
            out[key.rsplit(" ", 1)[1]] += n
    return dict(out)


def _the_checks_can_fail(document: dict[str, Any], base_url: str, tenant: Tenant) -> None:
    """Positive controls: copies of the document that lie about /healthz, which enforces nothing, must fail
    the same checks with the same cases and token as the real run: one declares the bearer scheme
    (ignored_auth), the other a required query parameter (negative_data_rejection)."""
    needs_a_token = copy.deepcopy(document)
    needs_a_token["paths"]["/healthz"]["get"]["security"] = [{"HTTPBearer": []}]
    needs_a_parameter = copy.deepcopy(document)
    needs_a_parameter["paths"]["/healthz"]["get"]["parameters"] = [
        {"name": "verbose", "in": "query", "required": True, "schema": {"type": "boolean"}}
    ]
    for lying, mode, failure in (
        (needs_a_token, GenerationMode.POSITIVE, "IgnoredAuth"),
        (needs_a_parameter, GenerationMode.NEGATIVE, "AcceptedNegativeData"),
    ):
        operation = _schema(lying, tenant)["/healthz"]["GET"]
        with pytest.raises(BaseException) as caught:  # schemathesis groups its failures
            _fuzz(operation, mode, base_url, Counter())
        assert failure in repr(caught.value) or failure in str(caught.value), caught.value


def _stated_by_the_schema(case: Any) -> bool:
    """False for a valid-mode body that breaks the overlap rule, the one rule JSON Schema cannot state."""
    if case.meta is None or not case.meta.generation.mode.is_positive or not isinstance(case.body, dict):
        return True
    return "spec.documentLibrary.destinationPrefix" not in rules.problems(case.body)


def _fuzz(operation: Any, mode: GenerationMode, base_url: str, cases: Counter[str]) -> None:
    label = f"{operation.label} {mode.value}"

    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode).filter(_stated_by_the_schema))
    def call(case: Any) -> None:
        response = case.call_and_validate(base_url=base_url, checks=ALL_CHECKS)
        status = "2xx" if 200 <= response.status_code < 300 else str(response.status_code)
        cases[label] += 1
        cases[f"{label} {status}"] += 1

    try:
        call()
    except Unsatisfiable:
        if mode is GenerationMode.POSITIVE:
            raise  # an operation without parameters has no invalid request to generate: nothing to break
