"""Property-based fuzzing (hypothesis) of BackupRequest specs through both entry points, on the real services.

Properties: the API never answers 5xx; it accepts exactly the specs the domain accepts (and every spec built
valid by construction), and refuses the rest with 422 and a field for every problem. Through NATS the same
specs end as BackupRequested, or as BackupRejected listing each problem with its field. Arbitrary bytes on the
command subject are dead-lettered or rejected, and the services keep serving. Example counts are bounded so
that the suite stays fast; the numbers tried are printed.
"""

from __future__ import annotations

import asyncio
import json
import string
import time
from typing import Any

import httpx
import nats
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lc2backup.domain import SpecInvalid, backup_id_for_request, parse_spec, registry
from lc2backup.eventing import EventStore, Topology
from tests.security.conftest import Tenant
from tests.support import System

pytestmark = [pytest.mark.e2e, pytest.mark.security]

API_EXAMPLES = 120
RAW_EXAMPLES = 60
FUZZ = settings(
    max_examples=API_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)


@pytest.fixture
def system_extra_env(tenants: dict[str, Tenant]) -> dict[str, str]:
    from tests.security.conftest import tokens_setting

    # operations complete at once and move nothing: the fuzzer exercises intake, not storage
    return {"LC2_API__TOKENS": tokens_setting(tenants), "LC2_LOCAL__MODE": "instant"}


def _label() -> st.SearchStrategy[str]:
    return st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)


def _prefix() -> st.SearchStrategy[str]:
    segment = st.from_regex(r"[A-Za-z0-9_+=@,~()!-][A-Za-z0-9._+=@,~()!-]{0,8}", fullmatch=True)
    return st.builds(
        lambda parts, slash: "/".join(parts) + ("/" if parts and slash else ""),
        st.lists(segment, max_size=3),
        st.booleans(),
    )


@st.composite
def valid_specs(draw: st.DrawFn) -> dict[str, Any]:
    provider = draw(st.sampled_from(["local", "aws", "gcp", "azure"]))
    source = draw(st.from_regex(r"[a-z0-9][a-z0-9-]{1,20}[a-z0-9]", fullmatch=True))
    spec: dict[str, Any] = {
        "projectId": draw(_label()),
        "environment": draw(_label()),
        "provider": provider,
        "database": {
            "type": "dump" if provider == "local" else draw(st.sampled_from(["snapshot", "dump"])),
            "instanceId": draw(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,30}", fullmatch=True)),
        },
        "documentLibrary": {
            "sourceBucket": source,
            "sourcePrefix": draw(_prefix()),
            "destinationBucket": source + "-backups",
            "destinationPrefix": draw(_prefix()),
        },
    }
    if draw(st.booleans()):
        spec["database"]["databaseName"] = draw(st.from_regex(r"[A-Za-z_][A-Za-z0-9_$-]{0,20}", fullmatch=True))
    if draw(st.booleans()):
        spec["retentionDays"] = draw(st.integers(1, 3650))
    if draw(st.booleans()):
        keys = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9._/-]{0,10}[A-Za-z0-9])?", fullmatch=True)
        spec["tags"] = draw(st.dictionaries(keys, st.text(max_size=40), max_size=3))  # any text, NUL included
    return spec


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=8,
)
HOSTILE_TEXT = st.sampled_from(
    ["", "../..", "/etc/passwd", "a\x00b", "' OR 1=1 --", "A" * 300, "ü" * 70, "${jndi:ldap://x}", "\n", "*", ">"]
)
PATHS = [
    "projectId",
    "environment",
    "provider",
    "retentionDays",
    "tags",
    "database",
    "database.type",
    "database.instanceId",
    "database.databaseName",
    "database.databasesToIgnore",
    "documentLibrary",
    "documentLibrary.sourceBucket",
    "documentLibrary.sourcePrefix",
    "documentLibrary.destinationBucket",
    "documentLibrary.destinationPrefix",
    "documentLibrary.excludeGeneratedFiles",
    "unknownField",
    "database.unknownField",
]


@st.composite
def mutated_specs(draw: st.DrawFn) -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(json.dumps(draw(valid_specs())))
    for _ in range(draw(st.integers(1, 3))):
        *parents, leaf = draw(st.sampled_from(PATHS)).split(".")
        node = spec
        for part in parents:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        if draw(st.integers(0, 4)) == 0:
            node.pop(leaf, None)
        else:
            node[leaf] = draw(JSON | HOSTILE_TEXT)
    return spec


