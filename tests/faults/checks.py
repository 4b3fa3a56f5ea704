"""The outcome checks of a crashed backup: each effect once, each artefact once, the lane released.

Artefacts are counted by the object store (tests/versions.py: one version per write on a bucket that keeps
them all), not by our own manifest; test_crash_local.py has the positive control that makes these checks fail.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from typing import Any

from nats.js.errors import KeyNotFoundError

from lc2backup.crd_gateway.domain import Lane, lane_key
from lc2backup.domain import BackupLayout, BackupState
from lc2backup.domain.wire import RecordedEvent
from tests.faults.harness import TOPOLOGY, EventLog
from tests.metadata_json import read_metadata_json
from tests.versions import rewritten, writes

SUCCEEDED_ONCE = (
    "BackupRequested",
    "BackupAdmitted",
    "DatabaseExportStarted",
    "DatabaseExportCompleted",
    "DocumentLibraryTransferStarted",
    "DocumentLibraryTransferCompleted",
    "BackupMetadataWritten",
    "BackupSucceeded",
)
AT_MOST_ONCE = ("BackupQueued", "DatabaseSnapshotStarted", "DatabaseSnapshotCompleted", "BackupFailed")


def check_events_once(history: list[RecordedEvent], once: Iterable[str]) -> None:
    """Each decision recorded exactly once, nothing after the terminal event, no event id twice."""
    types = [e.envelope.type for e in history]
    for event_type in once:
        assert types.count(event_type) == 1, (event_type, types)
    for event_type in AT_MOST_ONCE:
        assert types.count(event_type) <= 1, (event_type, types)
    assert types[-1] in ("BackupSucceeded", "BackupFailed", "BackupRejected"), types
    ids = [e.envelope.id for e in history]
    assert len(ids) == len(set(ids)), types


async def versions(s3: Any, bucket: str, key: str) -> int:
    """How many times the store wrote ``key`` (the buckets of the fault tests keep every version)."""
    return (await writes(s3, bucket, key))[key]


async def read(s3: Any, bucket: str, key: str) -> bytes:
    obj = await s3.get_object(Bucket=bucket, Key=key)
    async with obj["Body"] as stream:
        return bytes(await stream.read())


async def listing(s3: Any, bucket: str, prefix: str) -> dict[str, str]:
    """key relative to ``prefix`` -> ETag (the latest version of each)."""
    found: dict[str, str] = {}
    async for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            found[obj["Key"][len(prefix) :]] = str(obj["ETag"]).strip('"')
    return found


async def check_copy_set(
    s3: Any, state: BackupState, regular: Iterable[str], source: dict[str, str], copies: int | None = 1
) -> None:
    """One copy set: exactly the regular objects, each with its source's ETag, each once in the manifest; and,
    counted by the store, each object and the manifest written at most ``copies`` times (2 when the case's crash
    interrupted the copy, which is then redone; None: not bounded, an outage retries whole copies)."""
    assert state.spec is not None
    layout = BackupLayout.of(state.spec, state.backup_id)
    copied = await listing(s3, layout.bucket, layout.document_library_prefix)
    assert sorted(copied) == sorted(regular)
    assert all(copied[key] == source[key] for key in copied)
    lines = (await read(s3, layout.bucket, layout.manifest_key)).decode().splitlines()
    keys = [json.loads(line)["key"] for line in lines]
    assert sorted(keys) == sorted(regular), "the manifest lists each copied object exactly once"
    counts = await writes(s3, layout.bucket, layout.root)
    written = [layout.manifest_key, *(layout.document_library_prefix + key for key in regular)]
    assert all(counts[key] >= 1 for key in written)
    if copies is not None:
        doubled = rewritten(counts, written, at_most=copies)
        assert not doubled, f"copied more than {copies}x (key: writes): {doubled}"


async def check_metadata_once(s3: Any, state: BackupState, history: list[RecordedEvent]) -> None:
    assert state.spec is not None
    layout = BackupLayout.of(state.spec, state.backup_id)
    count = await versions(s3, layout.bucket, layout.metadata_key)
    assert count == 1, f"{layout.metadata_key} written {count}x, not once"
    body = await read(s3, layout.bucket, layout.metadata_key)
    (written,) = [e for e in history if e.envelope.type == "BackupMetadataWritten"]
    assert written.envelope.data["sha256"] == hashlib.sha256(body).hexdigest()
    assert read_metadata_json(body)["backupId"] == state.backup_id


async def check_dump_once(s3: Any, state: BackupState) -> None:
    """The local provider's dump: created once (a crash after it finished does not dump again), checksum right."""
    export = state.database.export
    assert export is not None and state.spec is not None
    layout = BackupLayout.of(state.spec, state.backup_id)
    key = export.location.removeprefix(f"s3://{layout.bucket}/")
    doubled = rewritten(await writes(s3, layout.bucket, key), [key, f"{key}.sha256"])
    assert not doubled, f"the dump was written more than once (key: writes): {doubled}"
    body = await read(s3, layout.bucket, key)
    assert hashlib.sha256(body).hexdigest() == export.sha256 and len(body) == export.size_bytes


async def check_no_metadata(s3: Any, state: BackupState) -> None:
    assert state.spec is not None
    layout = BackupLayout.of(state.spec, state.backup_id)
    assert await versions(s3, layout.bucket, layout.metadata_key) == 0


async def check_lane_released(log: EventLog, state: BackupState) -> None:
    """After the backups of a lane ended, the lane holds nothing: later requests will be admitted."""
    key = lane_key(state)
    assert key is not None
    kv = await log.js.key_value(TOPOLOGY.lanes_bucket)
    try:
        entry = await kv.get(key)
    except KeyNotFoundError:
        return
    assert Lane.decode(entry.value) == Lane(), f"lane {key} still holds {Lane.decode(entry.value)}"


async def check_resumed_copy(s3: Any, layout: BackupLayout, regular: Iterable[str], source: dict[str, str]) -> int:
    """A copy that resumed: exactly the regular objects with their source's ETags; the manifest (and the parts it
    was composed of, in order) lists each exactly once; each part written once. Returns how many copies the store
    made in all (versions under ``documentlibrary/``), for the caller's bound."""
    wanted = sorted(regular)
    copied = await listing(s3, layout.bucket, layout.document_library_prefix)
    assert sorted(copied) == wanted
    assert all(copied[key] == source[key] for key in copied)
    body = await read(s3, layout.bucket, layout.manifest_key)
    keys = Counter(json.loads(line)["key"] for line in body.decode().splitlines())
    repeated = {key: n for key, n in keys.items() if n > 1}
    assert not repeated, f"manifest lines repeated: {repeated}"
    assert sorted(keys) == wanted, "the manifest lists each copied object"
    parts = sorted(await listing(s3, layout.bucket, layout.manifest_parts_prefix))
    joined = b"".join([await read(s3, layout.bucket, layout.manifest_parts_prefix + part) for part in parts])
    assert joined == body, "the manifest is its parts in order"
    counts = await writes(s3, layout.bucket, layout.root)
    doubled = rewritten(counts, [layout.manifest_key, *(layout.manifest_parts_prefix + p for p in parts)])
    assert not doubled, f"manifest (parts) written more than once: {doubled}"
    return sum(n for key, n in counts.items() if key.startswith(layout.document_library_prefix))
