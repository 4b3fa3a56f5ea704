"""The projection API over real services: filters, cursor pagination, 404, 422, the POST path."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import System

pytestmark = pytest.mark.e2e


async def test_list_filter_paginate_and_errors(system: System, buckets: tuple[str, str]) -> None:
    source, destination = buckets
    async with system.client(timeout=10) as api:
        ids: dict[str, str] = {}
        for project, env in [("retail", "prd"), ("retail", "dev"), ("retail", "prd"), ("bank", "prd"), ("bank", "uat")]:
            spec = system.spec(source, destination, projectId=project, environment=env)
            resp = await api.post(
                "/api/v1/backups", json=spec, headers={"Idempotency-Key": f"{project}-{env}-{len(ids)}"}
            )
            assert resp.status_code == 202 and resp.headers["Location"].endswith(resp.json()["backupId"])
            ids[resp.json()["backupId"]] = f"{project}/{env}"
        for backup_id in ids:
            assert (await system.wait_for(backup_id))["state"] == "Succeeded"

        # The same Idempotency-Key is the same backup.
        again = await api.post(
            "/api/v1/backups",
            json=system.spec(source, destination, projectId="retail", environment="prd"),
            headers={"Idempotency-Key": "retail-prd-0"},
        )
        assert again.json()["backupId"] in ids

        everything = (await api.get("/api/v1/backups")).json()
        assert {b["backupId"] for b in everything["items"]} == set(ids) and everything["nextCursor"] is None

        retail_prd = (await api.get("/api/v1/backups", params={"projectId": "retail", "environment": "prd"})).json()
        assert sorted(ids[b["backupId"]] for b in retail_prd["items"]) == ["retail/prd", "retail/prd"]
        assert (await api.get("/api/v1/backups", params={"state": "Failed"})).json()["items"] == []
        bank = (await api.get("/api/v1/backups", params={"projectId": "bank", "state": "Succeeded"})).json()
        assert len(bank["items"]) == 2

        # Cursor pagination walks every backup exactly once, newest first.
        seen: list[dict[str, Any]] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
            page = (await api.get("/api/v1/backups", params=params)).json()
            seen += page["items"]
            cursor = page["nextCursor"]
            if cursor is None:
                break
        assert [b["backupId"] for b in seen] == [b["backupId"] for b in everything["items"]]
        assert len({b["backupId"] for b in seen}) == 5
        created = [(b["requestedAt"], b["backupId"]) for b in seen]
        assert created == sorted(created, reverse=True)

        one = next(iter(ids))
        detail = (await api.get(f"/api/v1/backups/{one}")).json()
        assert detail["status"]["database"]["state"] == "Completed" and detail["eventCount"] >= 6
        events = (await api.get(f"/api/v1/backups/{one}/events")).json()["items"]
        assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
        assert events[0]["type"] == "BackupRequested" and events[0]["data"]["spec"]["projectId"]

        # 404 with a JSON body.
        missing = await api.get("/api/v1/backups/00000000-0000-0000-0000-000000000000")
        assert missing.status_code == 404 and "not found" in missing.json()["detail"]
        assert (await api.get("/api/v1/backups/nope/events")).status_code == 404

        # 422 with every field problem.
        bad = await api.post("/api/v1/backups", json={"projectId": "Retail", "provider": "ibm"})
        assert bad.status_code == 422
        fields = {p["field"] for p in bad.json()["problems"]}
        assert {"spec.projectId", "spec.provider", "spec.environment", "spec.database"} <= fields
        overlapping = system.spec(source, source)
        overlapping["documentLibrary"]["destinationPrefix"] = ""
        cross = await api.post("/api/v1/backups", json=overlapping)
        assert (
            cross.status_code == 422
            and cross.json()["problems"][0]["field"] == "spec.documentLibrary.destinationPrefix"
        )
        for params in ({"limit": 0}, {"limit": 100_000}, {"state": "Sleeping"}, {"cursor": "garbage!"}):
            resp = await api.get("/api/v1/backups", params=params)
            assert resp.status_code == 422, params
            assert resp.json()["problems"], params
        assert (await api.get("/healthz")).json() == {"status": "ok"}
        ready = await api.get("/readyz")
        assert ready.status_code == 200 and ready.json()["checks"] == {
            "nats": True,
            "postgres": True,
            "projection": True,
        }
        docs = await api.get("/docs")
        assert docs.status_code == 200
        assert "/api/v1/backups" in (await api.get("/openapi.json")).json()["paths"]
