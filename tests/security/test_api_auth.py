"""The projection API authenticates every call and keeps tenants apart, against the real services.

Tenants (tests/security/conftest.py): retail-team sees ``retail``; bank-team ``bank`` and ``insurance``; ops
every project. What one may not see answers exactly like what does not exist.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest

from lc2backup.archiver.api import create_app
from lc2backup.archiver.auth import TokenBook, token_digest
from lc2backup.archiver.settings import ApiSettings
from lc2backup.eventing import Topology
from tests.security.conftest import Tenant
from tests.support import System

ROUTES = [
    ("GET", "/api/v1/backups"),
    ("GET", f"/api/v1/backups/{uuid.uuid4()}"),
    ("GET", f"/api/v1/backups/{uuid.uuid4()}/events"),
    ("POST", "/api/v1/backups"),
]


@pytest.mark.security
async def test_every_api_route_needs_a_configured_bearer_token(tmp_path: Path) -> None:
    """No resources are opened (no lifespan): a request without a valid token never reaches them."""
    good = "the-only-token"
    tokens_file = tmp_path / "tokens.json"
    tokens_file.write_text(f'{{"{token_digest(good)}": {{"tenant": "t", "projects": ["p"]}}}}')
    book = TokenBook.from_settings(ApiSettings(tokens_file=tokens_file))
    assert book.tenant_for(good) is not None and book.tenant_for(good + "x") is None

    transport = httpx.ASGITransport(app=create_app(tokens=book))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        for method, path in ROUTES:
            for headers in (
                {},
                {"Authorization": "Bearer wrong"},
                {"Authorization": f"Basic {good}"},
                {"Authorization": "Bearer"},
                {"Authorization": f"bearer{good}"},
            ):
                resp = await client.request(method, path, headers=headers, json={})
                assert resp.status_code == 401, (method, path, headers)
                assert resp.headers["WWW-Authenticate"] == "Bearer"
                assert set(resp.json()) == {"detail"}
        assert (await client.get("/healthz")).status_code == 200
        document = (await client.get("/openapi.json")).json()
        assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
        assert all(op["security"] == [{"HTTPBearer": []}] for op in document["paths"]["/api/v1/backups"].values())


@pytest.mark.security
def test_token_configuration_holds_digests_not_tokens(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="SHA-256"):
        ApiSettings.model_validate({"tokens": {"plain-token": {"tenant": "t", "projects": ["p"]}}})
    bad = tmp_path / "tokens.json"
    bad.write_text('{"plain-token": {"tenant": "t", "projects": ["p"]}}')
    with pytest.raises(ValueError, match="SHA-256"):
        TokenBook.from_settings(ApiSettings(tokens_file=bad))
    with pytest.raises(ValueError):
        ApiSettings.model_validate({"tokens": {token_digest("x"): {"tenant": "t", "projects": ["Not A Project"]}}})


async def _commands(system: System) -> int:
    nc = await nats.connect(system.nats.url)
    try:
        return int((await nc.jetstream().stream_info(Topology().commands_stream)).state.messages)
    finally:
        await nc.close()


def _same_answer(a: httpx.Response, b: httpx.Response, hidden: str, missing: str) -> None:
    """Two answers are indistinguishable once the id asked for is replaced."""
    assert a.status_code == b.status_code == 404
    assert a.text.replace(hidden, "<id>") == b.text.replace(missing, "<id>")
    ignore = {"date"}
    assert {k: v for k, v in a.headers.items() if k not in ignore} == {
        k: v for k, v in b.headers.items() if k not in ignore
    }


@pytest.mark.e2e
@pytest.mark.security
async def test_tenants_see_and_request_only_their_own_projects(
    system: System, tenants: dict[str, Tenant], buckets: tuple[str, str]
) -> None:
    source, destination = buckets
    retail, bank, ops = tenants["retail-team"], tenants["bank-team"], tenants["ops"]

    def spec(project: str) -> dict[str, Any]:
        return system.spec(source, destination, projectId=project)

    async with httpx.AsyncClient(base_url=system.api, timeout=10) as api:
        for method, path in ROUTES:  # no token, a wrong one: 401 before anything else
            for headers in ({}, {"Authorization": "Bearer not-a-token"}):
                resp = await api.request(method, path, headers=headers, json=spec("retail"))
                assert resp.status_code == 401 and resp.headers["WWW-Authenticate"] == "Bearer", (method, path)
        for open_path in ("/healthz", "/readyz", "/openapi.json", "/docs"):
            assert (await api.get(open_path)).status_code == 200, open_path

        # Creating: own projects only; a refused request publishes nothing.
        before = await _commands(system)
        refused = await api.post("/api/v1/backups", json=spec("bank"), headers=retail.headers)
        assert refused.status_code == 403 and "bank" in refused.json()["detail"]
        assert await _commands(system) == before
        # The same Idempotency-Key in two projects names two backups: one tenant cannot claim another's.
        mine = await api.post(
            "/api/v1/backups", json=spec("retail"), headers={**retail.headers, "Idempotency-Key": "k1"}
        )
        theirs = await api.post("/api/v1/backups", json=spec("bank"), headers={**bank.headers, "Idempotency-Key": "k1"})
        assert mine.status_code == theirs.status_code == 202
        retail_id, bank_id = mine.json()["backupId"], theirs.json()["backupId"]
        assert retail_id != bank_id
        for backup_id in (retail_id, bank_id):
            assert (await system.wait_for(backup_id))["state"] == "Succeeded"

        # Listing: only own projects, with or without a filter; another project's filter is 403.
        listed = (await api.get("/api/v1/backups", headers=retail.headers)).json()["items"]
        assert [b["backupId"] for b in listed] == [retail_id]
        assert (
            await api.get("/api/v1/backups", params={"projectId": "bank"}, headers=retail.headers)
        ).status_code == 403
        assert (await api.get("/api/v1/backups", params={"projectId": "insurance"}, headers=bank.headers)).json()[
            "items"
        ] == []
        everything = (await api.get("/api/v1/backups", headers=ops.headers)).json()["items"]
        assert {b["backupId"] for b in everything} == {retail_id, bank_id}

        # Reading another tenant's backup is answered exactly like a backup that does not exist.
        missing = str(uuid.uuid4())
        for suffix in ("", "/events"):
            hidden = await api.get(f"/api/v1/backups/{bank_id}{suffix}", headers=retail.headers)
            unknown = await api.get(f"/api/v1/backups/{missing}{suffix}", headers=retail.headers)
            _same_answer(hidden, unknown, bank_id, missing)
            assert (await api.get(f"/api/v1/backups/{bank_id}{suffix}", headers=bank.headers)).status_code == 200
            assert (await api.get(f"/api/v1/backups/{bank_id}{suffix}", headers=ops.headers)).status_code == 200
        print(f"tenant isolation: {len(ROUTES) * 2} unauthenticated calls refused, 3 tenants, 2 backups")
