"""The local provider's restore: the dump streamed from the backup bucket into ``pg_restore``, objects copied back
server-side, a scratch restore verified against the figures taken inside the dump's snapshot.

Memory is bounded by one read chunk (the dump) and one manifest (the objects: a line per object, as the backup
wrote it). Idempotency under the restore id:

* the dump is restored into a staging database named after the restore (``<name>_lc2new_<id8>``); only a
  complete restore takes the target's name, by a rename in one transaction with the marker comment
  ``lc2-restore <id> complete``. A restart that finds the staging database drops it and restores again (its name
  says it is ours: no window between creating it and marking it); one that finds the target complete does
  nothing. A database neither named nor marked as this restore's is never dropped or written.
* with ``overwrite``, the same transaction renames the live database to ``<name>_lc2old_<id8>`` (kept, never
  deleted) before the restored one takes its name.
* objects already in the target with the manifest's size and ETag are not copied again.

The dump's SHA-256 is computed while it streams and compared with the one recorded at backup time: a dump that
changed after the backup fails the branch naming it, even where ``pg_restore`` happened to read it to its end.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import time
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from botocore.exceptions import ClientError

from lc2backup.domain.events import VerificationSummary
from lc2backup.domain.figures import DatabaseFigures, compare_figures
from lc2backup.domain.metadata import MetadataDocument
from lc2backup.domain.restoring import DatabasePlan, DocumentLibraryPlan, RestorePlan
from lc2backup.providers.errors import ObjectNotFound, PermanentProviderError, TransientProviderError
from lc2backup.providers.local.dumping import DIES_WITH_US, READ_CHUNK, DumpTarget
from lc2backup.providers.local.figures import figures_of
from lc2backup.providers.restore_checks import ArtefactCheck
from lc2backup.providers.restoring import LibraryRestored, Progress, Verdict
from lc2backup.providers.s3 import S3Client, error_code, translate
from lc2backup.providers.s3restore import S3Library, split_location
from lc2backup.runtime.crashpoints import crash_point

log = logging.getLogger(__name__)

MARKER = "lc2-restore {restore_id}"
COMPLETE = "lc2-restore {restore_id} complete"
SMOKE_TABLES = ("company", "user_", "dlfileentry")  # Liferay's own: a restored portal has rows in each


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _suffix(restore_id: str) -> str:
    return restore_id.replace("-", "")[:8]


def staging_name(database: str, restore_id: str) -> str:
    """Where the dump is restored first: named after the restore, so a restart knows it for its own."""
    return f"{database[:40]}_lc2new_{_suffix(restore_id)}"


class LocalRestorer:
    name = "local"
    restores = frozenset({"export"})

    def __init__(
        self,
        client: S3Client,
        databases: dict[str, str],
        *,
        pg_restore: str = "pg_restore",
        copy_workers: int = 32,
        progress_interval: float = 2.0,
    ) -> None:
        self._client = client
        self._library = S3Library(client, copy_workers=copy_workers, progress_interval=progress_interval)
        self._databases = databases
        self._pg_restore = pg_restore
        self._interval = progress_interval

    # targets

    def _server(self, instance: str) -> DumpTarget:
        dsn = self._databases.get(instance)
        if dsn is None:
            known = ", ".join(sorted(self._databases)) or "none"
            raise PermanentProviderError(
                f"database instance {instance!r} is not configured for the local provider (configured: {known};"
                " set LC2_LOCAL__DATABASES)"
            )
        return DumpTarget.parse(dsn, None)

    def _target(self, instance: str, database: str) -> DumpTarget:
        server = self._server(instance)
        parts = urlsplit(server.dsn)
        return DumpTarget(
            urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, "")), server.password, database
        )

    @contextlib.asynccontextmanager
    async def _admin(self, instance: str):  # type: ignore[no-untyped-def]
        server = self._server(instance)
        try:
            conn = await asyncpg.connect(server.dsn, password=server.password, timeout=10)
        except (TimeoutError, OSError) as exc:
            raise TransientProviderError(f"database instance {instance} unreachable: {type(exc).__name__}") from exc
        except asyncpg.PostgresError as exc:
            raise PermanentProviderError(f"database instance {instance}: {exc}") from exc
        try:
            yield conn
        finally:
            await conn.close()

    @staticmethod
    async def _marker(conn: asyncpg.Connection, database: str) -> tuple[bool, str | None]:
        row = await conn.fetchrow(
            "SELECT shobj_description(oid, 'pg_database') AS note FROM pg_database WHERE datname = $1", database
        )
        return (row is not None, row["note"] if row is not None else None)

    # validation

    async def validate(self, restore_id: str, plan: RestorePlan) -> tuple[list[str], list[str]]:
        problems: list[str] = []
        checks: list[str] = []
        if plan.metadata_location:
            await self._library.check_metadata(plan, self._lists_the_dump(plan), problems, checks)
        if plan.database is not None:
            await self._check_database(restore_id, plan.database, problems, checks)
        if plan.document_library is not None:
            await self._library.check_target(plan.document_library, problems, checks)
        return problems, checks

    @staticmethod
    def _lists_the_dump(plan: RestorePlan) -> ArtefactCheck:
        def check(doc: MetadataDocument) -> str | None:
            assert plan.database is not None
            export = doc.database.export
            if export is None or export.location != plan.database.artefact:
                return f"does not list the dump {plan.database.artefact} the log recorded"
            if export.sha256 != plan.database.sha256:
                return f"records sha256 {export.sha256} for the dump, the log {plan.database.sha256}"
            return None

        return check

    async def _check_database(
        self, restore_id: str, plan: DatabasePlan, problems: list[str], checks: list[str]
    ) -> None:
        bucket, key = split_location(plan.artefact)
        try:
            head = await self._client.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                problems.append(f"dump {plan.artefact} is missing")
                return
            raise translate(exc, plan.artefact, bucket) from exc
        if plan.size_bytes is not None and int(head["ContentLength"]) != plan.size_bytes:
            problems.append(f"dump {plan.artefact} is {head['ContentLength']} bytes, {plan.size_bytes} at backup time")
        target = f"{plan.target_instance}/{plan.target_database}"
        async with self._admin(plan.target_instance) as conn:
            exists, note = await self._marker(conn, plan.target_database)
        ours = note is not None and note.startswith(MARKER.format(restore_id=restore_id))
        if exists and not ours and not plan.overwrite:
            problems.append(
                f"database {target} already exists: restore into a new database, or replace it with"
                f" overwrite.confirm: {target}"
            )
        elif not problems:
            checks.append(f"database {target} is {'ours' if ours else 'confirmed' if exists else 'new'}")

    # the database branch

    async def restore_database(self, restore_id: str, plan: DatabasePlan, progress: Progress) -> int:
        marker, complete = MARKER.format(restore_id=restore_id), COMPLETE.format(restore_id=restore_id)
        name, staging = plan.target_database, staging_name(plan.target_database, restore_id)
        async with self._admin(plan.target_instance) as conn:
            _, note = await self._marker(conn, name)
            if note == complete:
                log.info("database %s/%s already restored by %s", plan.target_instance, name, restore_id)
                return plan.size_bytes or 0
            exists, _ = await self._marker(conn, staging)
            if exists:  # named after this restore: ours, from a restore that stopped part-way
                log.info("dropping the incomplete database %s of restore %s", staging, restore_id)
                await conn.execute(f"DROP DATABASE {_quote(staging)} WITH (FORCE)")
            await conn.execute(f"CREATE DATABASE {_quote(staging)} TEMPLATE template0")
            await conn.execute(f"COMMENT ON DATABASE {_quote(staging)} IS '{marker}'")
        crash_point("restore:database-created")  # test-only (lc2backup.runtime.crashpoints)
        read = await self._pg_restore_from(plan, self._target(plan.target_instance, staging), progress)
        async with self._admin(plan.target_instance) as conn, conn.transaction():
            exists, _ = await self._marker(conn, name)
            if exists and not plan.overwrite:
                raise PermanentProviderError(
                    f"database {plan.target_instance}/{name} was created while the restore ran: the restored"
                    f" database is left as {staging}"
                )
            if exists:
                kept = f"{name[:40]}_lc2old_{_suffix(restore_id)}"
                await conn.execute(f"ALTER DATABASE {_quote(name)} RENAME TO {_quote(kept)}")
            await conn.execute(f"ALTER DATABASE {_quote(staging)} RENAME TO {_quote(name)}")
            await conn.execute(f"COMMENT ON DATABASE {_quote(name)} IS '{complete}'")
        return read

    async def _pg_restore_from(self, plan: DatabasePlan, target: DumpTarget, progress: Progress) -> int:
        bucket, key = split_location(plan.artefact)
        env = {**os.environ, "PGCONNECT_TIMEOUT": "10"}
        if target.password:
            env["PGPASSWORD"] = target.password
        argv = [
            *DIES_WITH_US,
            self._pg_restore,
            "--exit-on-error",
            "--no-owner",
            "--no-privileges",
            "--no-password",
            f"--dbname={target.dsn}",
        ]
        try:
            body = (await self._client.get_object(Bucket=bucket, Key=key))["Body"]
        except Exception as exc:
            raise translate(exc, plan.artefact, bucket) from exc
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        assert proc.stdin is not None and proc.stderr is not None
        stderr_task = asyncio.create_task(proc.stderr.read())
        digest = hashlib.sha256()
        read, last = 0, time.monotonic()
        try:
            try:
                async for chunk in body.iter_chunks(READ_CHUNK):
                    digest.update(chunk)
                    read += len(chunk)
                    proc.stdin.write(chunk)
                    await proc.stdin.drain()
                    crash_point("restore:chunk")
                    if time.monotonic() - last >= self._interval:
                        last = time.monotonic()
                        await progress(read, read)
            except (BrokenPipeError, ConnectionResetError):
                pass  # pg_restore stopped reading: its exit code and stderr say why
            except Exception as exc:
                if isinstance(exc, (TransientProviderError, PermanentProviderError)):
                    raise
                raise translate(exc, plan.artefact, bucket) from exc
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                proc.stdin.close()
            code = await proc.wait()
            stderr = (await stderr_task).decode(errors="replace").strip()
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            stderr_task.cancel()
            with contextlib.suppress(BaseException):
                async with asyncio.timeout(10):
                    await proc.wait()
            raise
        finally:
            body.close()
        where = f"{plan.target_instance}/{target.database}"
        if code != 0:
            message = f"pg_restore of {plan.artefact} into {where} failed (exit {code}): {stderr[-500:]}"
            if "could not connect" in stderr or "Connection refused" in stderr:
                raise TransientProviderError(message)
            raise PermanentProviderError(message)
        actual = digest.hexdigest()
        if plan.sha256 is not None and actual != plan.sha256:
            raise PermanentProviderError(
                f"dump {plan.artefact} is corrupt: its sha256 is {actual}, {plan.sha256} at backup time"
                f" (the restored database {where} is left for inspection)"
            )
        return read

    # the document-library branch

    async def restore_document_library(
        self, restore_id: str, plan: DocumentLibraryPlan, progress: Progress
    ) -> LibraryRestored:
        return await self._library.restore(plan, progress)

    # verification

    async def verify(self, restore_id: str, plan: RestorePlan) -> Verdict:
        findings: list[str] = []
        checks: list[str] = []
        summary = VerificationSummary()
        if plan.database is not None:
            summary = await self._verify_database(plan.database, summary, findings, checks)
        if plan.document_library is not None:
            summary = await self._library.verify(plan.document_library, summary, findings, checks)
        return Verdict(summary, findings, checks)

    async def _verify_database(
        self, plan: DatabasePlan, summary: VerificationSummary, findings: list[str], checks: list[str]
    ) -> VerificationSummary:
        target = self._target(plan.target_instance, plan.target_database)
        try:
            actual = await figures_of(target.dsn, target.password, target.database)
        except (OSError, asyncpg.PostgresError) as exc:
            findings.append(f"database {plan.target_instance}/{plan.target_database} cannot be read: {exc}")
            return summary
        expected: DatabaseFigures | None = None
        if plan.figures is not None:
            bucket, key = split_location(plan.figures)
            try:
                expected = DatabaseFigures.model_validate_json(await self._library.read(bucket, key))
            except ObjectNotFound:
                checks.append(f"no figures at {plan.figures} (a backup made before they were recorded)")
        rows = sum(table.rows for table in actual.tables)
        if expected is not None:
            found = compare_figures(expected, actual)
            findings += found
            if not found:
                checks.append(
                    f"{len(actual.tables)} tables, {rows} rows: counts and row checksums equal the backup's figures"
                )
        counted = actual.by_table()
        for table in SMOKE_TABLES:
            figure = counted.get(f"public.{table}")
            if figure is None:
                findings.append(f"Liferay table {table} is missing from the restored database")
            elif figure.rows == 0:
                findings.append(f"Liferay table {table} is empty in the restored database")
            else:
                checks.append(f"Liferay table {table}: {figure.rows} rows")
        return summary.model_copy(update={"tables": len(actual.tables), "rows": rows})

    async def write_verdict(self, restore_id: str, plan: RestorePlan, body: bytes) -> str:
        return await self._library.write_verdict(restore_id, plan, body)

    async def remove_scratch(self, restore_id: str, plan: RestorePlan) -> list[str]:
        removed: list[str] = []
        database = plan.database
        if database is not None:
            async with self._admin(database.target_instance) as conn:
                for name in (database.target_database, staging_name(database.target_database, restore_id)):
                    exists, note = await self._marker(conn, name)
                    if exists and note is not None and note.startswith(MARKER.format(restore_id=restore_id)):
                        await conn.execute(f"DROP DATABASE {_quote(name)} WITH (FORCE)")
                        removed.append(f"database {database.target_instance}/{name}")
        if plan.document_library is not None:
            removed.append(await self._library.remove(plan.document_library))
        return removed