SPECS = st.one_of(valid_specs().map(lambda s: ("valid", s)), mutated_specs().map(lambda s: ("mutated", s)))


def _domain_accepts(spec: dict[str, Any]) -> bool:
    try:
        parse_spec(spec)
    except SpecInvalid:
        return False
    return True


async def test_fuzzed_specs_through_the_api_and_nats(system: System, tenants: dict[str, Tenant]) -> None:
    tried: list[dict[str, Any]] = []
    tally = {"accepted": 0, "refused": 0, "valid by construction": 0}
    ops = tenants["ops"]

    with httpx.Client(base_url=system.api, headers=ops.headers, timeout=20) as api:

        @FUZZ
        @given(SPECS)
        def through_the_api(case: tuple[str, dict[str, Any]]) -> None:
            kind, spec = case
            resp = api.post("/api/v1/backups", json=spec)
            assert resp.status_code < 500, (resp.status_code, resp.text, spec)
            if kind == "valid":
                tally["valid by construction"] += 1
                assert resp.status_code == 202, (resp.text, spec)
            if _domain_accepts(spec):
                assert resp.status_code == 202, (resp.text, spec)
                tally["accepted"] += 1
            else:
                assert resp.status_code == 422, (resp.status_code, resp.text, spec)
                problems = resp.json()["problems"]
                assert problems and all(p["field"] and p["message"] for p in problems), problems
                tally["refused"] += 1
            tried.append(spec)

        through_the_api()
    print(f"fuzz API: {len(tried)} specs tried ({tally})")

    # The same specs as NATS commands: each one ends as BackupRequested, or BackupRejected with every field.
    nc = await nats.connect(system.nats.url)
    store = EventStore(nc, registry(), producer="fuzz-check", topology=Topology())
    try:
        js = nc.jetstream()
        expected: dict[str, bool] = {}
        for i, spec in enumerate(tried):
            request_id = f"fuzz-{i}-{time.monotonic_ns()}"
            await js.publish(Topology().request_subject, json.dumps({"requestId": request_id, "spec": spec}).encode())
            expected[backup_id_for_request(request_id)] = _domain_accepts(spec)
        outcomes: dict[str, str] = {}
        deadline = time.monotonic() + 120
        while len(outcomes) < len(expected) and time.monotonic() < deadline:
            for backup_id, valid in expected.items():
                if backup_id in outcomes:
                    continue
                history = await store.load(backup_id)
                if not history.events:
                    continue
                first = history.events[0]
                outcomes[backup_id] = first.envelope.type
                assert first.envelope.type == ("BackupRequested" if valid else "BackupRejected"), first.envelope
                if not valid:
                    problems = first.envelope.data["problems"]
                    assert problems and all(p["field"] and p["message"] for p in problems), problems
            await asyncio.sleep(0.2)
        assert len(outcomes) == len(expected), f"{len(expected) - len(outcomes)} commands had no outcome"
        requested = sum(t == "BackupRequested" for t in outcomes.values())
        print(f"fuzz NATS: {len(outcomes)} commands ({requested} requested, {len(outcomes) - requested} rejected)")

        # Arbitrary bytes and JSON on the command subject: dead-lettered or rejected, never stuck.
        raw_sent: list[bytes] = []

        @settings(FUZZ, max_examples=RAW_EXAMPLES)
        @given(
            st.binary(max_size=200)
            | JSON.map(lambda v: json.dumps(v).encode())
            | st.text(string.printable).map(str.encode)
        )
        def collect(raw: bytes) -> None:
            raw_sent.append(raw)

        collect()
        for raw in raw_sent:
            await js.publish(Topology().request_subject, raw)
        deadline = time.monotonic() + 60
        while (await js.stream_info(Topology().commands_stream)).state.messages and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert (await js.stream_info(Topology().commands_stream)).state.messages == 0, "commands left unprocessed"
        letters = (await js.stream_info(Topology().dlq_stream)).state.messages
        print(f"fuzz raw commands: {len(raw_sent)} sent, {letters} dead-lettered, the rest rejected or requested")
    finally:
        await store.close()
        await nc.close()

    # Every service still serves, and the projection took every event (NUL characters included).
    for name, service in system.services.services.items() if system.services else []:
        assert service.process is not None and service.process.alive(), name
    async with system.client() as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
        listed = (await client.get("/api/v1/backups", params={"limit": 200})).json()["items"]
        assert listed
