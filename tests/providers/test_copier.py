"""The copier as a resumable job, against the stack's SeaweedFS (every version kept, so copies are counted at the
store): slices that resume from the recorded position, a part written but not recorded, a crash before a record.

A "crash" here is an exception raised by the progress callback, the one place a position is recorded: the
copier stops there as a killed process would (the record never happened). tests/faults/test_crash_resume.py
kills the real service with SIGKILL at the same points.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from lc2backup.devstack.seeding import DocumentLibraryLayout, plan_document_library, seed_document_library
from lc2backup.domain import BackupLayout, TransferCounters, TransferPosition, parse_spec
from lc2backup.providers import ObjectNotFound, SourceChanged, TransferStatus
from lc2backup.providers.aws import AwsTransferProvider
from lc2backup.providers.base import BackupJob
from lc2backup.providers.copier import S3Copier
from lc2backup.providers.local import LocalTransferProvider
from lc2backup.providers.s3 import copy_server_side, translate
from tests.faults import checks
from tests.support import local_spec
from tests.versions import keep_every_version


class Crash(Exception):
    """Stands for SIGKILL at the record: what was recorded before it is all a resumed copy gets."""


class Recorder:
    """The progress events of one copy: the last recorded status is what the next slice resumes from."""

    def __init__(self, crash_at: int | None = None, only_after_a_part: bool = False) -> None:
        self.last: TransferStatus | None = None
        self.records = 0
        self.crash_at = crash_at
        self.only_after_a_part = only_after_a_part

    async def __call__(self, counters: TransferCounters, position: TransferPosition | None) -> None:
        assert position is not None
        wrote_a_part = (
            self.last is None
            or self.last.position is None
            or (position.manifest_parts > self.last.position.manifest_parts)
        )
        if self.crash_at is not None and (wrote_a_part or not self.only_after_a_part):
            self.crash_at -= 1
            if self.crash_at == 0:
                raise Crash
        self.records += 1
        self.last = TransferStatus(done=False, counters=counters, position=position)


async def _bed(s3: Any, files: int) -> tuple[BackupJob, DocumentLibraryLayout, dict[str, str]]:
    unique = uuid.uuid4().hex[:8]
    source, destination = f"src-{unique}", f"dst-{unique}"
    for bucket in (source, destination):
        await s3.create_bucket(Bucket=bucket)
    await keep_every_version(s3, destination)
    library = await seed_document_library(s3, source, "", plan_document_library(files))
    spec = parse_spec(local_spec(source, destination))
    backup_id = str(uuid.uuid4())
    return BackupJob(backup_id, spec, BackupLayout.of(spec, backup_id)), library, await checks.listing(s3, source, "")


async def _copy_to_the_end(
    s3: Any, copier: S3Copier, job: BackupJob, record: Recorder, slice_seconds: float | None
) -> tuple[TransferStatus, int]:
    calls = 0
    while True:
        calls += 1
        status = await copier.copy(s3, job, record, resume=record.last, slice_seconds=slice_seconds)
        if status.done:
            return status, calls


async def test_a_copy_in_slices_goes_on_from_each_recorded_position(s3: Any) -> None:
    job, library, etags = await _bed(s3, 30)
    record = Recorder()
    copier = S3Copier(workers=4, progress_interval=3600)  # positions recorded at the end of each slice only
    status, calls = await _copy_to_the_end(s3, copier, job, record, slice_seconds=0)  # one object per slice

    assert calls == library.total_objects  # one listed object per slice; the last one also writes the manifest
    total = await checks.check_resumed_copy(s3, job.layout, library.regular, etags)
    assert total == len(library.regular), "no object copied twice"
    assert status.counters == TransferCounters(
        objects_found=library.total_objects,
        objects_copied=len(library.regular),
        bytes_copied=sum(library.regular.values()),
        objects_excluded=len(library.generated),
        bytes_excluded=sum(library.generated.values()),
        objects_vanished=0,  # every counter known: the copier fills all (its capabilities say so)
        listing_complete=True,
    )
    known = {name for name, value in status.counters if value is not None} - {"listing_complete"}
    assert known == LocalTransferProvider.capabilities.counters == AwsTransferProvider.capabilities.counters
    assert status.position is not None and status.position.after_key == max(etags)
    assert status.manifest_location == job.layout.uri(job.layout.manifest_key)


async def test_a_whole_copy_in_one_slice_still_writes_its_manifest_in_parts(s3: Any) -> None:
    job, library, etags = await _bed(s3, 40)
    record = Recorder()
    status, calls = await _copy_to_the_end(s3, S3Copier(workers=8, progress_interval=0.01), job, record, None)
    assert calls == 1 and status.done
    assert await checks.check_resumed_copy(s3, job.layout, library.regular, etags) == len(library.regular)
    assert status.position is not None and status.position.manifest_parts >= 1


@pytest.mark.parametrize("crash_at", [1, 5, 17])
async def test_a_crash_before_a_record_copies_again_only_what_came_after_the_mark(s3: Any, crash_at: int) -> None:
    """The crash comes at the ``crash_at``-th record, before it is made: the slice's one object (written, and its
    manifest part too) is after the recorded mark; the resumed copy copies it once more, and nothing else."""
    job, library, etags = await _bed(s3, 30)
    copier = S3Copier(workers=4, progress_interval=3600)
    record = Recorder(crash_at=crash_at)
    with pytest.raises(Crash):
        await _copy_to_the_end(s3, copier, job, record, slice_seconds=0)
    status, _ = await _copy_to_the_end(s3, copier, job, record, slice_seconds=0)
    assert status.done
    total = await checks.check_resumed_copy(s3, job.layout, library.regular, etags)
    # the one object of the crashed slice is copied twice if it was a regular one (an excluded one is not copied)
    assert len(library.regular) <= total <= len(library.regular) + 1


async def test_a_manifest_part_written_before_a_crash_is_adopted_not_rewritten(s3: Any) -> None:
    job, library, etags = await _bed(s3, 30)
    copier = S3Copier(workers=4, progress_interval=3600)
    record = Recorder(crash_at=4, only_after_a_part=True)
    with pytest.raises(Crash):
        await _copy_to_the_end(s3, copier, job, record, slice_seconds=0)
    recorded = record.last
    assert recorded is not None and recorded.position is not None
    status, _ = await _copy_to_the_end(s3, copier, job, record, slice_seconds=0)
    # check_resumed_copy fails if the unrecorded part were written again or its lines repeated
    assert await checks.check_resumed_copy(s3, job.layout, library.regular, etags) == len(library.regular)
    assert status.position is not None and status.position.manifest_parts == len(library.regular)


async def test_control_the_resume_checks_catch_a_repeated_line_a_rewritten_part_and_a_full_recopy(s3: Any) -> None:
    """Positive control of ``check_resumed_copy`` and of the copy bound: a manifest line written twice, a part
    written again, and a copy that started over from zero, each made at the store by the test itself."""
    job, library, etags = await _bed(s3, 20)
    layout = job.layout
    await _copy_to_the_end(s3, S3Copier(workers=4, progress_interval=3600), job, Recorder(), slice_seconds=0)
    assert await checks.check_resumed_copy(s3, layout, library.regular, etags) == len(library.regular)

    for key in sorted(library.regular):  # a restart from zero: every object copied again
        await s3.copy_object(
            Bucket=layout.bucket,
            Key=layout.document_library_prefix + key,
            CopySource={"Bucket": job.spec.document_library.source_bucket, "Key": key},
        )
    assert await checks.check_resumed_copy(s3, layout, library.regular, etags) == 2 * len(library.regular)

    first = layout.manifest_part_key(1)
    await s3.copy_object(Bucket=layout.bucket, Key=first, CopySource={"Bucket": layout.bucket, "Key": first})
    with pytest.raises(AssertionError, match="manifest \\(parts\\) written more than once"):
        await checks.check_resumed_copy(s3, layout, library.regular, etags)

    body = await checks.read(s3, layout.bucket, layout.manifest_key)
    line = body.splitlines(keepends=True)[0]
    await s3.put_object(Bucket=layout.bucket, Key=layout.manifest_key, Body=body + line)
    with pytest.raises(AssertionError, match="manifest lines repeated"):
        await checks.check_resumed_copy(s3, layout, library.regular, etags)


async def test_not_found_and_changed_sources_are_errors_of_our_own_tree(s3: Any, buckets: tuple[str, str]) -> None:
    """No caller reads SDK error codes: ``translate`` names a vanished object and a changed one."""
    source, destination = buckets
    put = await s3.put_object(Bucket=source, Key="a", Body=b"one")

    async def copy(key: str, etag: str) -> None:
        await copy_server_side(
            s3, src_bucket=source, src_key=key, dst_bucket=destination, dst_key=key, size=3, etag=etag
        )

    with pytest.raises(ObjectNotFound):
        await copy("missing", put["ETag"])
    with pytest.raises(SourceChanged):
        await copy("a", '"0123456789abcdef0123456789abcdef"')
    await copy("a", put["ETag"])
    error = ClientError({"Error": {"Code": "NoSuchBucket"}}, "CopyObject")
    assert not isinstance(translate(error, "s3://nowhere/a", "nowhere"), ObjectNotFound)  # a bucket is no object
