"""``pg_dump`` for the stand-ins whose managed exports write a real dump (Cloud SQL's export, Azure's LTR backup)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from pathlib import Path

from lc2backup.devstack.postgres import pg_bindir


class DumpFailed(Exception):
    """pg_dump is missing or exited non-zero; the message says why (the stand-in reports it as its API does)."""


def pg_dump_binary() -> str:
    candidate = pg_bindir() / "pg_dump"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("pg_dump")
    if found is None:
        raise DumpFailed("pg_dump not found (apt-get install postgresql-client)")
    return found


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
