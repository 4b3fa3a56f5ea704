"""``pg_dump`` for the stand-ins whose managed exports write a real dump (Cloud SQL's export, Azure's LTR backup),
a real copy of a database for those whose managed restores make a new server (Azure's point-in-time restore), and
``psql`` for those that load a plain dump or manage databases (Cloud SQL's import, its databases)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import urllib.parse
from pathlib import Path

from lc2backup.devstack.postgres import pg_bindir


class DumpFailed(Exception):
    """pg_dump is missing or exited non-zero; the message says why (the stand-in reports it as its API does)."""


def pg_binary(name: str) -> str:
    candidate = pg_bindir() / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise DumpFailed(f"{name} not found (apt-get install postgresql-client)")
    return found


def pg_dump_binary() -> str:
    return pg_binary("pg_dump")


async def pg_dump_bytes(dsn: str, fmt: str, workdir: Path) -> bytes:
    """``pg_dump --format=<fmt> --no-owner --no-privileges`` of ``dsn``, spooled through a file in ``workdir``;
    killed if the caller is cancelled."""
    argv = [pg_dump_binary(), f"--format={fmt}", "--no-owner", "--no-privileges", "--dbname", dsn]
    workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=workdir) as out:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=asyncio.subprocess.PIPE
        )
        try:
            _, stderr = await proc.communicate()
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise
        if proc.returncode != 0:
            raise DumpFailed(f"pg_dump: {stderr.decode(errors='replace').strip()}")
        out.seek(0)
        return out.read()


def with_database(dsn: str, database: str) -> str:
    """``dsn`` naming ``database`` instead (same server, user and options)."""
    parts = urllib.parse.urlsplit(dsn)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, "/" + urllib.parse.quote(database), parts.query, ""))


async def _run(argv: list[str], stdin: bytes | None = None) -> bytes:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await proc.communicate(stdin)
    except asyncio.CancelledError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise
    if proc.returncode != 0:
        raise DumpFailed(f"{Path(argv[0]).name}: {stderr.decode(errors='replace').strip()}")
    return stdout


async def psql(dsn: str, *statements: str, script: bytes | None = None) -> str:
    """``psql`` stopping at the first error: ``statements`` (each its own transaction: CREATE/DROP DATABASE cannot
    run inside one) or a SQL ``script`` on stdin (a plain dump, as Cloud SQL's import loads it); the output, tuples
    only and unaligned."""
    argv = [pg_binary("psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "--dbname", dsn]
    for statement in statements:
        argv += ["-c", statement]
    return (await _run(argv, stdin=script)).decode(errors="replace")


def quoted(name: str) -> str:
    """A SQL identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'


async def copy_database(source_dsn: str, name: str, workdir: Path) -> str:
    """A new database ``name`` on the source's server holding what ``source_dsn`` holds now (``pg_dump`` piped
    into ``pg_restore``), replacing one of that name; its DSN."""
    dump = await pg_dump_bytes(source_dsn, "custom", workdir)
    admin = with_database(source_dsn, "postgres")
    await psql(admin, f"DROP DATABASE IF EXISTS {quoted(name)} WITH (FORCE)", f"CREATE DATABASE {quoted(name)}")
    target = with_database(source_dsn, name)
    argv = [pg_binary("pg_restore"), "--exit-on-error", "--no-owner", "--no-privileges", "--dbname", target]
    await _run(argv, stdin=dump)
    return target


async def drop_database(dsn: str) -> None:
    """Drop the database ``dsn`` names, if it exists (connections to it are ended)."""
    name = urllib.parse.unquote(urllib.parse.urlsplit(dsn).path.lstrip("/"))
    await psql(with_database(dsn, "postgres"), f"DROP DATABASE IF EXISTS {quoted(name)} WITH (FORCE)")
