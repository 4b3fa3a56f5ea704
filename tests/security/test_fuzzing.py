"""Property-based fuzzing (hypothesis) of BackupRequest specs through both entry points, on the real services.

The oracle is ``tests/security/rules.py``: the documented rules stated again, without lc2backup. The API must
answer 202 to exactly the specs the rules call valid and 422 to the rest, naming the field of every broken
rule, and never 5xx. Through NATS the same specs must end as BackupRequested, or as BackupRejected with the
same fields, read from the event stream at the server. Arbitrary bytes on the command subject that are not a
command (not UTF-8, not a JSON object, over 64 KiB) must each end in the dead-letter stream LC2_BACKUP_DLQ,
matched by their stream sequence, with a reason and their own bytes; JSON objects must not; bytes over the
server's max_payload are refused at the door and counted apart. Example counts are bounded so that the suite
stays fast; the numbers tried are printed.
"""

from __future__ import annotations

import asyncio
import json
import string
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import nats
import nats.errors
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.security import rules
from tests.security.conftest import Tenant
from tests.security.strategies import JSON, SPECS
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
# As documented (README "Requesting a backup", docs/security.md) and configured, not read from lc2backup.
COMMANDS_STREAM = "LC2_BACKUP_COMMANDS"
DLQ_STREAM = "LC2_BACKUP_DLQ"
EVENTS_STREAM = "LC2_BACKUP_EVENTS"
COMMAND_SUBJECT = "lc2.backup.cmd.request"
MAX_COMMAND_BYTES = 64 * 1024
DLQ_MAX_BODY = 256 * 1024
REASON = "Lc2-Dlq-Reason"


@pytest.fixture
def system_extra_env(tenants: dict[str, Tenant]) -> dict[str, str]:
    from tests.security.conftest import tokens_setting

    # operations complete at once and move nothing: the fuzzer exercises intake, not storage
    return {"LC2_API__TOKENS": tokens_setting(tenants), "LC2_LOCAL__MODE": "instant"}


def _fields(problems: list[dict[str, Any]]) -> set[str]:
    assert problems and all(p["field"] and p["message"] for p in problems), problems
    return {p["field"] for p in problems}


