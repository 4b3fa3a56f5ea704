"""Hostile names and keys: bucket names, prefixes and identifiers are validated, path traversal is refused, a
hostile object key in the source store cannot land outside the backup's folder, and SQL-looking filters are
plain data to the API.

The property test judges ``parse_spec`` by ``tests/security/rules.py``, the rules stated again without the
model: the model must accept exactly the specs the rules call valid and name the field of every broken rule.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aioboto3
import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings

from lc2backup.devstack import MotoServer
from lc2backup.domain import BackupLayout, SpecInvalid, parse_spec, unsafe_key_reason
from lc2backup.providers import PermanentProviderError, TransferStatus
from lc2backup.providers.base import BackupJob
from lc2backup.providers.copier import S3Copier
from tests.security import rules
from tests.security.conftest import Tenant
from tests.security.strategies import SPECS
from tests.support import System, local_spec

pytestmark = pytest.mark.security


def _problem_fields(spec: dict[str, Any]) -> set[str]:
    with pytest.raises(SpecInvalid) as refused:
        parse_spec(spec)
    return {p.field for p in refused.value.problems}


def _with(path: str, value: Any) -> dict[str, Any]:
    spec = local_spec("source-bucket", "backup-bucket")
    node = spec
    *parents, leaf = path.split(".")
    for part in parents:
        node = node[part]
    node[leaf] = value
    return spec


HOSTILE: list[tuple[str, Any]] = [
    *(
        ("documentLibrary.sourcePrefix", prefix)
        for prefix in (
            "../etc/",
            "a/../../b/",
            "/absolute/",
            "a//b/",
            "./x/",
            "a/./b",
            "..",
            "a/..",
            "a\\..\\b",
            "x\x00y",
        )
    ),
    *(
        ("documentLibrary.destinationPrefix", prefix)
        for prefix in ("/var/backups/", "../../", "~/../x", "a/../", "%2e%2e/", "a\nb/", "€/")
    ),
    *(
        ("documentLibrary.sourceBucket", bucket)
        for bucket in ("Upper", "under_score", "ab", "-leading", "trailing-", "a..b", "a" * 64, "../x", "a/b", "")
    ),
    ("documentLibrary.destinationBucket", "bucket name"),
    ("documentLibrary.destinationBucket", "bucket;rm -rf"),
    ("database.databaseName", "lportal; DROP TABLE x"),
    ("database.databaseName", "lportal' OR '1'='1"),
    ("database.databaseName", "../lportal"),
    ("database.instanceId", "-oProxyCommand=evil"),
    ("database.instanceId", "db instance"),
    ("projectId", "retail/../bank"),
    ("environment", "PRD"),
    ("tags", {"../key": "v"}),
    ("tags", {"k": "v" * 300}),
]


@pytest.mark.parametrize(("path", "value"), HOSTILE, ids=[f"{p}={v!r}"[:60] for p, v in HOSTILE])
def test_hostile_names_and_prefixes_are_refused_with_their_field(path: str, value: Any) -> None:
    spec = _with(path, value)
    fields = _problem_fields(spec)
    assert any(f.startswith(f"spec.{path}") for f in fields), fields
    assert any(f.startswith(f"spec.{path}") for f in rules.problems(spec)), "the oracle misses a hostile value"


VALIDATION_EXAMPLES = 300


def test_the_model_accepts_exactly_what_the_rules_allow_and_names_each_broken_rule() -> None:
    tally = {"valid": 0, "invalid": 0}

    @settings(max_examples=VALIDATION_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(SPECS)
    def judge(case: tuple[str, dict[str, Any]]) -> None:
        _, spec = case
        expected = rules.problems(spec)
        try:
            parse_spec(spec)
        except SpecInvalid as refused:
            assert expected, f"a valid spec was refused: {refused} {spec!r}"
            reported = {p.field for p in refused.problems}
            assert rules.explains(reported, expected), (reported, expected, spec)
            tally["invalid"] += 1
        else:
            assert not expected, f"accepted although {sorted(expected)} break the rules: {spec!r}"
            tally["valid"] += 1

    judge()
    print(f"validation oracle: {sum(tally.values())} specs judged ({tally})")
    assert tally["valid"] and tally["invalid"], tally


@pytest.mark.parametrize(
    "key", ["../x", "a/../../b", "/leading", "\\leading", "a/./b", "a/..", ".", "..", "a\\..\\b", "a/b/../../../c"]
)
def test_hostile_object_keys_are_unsafe(key: str) -> None:
    assert unsafe_key_reason(key) is not None


@pytest.mark.parametrize("key", ["20097/0/123/1.0", "20097/", "a..b/c", ".hidden/x", "x/...", "a//b", "", "ü/ñ"])
def test_ordinary_object_keys_are_safe(key: str) -> None:
    assert unsafe_key_reason(key) is None


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """moto keeps keys literally (SeaweedFS refuses or normalises '..' keys, so it cannot hold hostile ones)."""
    server = MotoServer(tmp_path_factory.mktemp("moto"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def moto_s3(moto: MotoServer) -> AsyncIterator[Any]:
    async with aioboto3.Session().client(
        "s3", endpoint_url=moto.endpoint, region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s"
    ) as client:
        yield client


async def _keys(s3: Any, bucket: str) -> list[str]:
    found: list[str] = []
    async for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        found += [o["Key"] for o in page.get("Contents", [])]
    return found


async def _progress(_status: TransferStatus | Any, _position: Any = None) -> None:
    return None


@pytest.mark.parametrize("hostile", ["../x", "a/../../b", "/leading", "a/./b", "../../metadata.json", "..\\..\\w"])
async def test_the_copier_never_writes_outside_the_backup_folder(moto_s3: Any, hostile: str) -> None:
    source, destination = f"src-{uuid.uuid4().hex[:8]}", f"dst-{uuid.uuid4().hex[:8]}"
    for bucket in (source, destination):
        await moto_s3.create_bucket(Bucket=bucket)
    store = "store/"
    for key in ("20097/0/1/1.0", "20097/0/2/1.0", hostile):
        await moto_s3.put_object(Bucket=source, Key=f"{store}{key}", Body=b"liferay")
    assert f"{store}{hostile}" in await _keys(moto_s3, source)  # the store really holds the hostile key

    raw = local_spec(source, destination, prefix="backups/")
    raw["documentLibrary"]["sourcePrefix"] = store
    spec = parse_spec(raw)
    backup_id = str(uuid.uuid4())
    job = BackupJob(backup_id, spec, BackupLayout.of(spec, backup_id))
    with pytest.raises(PermanentProviderError, match="refusing to copy"):
        await S3Copier(workers=2).copy(moto_s3, job, _progress)
    inside = job.layout.document_library_prefix
    written = await _keys(moto_s3, destination)
    assert all(k.startswith(inside) for k in written), written


@pytest.mark.e2e
async def test_sql_looking_input_is_data_not_sql(
    system: System, tenants: dict[str, Tenant], buckets: tuple[str, str], tmp_path: Path
) -> None:
    source, destination = buckets
    ops = tenants["ops"]
    async with system.client(headers=ops.headers) as api:
        resp = await api.post("/api/v1/backups", json=system.spec(source, destination))
        assert resp.status_code == 202
        backup_id = resp.json()["backupId"]
        await system.wait_for(backup_id)

        conn = await asyncpg.connect(system.projection_dsn)
        try:
            before = {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in ("backups", "backup_events")}
        finally:
            await conn.close()
        injections = [
            "' OR '1'='1",
            "retail' --",
            "x'; DROP TABLE backups; --",
            "1; SELECT pg_sleep(5)",
            "retail\x00",
            "$1",
            "%' OR project_id LIKE '%",
        ]
        answers = []
        for text in injections:
            for params in ({"projectId": text}, {"environment": text}, {"state": text}, {"cursor": text}):
                r = await api.get("/api/v1/backups", params=params)
                answers.append(r.status_code)
                assert r.status_code in (200, 422), (params, r.status_code, r.text)
                assert r.status_code == 422 or r.json()["items"] == [], params
            for path in (f"/api/v1/backups/{text}", f"/api/v1/backups/{text}/events"):
                r = await api.get(path.replace("\x00", "%00"))
                answers.append(r.status_code)
                assert r.status_code in (404, 422), (path, r.status_code)
        assert (await api.get("/api/v1/backups")).json()["items"][0]["backupId"] == backup_id

    conn = await asyncpg.connect(system.projection_dsn)
    try:
        after = {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in ("backups", "backup_events")}
    finally:
        await conn.close()
    assert after == before
    print(f"sql injection: {len(answers)} hostile requests, none 5xx, tables intact ({after})")
