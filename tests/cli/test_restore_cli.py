"""The restore commands of the CLI: ``restore``, ``verify``, ``restorable``, ``restores`` and ``get-restore``.

One backup serves the whole story against the six services as real processes (a system start and a backup
cost ~10 s each): a restore into new targets, one onto the live source database without confirmation, a
verification, then the last proven restorable point and the list. The oracles read the database with psql
and the projection API's JSON, not the CLI's own rendering code.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from lc2backup.devstack import free_port
from lc2backup.devstack.seeding import LIFERAY_TABLES
from tests.cli.helpers import lc2
from tests.restore.helpers import backed_up
from tests.support import ALL_SERVICES, System, row_counts

RESTORE_ID = re.compile(r"restore id\s+([0-9a-f-]{36})")


@pytest.fixture
def system_services() -> tuple[str, ...]:
    """The restorer too (tests/conftest.py starts only a backup's services)."""
    return ALL_SERVICES


def restore_id_in(output: str) -> str:
    found = RESTORE_ID.search(output)
    assert found, f"no restore id in:\n{output}"
    return found.group(1)


@pytest.mark.e2e
@pytest.mark.restore
async def test_restore_verify_and_the_last_restorable_backup_through_the_cli(
    system: System, s3: Any, buckets: tuple[str, str], unique: str
) -> None:
    backup_id, layout = await backed_up(system, s3, buckets, files=20)
    api = ("--api", system.api)
    nothing = lc2("restorable", "-p", "retail", "-e", "dev", *api)
    assert nothing.exit_code == 0 and "no backup verified yet" in nothing.stdout, nothing.output

    # into new targets: a database and a bucket of its own, in qa (the project is the backup's)
    target_bucket, database = f"tgt-{unique}", f"qa_{unique}"
    await s3.create_bucket(Bucket=target_bucket)
    request = ["--from", backup_id, "-e", "qa", "--database-name", database, "--bucket", target_bucket]
    request += ["--prefix", "liferay", "--idempotency-key", f"qa-{unique}", *api]
    restored = lc2("restore", *request, "--watch", "--timeout", "120")
    assert restored.exit_code == 0, restored.output + system.logs()
    restore_id = restore_id_in(restored.stdout)
    assert f"restore of backup {backup_id} into retail/qa requested" in restored.stdout
    assert "Succeeded" in restored.stdout
    assert f"document library Completed: {len(layout.regular)} objects" in restored.stdout  # the last progress
    assert f"{len(layout.regular)} objects" in restored.stdout.splitlines()[-1]
    assert row_counts(system.stack, database) == row_counts(system.stack, system.source_database)
    again = lc2("restore", *request, "-q")
    assert again.exit_code == 0 and again.stdout == f"{restore_id}\n"  # the same key names the same restore

    shown = lc2("get-restore", restore_id, *api)
    assert shown.exit_code == 0, shown.output
    for text in (restore_id, backup_id, "Succeeded", "retail/dev", "retail/qa", database, f"{target_bucket}/liferay/"):
        assert text in shown.stdout

    # onto the live source database, unconfirmed: Rejected, every problem with its field and option
    refused = lc2("restore", "--from", backup_id, "--database-name", system.source_database, "--watch", *api)
    assert refused.exit_code == 1, refused.output + system.logs()
    refused_id = restore_id_in(refused.stdout)
    assert "Rejected" in refused.stderr
    assert "spec.database.databaseName (--database-name)" in refused.stderr
    assert "replacing it needs overwrite.confirm" in refused.stderr and "--overwrite-confirm" in refused.stderr
    assert "overwrite.confirm" in lc2("get-restore", refused_id, *api).stdout

    verified = lc2("verify", backup_id, "--watch", "--timeout", "120", *api)
    assert verified.exit_code == 0, verified.output + system.logs()
    verification_id = restore_id_in(verified.stdout)
    doc = json.loads(lc2("get-restore", verification_id, "--json", *api).stdout)
    verdict = doc["status"]["verification"]
    summary = verdict["summary"]
    assert summary["objects"] == len(layout.regular) and summary["tables"] >= len(LIFERAY_TABLES), verdict
    assert "Verification  Passed" in verified.stdout and "Succeeded" in verified.stdout
    assert f"{summary['tables']} tables, {summary['rows']} rows; {summary['objects']} objects" in verified.stdout
    assert f"{summary['objectsSampled']} sampled" in verified.stdout and "scratch removed" in verified.stdout
    assert verdict["checks"] and all(check in verified.stdout for check in verdict["checks"])

    proven = lc2("restorable", "-p", "retail", "-e", "dev", *api)
    assert proven.exit_code == 0 and backup_id in proven.stdout and verification_id in proven.stdout
    assert lc2("restorable", "-p", "retail", "-e", "dev", "-q", *api).stdout == f"{backup_id}\n"

    listed = lc2("restores", "--backup", backup_id, *api)
    assert listed.exit_code == 0, listed.output
    assert all(i in listed.stdout for i in (restore_id, refused_id, verification_id))
    assert "verification" in listed.stdout and "Rejected" in listed.stdout and "retail/qa" in listed.stdout
    assert lc2("restores", "-q", *api).stdout.split() == [verification_id, refused_id, restore_id]


def test_an_invalid_restore_request_names_each_option_and_sends_nothing() -> None:
    """Nothing listens at the API's URL: exit 2 with the problems, not 1 "cannot reach", proves nothing was sent."""
    nowhere = f"http://127.0.0.1:{free_port()}"
    result = lc2("restore", "--from", "not-a-backup", "--database-name", "9 lives", "--api", nowhere)
    assert result.exit_code == 2, result.output
    assert "nothing was sent" in result.stderr
    assert "spec.backupId (--from)" in result.stderr
    assert "spec.database.databaseName (--database-name)" in result.stderr