async def _poll(what: str, check: Callable[[], Awaitable[None]], timeout: float) -> None:
    """Run ``check`` until it stops failing; past the deadline its last assertion error is the failure."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            await check()
            return
        except AssertionError as exc:
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} after {timeout:.0f}s: {exc}") from exc
        await asyncio.sleep(0.2)


def _padded(raw: bytes, size: int) -> bytes:
    return (raw * (size // max(len(raw), 1) + 1))[:size] if raw else b"x" * size


CAUSE_WORDS = {
    "too large": "too large",
    "not UTF-8": "UTF-8",
    "not JSON": "not JSON",
    "too deep": "too deeply",
    "not an object": "object",
}


def _why_not_a_command(raw: bytes) -> str:
    """The first documented reason these bytes are not a command, in the order they are read."""
    if len(raw) > MAX_COMMAND_BYTES:
        return "too large"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "not UTF-8"
    try:
        json.loads(text)
    except ValueError:
        return "not JSON"
    except RecursionError:
        return "too deep"
    return "not an object"


# Not commands: bytes, JSON that is not an object, text; and some of any kind made larger than a command may be.
RAW = st.one_of(
    st.binary(max_size=200),
    JSON.filter(lambda v: not isinstance(v, dict)).map(lambda v: json.dumps(v).encode()),
    st.text(string.printable).map(str.encode),
    JSON.map(lambda v: json.dumps({"requestId": "r", "spec": v}).encode()),  # an object: a command, never dead
    st.builds(
        _padded,
        st.binary(min_size=1, max_size=20) | st.just(b'{"spec": "'),
        st.sampled_from([MAX_COMMAND_BYTES + 1, 300 * 1024, 1024 * 1024 + 1]),
    ),
)


def _fuzz_the_api(system: System, ops: Tenant) -> list[dict[str, Any]]:
    """POST each generated spec; return them for the NATS half."""
    tried: list[dict[str, Any]] = []
    tally: Counter[str] = Counter()
    with httpx.Client(base_url=system.api, headers=ops.headers, timeout=20) as api:

        @FUZZ
        @given(SPECS)
        def through_the_api(case: tuple[str, dict[str, Any]]) -> None:
            kind, spec = case
            expected = rules.problems(spec)
            resp = api.post("/api/v1/backups", json=spec)
            assert resp.status_code < 500, (resp.status_code, resp.text, spec)
            if kind == "valid":
                tally["valid by construction"] += 1
                assert not expected, (expected, spec)  # the generator and the rules agree
            if not expected:
                assert resp.status_code == 202, (resp.text, spec)
                tally["accepted"] += 1
            else:
                assert resp.status_code == 422, (resp.status_code, resp.text, expected, spec)
                reported = _fields(resp.json()["problems"])
                assert rules.explains(reported, expected), (reported, expected, spec)
                tally["refused"] += 1
            tried.append(spec)

        through_the_api()
    assert tally["accepted"] and tally["refused"], tally
    print(f"fuzz API: {len(tried)} specs tried ({dict(tally)})")
    return tried


async def _fuzz_nats_commands(js: Any, tried: list[dict[str, Any]]) -> set[int]:
    """The same specs as NATS commands: each ends as BackupRequested, or BackupRejected naming each field.
    Returns the commands' stream sequences (none may be dead-lettered)."""
    sequences: set[int] = set()
    verdicts: dict[str, set[str]] = {}
    for spec in tried:
        backup_id = str(uuid.uuid4())
        ack = await js.publish(COMMAND_SUBJECT, json.dumps({"backupId": backup_id, "spec": spec}).encode())
        sequences.add(ack.seq)
        verdicts[backup_id] = rules.problems(spec)
    first_events: dict[str, dict[str, Any]] = {}

    async def on_event(msg: Any) -> None:
        backup_id, event_type = msg.subject.split(".")[-2:]
        if backup_id in verdicts and backup_id not in first_events:
            first_events[backup_id] = {"type": event_type, **json.loads(msg.data)}

    events = await js.subscribe("lc2.backup.evt.>", stream=EVENTS_STREAM, ordered_consumer=True, cb=on_event)

    async def every_command_decided() -> None:
        missing = len(verdicts) - len(first_events)
        assert not missing, f"{missing} of {len(verdicts)} commands have no event"

    try:
        await _poll("commands without an outcome", every_command_decided, timeout=120)
    finally:
        await events.unsubscribe()
    for backup_id, expected in verdicts.items():
        event = first_events[backup_id]
        if not expected:
            assert event["type"] == "BackupRequested", (event, expected)
        else:
            assert event["type"] == "BackupRejected", (event, expected)
            reported = _fields(event["data"]["problems"])
            assert rules.explains(reported, expected), (reported, expected)
    requested = sum(e["type"] == "BackupRequested" for e in first_events.values())
    print(f"fuzz NATS: {len(first_events)} commands ({requested} requested, {len(first_events) - requested} rejected)")
    return sequences


async def _read_dead_letters(js: Any) -> dict[int, list[tuple[dict[str, str], bytes]]]:
    """Every dead letter of a command, read at the server, by the command's stream sequence."""
    letters: dict[int, list[tuple[dict[str, str], bytes]]] = {}
    state = (await js.stream_info(DLQ_STREAM)).state
    for seq in range(state.first_seq, state.last_seq + 1) if state.messages else ():
        msg = await js.get_msg(DLQ_STREAM, seq)
        headers = dict(msg.headers or {})
        if headers.get("Lc2-Dlq-Stream") == COMMANDS_STREAM:
            letters.setdefault(int(headers["Lc2-Dlq-Sequence"]), []).append((headers, msg.data or b""))
    return letters


