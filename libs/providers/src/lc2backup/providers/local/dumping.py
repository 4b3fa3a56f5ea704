"""The local provider's database export: ``pg_dump`` streamed straight into the backup bucket.

Format: PostgreSQL custom format (``pg_dump -Fc``, zlib level configurable, default 1), written with a
multipart upload whose memory is two parts, never the database size. Restore with
``pg_restore --dbname=<target> <file>`` (single job: a dump streamed through a pipe has no data offsets, so
``pg_restore -j`` is not available for it).

Idempotency: the object key is derived from the backup id, and an object appears at that key only when its
multipart upload completes, which happens only after ``pg_dump`` exited 0: an object there *is* a finished
dump. Then a ``<key>.sha256`` sidecar is written (``sha256sum -c`` format). A redelivery after a crash finds
the finished dump and does not dump again: with its sidecar it is reused as is; without it (a crash between
the upload's completion and the sidecar) the dump is read back once to compute the checksum, which is then
written. The database is not read a second time.

Beside the dump, ``<databaseName>.figures.json`` holds each table's row count and row checksum
(``lc2backup.providers.local.figures``), against which a restore is checked. They are taken in a
repeatable-read transaction that exports its snapshot, and ``pg_dump --snapshot`` dumps that very snapshot:
rows written while the dump runs are in neither, so the figures describe the dump exactly. The transaction
stays open until ``pg_dump`` has exited; the figures are taken in it while ``pg_dump`` runs (neither waits for
the other) and are stored before the dump's upload completes, so a finished dump always has its figures. A dump
that is redone takes a new snapshot and writes new figures over the old; a finished dump found again is not
measured again; a dump that fails takes its figures away.

``pg_dump`` dies with db-export (``setpriv --pdeathsig KILL``, util-linux): a killed db-export leaves no
``pg_dump`` behind, which would otherwise hold its connection and locks until its next write found the pipe
closed, beside the dump another replica starts once the lease runs out.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import shutil
import time
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
from botocore.exceptions import ClientError

from lc2backup.domain.state import ExportInfo
from lc2backup.providers.base import BackupJob, ExportProgress, ExportStatus
from lc2backup.providers.errors import PermanentProviderError, TransientProviderError
from lc2backup.providers.local.figures import FIGURES_EXTENSION, close, connect, figures_failed, take_figures
from lc2backup.providers.s3 import MIB, MultipartWriter, S3Client, error_code, translate
from lc2backup.runtime.crashpoints import crash_point

log = logging.getLogger(__name__)

FORMAT = "postgresql-custom"
EXTENSION = "dump"
READ_CHUNK = 1 * MIB
DIES_WITH_US = ("setpriv", "--pdeathsig", "KILL", "--") if shutil.which("setpriv") else ()


@dataclass(frozen=True)
class DumpTarget:
    dsn: str  # without password
    password: str | None
    database: str

    @classmethod
    def parse(cls, dsn: str, database: str | None) -> DumpTarget:
        parts = urlsplit(dsn)
        if parts.scheme not in ("postgresql", "postgres"):
            raise PermanentProviderError(f"local database DSN must be postgresql://, got {parts.scheme}://")
        db = database or parts.path.lstrip("/") or "postgres"
        netloc = parts.hostname or "127.0.0.1"
        if parts.port:
            netloc = f"{netloc}:{parts.port}"
        if parts.username:
            netloc = f"{parts.username}@{netloc}"
        # A password in the query string moves out too: the clean DSN ends up in pg_dump's command line.
        query = parse_qsl(parts.query, keep_blank_values=True)
        password = parts.password or next((v for k, v in query if k == "password"), None)
        kept = urlencode([(k, v) for k, v in query if k != "password"])
        clean = urlunsplit((parts.scheme, netloc, f"/{db}", kept, ""))
        return cls(clean, password, db)


_PERMANENT_MARKERS = (
    "does not exist",
    "authentication failed",
    "permission denied",
    "no pg_hba.conf entry",
    "password authentication",
    "role ",
)


class PgDumper:
    def __init__(
        self, *, pg_dump: str = "pg_dump", compress: int = 1, part_size: int = 8 * MIB, progress_interval: float = 2.0
    ) -> None:
        self._pg_dump = pg_dump
        self._compress = compress
        self._part_size = part_size
        self._progress_interval = progress_interval

    async def server_facts(self, target: DumpTarget) -> tuple[str, int]:
        """Engine version and database size (for the progress estimate)."""
        conn = await connect(target.dsn, target.password, target.database)
        try:
            version = await conn.fetchval("SHOW server_version")
            size = await conn.fetchval("SELECT pg_database_size(current_database())")
        finally:
            await conn.close()
        return str(version).split()[0], int(size)

    async def existing(self, client: S3Client, bucket: str, key: str, backup_id: str) -> ExportStatus | None:
        """The finished dump of this backup at ``key``, or None: completing it writes its sidecar if missing."""
        try:
            head = await client.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise translate(exc, f"s3://{bucket}/{key}", bucket) from exc
        except Exception as exc:
            raise translate(exc, f"s3://{bucket}/{key}", bucket) from exc
        meta = head.get("Metadata", {})
        if meta.get("lc2-backup-id") != backup_id:
            return None  # not a dump of ours (the key is ours, so only a hand-made object): dump over it
        sha = await self._sidecar(client, bucket, key)
        if sha is None:
            log.info("dump s3://%s/%s finished without its .sha256: reading it back once", bucket, key)
            sha = await _sha256_of(client, bucket, key)
            await self._mark_complete(client, bucket, key, sha)
        return ExportStatus(
            done=True,
            size_bytes=int(head["ContentLength"]),
            sha256=sha,
            engine="postgresql",
            engine_version=meta.get("lc2-engine-version"),
        )

    @staticmethod
    async def _sidecar(client: S3Client, bucket: str, key: str) -> str | None:
        try:
            sidecar = await client.get_object(Bucket=bucket, Key=f"{key}.sha256")
            async with sidecar["Body"] as stream:
                words = (await stream.read()).decode().split()
        except ClientError as exc:
            if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise translate(exc, f"s3://{bucket}/{key}.sha256", bucket) from exc
        except Exception as exc:
            raise translate(exc, f"s3://{bucket}/{key}.sha256", bucket) from exc
        return words[0] if words else None

    async def dump(
        self, client: S3Client, job: BackupJob, ref: ExportInfo, target: DumpTarget, progress: ExportProgress
    ) -> ExportStatus:
        bucket, key = job.layout.bucket, ref.operation_id
        done = await self.existing(client, bucket, key, job.backup_id)
        if done is not None:
            log.info("dump s3://%s/%s already complete; not dumping again", bucket, key)
            return done
        version, db_size = await self.server_facts(target)
        figures_key = job.layout.database_key(target.database, FIGURES_EXTENSION)
        # pg_dump imports the snapshot this connection's transaction exports: it stays open until pg_dump exited.
        conn = await connect(target.dsn, target.password, target.database)
        figures: asyncio.Task[None] | None = None
        try:
            try:
                await conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                snapshot = str(await conn.fetchval("SELECT pg_export_snapshot()"))
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
                raise figures_failed(exc, target.database) from exc
            # the figures are taken while pg_dump runs, in the snapshot it dumps (pg_dump waits for no one of ours)
            figures = asyncio.create_task(self._figures(conn, client, bucket, figures_key, target))
            return await self._run_pg_dump(
                client, job, key, target, version, db_size, snapshot, (figures, figures_key), progress
            )
        finally:
            if figures is not None and not figures.done():
                figures.cancel()
                with contextlib.suppress(BaseException):
                    await figures
            await close(conn)

    @staticmethod
    async def _figures(conn: asyncpg.Connection, client: S3Client, bucket: str, key: str, target: DumpTarget) -> None:
        """Write the figures of the tables in ``conn``'s snapshot at ``key``."""
        try:
            figures = await take_figures(conn, target.database)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            raise figures_failed(exc, target.database) from exc
        body = figures.model_dump_json(by_alias=True).encode()
        try:
            await client.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
        except Exception as exc:
            raise translate(exc, f"s3://{bucket}/{key}", bucket) from exc

    async def _run_pg_dump(
        self,
        client: S3Client,
        job: BackupJob,
        key: str,
        target: DumpTarget,
        version: str,
        db_size: int,
        snapshot: str,
        figures: tuple[asyncio.Task[None], str],
        progress: ExportProgress,
    ) -> ExportStatus:
        """Run pg_dump in ``snapshot`` into the dump's upload; the figures (their task, their key) are written before
        the upload completes, so a finished dump always has its figures beside it."""
        taking, figures_key = figures
        bucket = job.layout.bucket
        env = {**os.environ, "PGCONNECT_TIMEOUT": "10"}
        if target.password:
            env["PGPASSWORD"] = target.password
        argv = [
            *DIES_WITH_US,
            self._pg_dump,
            "--format=custom",
            f"--compress={self._compress}",
            f"--snapshot={snapshot}",
            "--no-password",
            f"--dbname={target.dsn}",
        ]
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            limit=2 * READ_CHUNK,  # reads of up to READ_CHUNK, not 64 KiB: fewer trips through the loop (B6)
        )
        assert proc.stdout is not None and proc.stderr is not None
        stderr_task = asyncio.create_task(proc.stderr.read())
        writer = MultipartWriter(
            client,
            bucket,
            key,
            part_size=self._part_size,
            metadata={"lc2-backup-id": job.backup_id, "lc2-format": FORMAT, "lc2-engine-version": version},
        )
        last_report = time.monotonic()
        completing = False
        try:
            while chunk := await proc.stdout.read(READ_CHUNK):
                await writer.write(chunk)
                crash_point("dump:chunk")  # test-only (lc2backup.runtime.crashpoints): SIGKILL mid-dump
                if time.monotonic() - last_report >= self._progress_interval:
                    last_report = time.monotonic()
                    await progress(ExportStatus(done=False, bytes_written=writer.size, estimated_total_bytes=db_size))
            code = await proc.wait()
            stderr = (await stderr_task).decode(errors="replace").strip()
            if code != 0:
                message = f"pg_dump of {target.database} failed (exit {code}): {stderr[-500:]}"
                if any(m in stderr for m in _PERMANENT_MARKERS):
                    raise PermanentProviderError(message)
                raise TransientProviderError(message)
            await taking  # the figures are stored before the dump exists
            completing = True
            await writer.close()
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(BaseException):
                # Read stdout to its end first: wait() returns only once the pipes are closed, and a pipe that
                # filled up while we were not reading (a progress report failing slowly) is no longer read, so
                # it would never see the killed pg_dump's end: the handler hung for good (30 s NATS outage).
                async with asyncio.timeout(30):
                    await proc.stdout.read()
                    await proc.wait()
            stderr_task.cancel()
            await writer.abort()
            if not completing:  # a completion that failed may still have stored the dump: keep its figures then
                with contextlib.suppress(Exception):
                    await client.delete_object(Bucket=bucket, Key=figures_key)
            raise
        crash_point("dump:uploaded")  # test-only: the upload is complete, its .sha256 not yet written
        sha = writer.sha256.hexdigest()
        await self._mark_complete(client, bucket, key, sha)
        return ExportStatus(done=True, size_bytes=writer.size, sha256=sha, engine="postgresql", engine_version=version)

    @staticmethod
    async def _mark_complete(client: S3Client, bucket: str, key: str, sha: str) -> None:
        name = key.rsplit("/", 1)[-1]
        try:
            await client.put_object(
                Bucket=bucket, Key=f"{key}.sha256", Body=f"{sha}  {name}\n".encode(), ContentType="text/plain"
            )
        except Exception as exc:
            raise translate(exc, f"s3://{bucket}/{key}.sha256", bucket) from exc


async def _sha256_of(client: S3Client, bucket: str, key: str) -> str:
    """The SHA-256 of a stored object, read in chunks (memory: one chunk, never the object)."""
    digest = hashlib.sha256()
    try:
        body = (await client.get_object(Bucket=bucket, Key=key))["Body"]
        try:
            async for chunk in body.iter_chunks(READ_CHUNK):
                digest.update(chunk)
        finally:
            body.close()
    except Exception as exc:
        raise translate(exc, f"s3://{bucket}/{key}", bucket) from exc
    return digest.hexdigest()