async def _fuzz_raw_bytes(nc: Any, js: Any, commands: set[int]) -> None:
    """Arbitrary bytes on the command subject: each non-command is dead-lettered once, with a reason."""
    raw_sent: list[bytes] = []

    @settings(FUZZ, max_examples=RAW_EXAMPLES)
    @given(RAW)
    @example(b"{" * (MAX_COMMAND_BYTES + 1))  # each kind of refusal at least once, whatever the draw
    @example(b"x" * (1024 * 1024 + 1))
    @example(b'{"spec": ' + b"[" * 5000 + b"}")  # deeper than a JSON reader goes, within the size limit
    def collect(raw: bytes) -> None:
        raw_sent.append(raw)

    collect()
    expected_dead: dict[int, bytes] = {}  # commands-stream sequence -> bytes that must be dead-lettered
    objects = 0
    refused_at_the_door = 0
    for raw in raw_sent:
        if len(raw) > nc.max_payload:  # the limit the server announced: it would close the connection
            before = (await js.stream_info(COMMANDS_STREAM)).state.last_seq
            with pytest.raises(nats.errors.MaxPayloadError):
                await js.publish(COMMAND_SUBJECT, raw)
            assert (await js.stream_info(COMMANDS_STREAM)).state.last_seq == before
            refused_at_the_door += 1
            continue
        ack = await js.publish(COMMAND_SUBJECT, raw)
        if rules.is_json_object_command(raw) and len(raw) <= MAX_COMMAND_BYTES:
            commands.add(ack.seq)
            objects += 1
        else:
            expected_dead[ack.seq] = raw
    assert expected_dead and refused_at_the_door, "the generator must reach both kinds of refusal"

    letters: dict[int, list[tuple[dict[str, str], bytes]]] = {}

    async def every_letter_written() -> None:
        queued = (await js.stream_info(COMMANDS_STREAM)).state.messages
        assert queued == 0, f"{queued} commands left unprocessed"
        letters.clear()
        letters.update(await _read_dead_letters(js))
        missing = set(expected_dead) - set(letters)
        assert not missing, f"{len(missing)} of {len(expected_dead)} non-commands not dead-lettered"

    await _poll("dead letters", every_letter_written, timeout=60)
    assert not set(letters) & commands, "a command was dead-lettered"
    assert set(letters) == set(expected_dead), "dead letters that match nothing published"
    for seq, raw in expected_dead.items():
        assert len(letters[seq]) == 1, (seq, letters[seq])
        ((headers, body),) = letters[seq]
        assert headers.get(REASON, "").strip(), headers
        assert body == raw[:DLQ_MAX_BODY], (seq, len(body), len(raw))
        assert int(headers["Lc2-Dlq-Original-Size"]) == len(raw)
        cause = _why_not_a_command(raw)
        assert CAUSE_WORDS[cause] in headers[REASON], (cause, headers[REASON])
    reasons = Counter(_why_not_a_command(raw) for raw in expected_dead.values())
    print(
        f"fuzz raw commands: {len(raw_sent)} sent; {len(expected_dead)} not commands, each dead-lettered once with"
        f" its reason and bytes ({dict(reasons)}); {objects} JSON objects taken as commands, none dead-lettered;"
        f" {refused_at_the_door} over max_payload refused at the door"
    )


async def test_fuzzed_specs_through_the_api_and_nats(system: System, tenants: dict[str, Tenant]) -> None:
    tried = _fuzz_the_api(system, tenants["ops"])
    nc = await nats.connect(system.nats.url)
    try:
        js = nc.jetstream()
        commands = await _fuzz_nats_commands(js, tried)
        await _fuzz_raw_bytes(nc, js, commands)
    finally:
        await nc.close()

    # Every service still serves, and the projection took every event (NUL characters included).
    for name, service in system.services.services.items() if system.services else []:
        assert service.process is not None and service.process.alive(), name
    async with system.client() as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
        listed = (await client.get("/api/v1/backups", params={"limit": 200})).json()["items"]
        assert listed
