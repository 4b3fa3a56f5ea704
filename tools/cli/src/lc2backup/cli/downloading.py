"""``lc2backup download BACKUP_ID DIR``: copy a backup's artefacts from the backup bucket to a local folder.

The first step of a restore. The backup's folder (``<destinationBucket>/<destinationPrefix><backupId>/``,
from the projection API) is mirrored below DIR with the bucket's layout: ``database/<db>.dump`` and its
``.sha256`` (so ``sha256sum -c`` runs in ``DIR/database``), ``documentlibrary/…``, the manifest and
``metadata.json``. ``--only`` limits it to one part. The object store is the one the services use:
``LC2_S3__*`` from the environment, else the running ``make up`` stack's, else the standard AWS chain.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from lc2backup.cli.client import ProjectionApi
from lc2backup.cli.devstate import default_state_dir, read_state
from lc2backup.cli.errors import CliError, InvalidInput, handle_errors
from lc2backup.cli.locating import api_url
from lc2backup.cli.options import ApiOption
from lc2backup.cli.rendering import human_bytes, make_console
from lc2backup.domain import unsafe_key_reason

CHUNK = 1024 * 1024
PARALLEL = 16


class Part(StrEnum):
    database = "database"
    documentlibrary = "documentlibrary"
    metadata = "metadata"


@dataclass(frozen=True)
class ObjectStore:
    """Where the CLI reads artefacts: an S3 API endpoint (None: AWS) and keys (None: the AWS chain)."""

    endpoint_url: str | None
    region: str | None
    access_key_id: str | None
    secret_access_key: str | None


def object_store() -> ObjectStore:
    """``LC2_S3__*`` from the environment, else the running local stack's (``.lc2/stack.json``)."""
    env: dict[str, str] = dict(os.environ)
    if not env.get("LC2_S3__ENDPOINT_URL"):
        state = read_state(default_state_dir())
        if state is not None and state.alive:
            env = {**state.env, **{k: v for k, v in env.items() if k.startswith("LC2_S3__") and v}}
    return ObjectStore(
        env.get("LC2_S3__ENDPOINT_URL") or None,
        env.get("LC2_S3__REGION") or None,
        env.get("LC2_S3__ACCESS_KEY_ID") or None,
        env.get("LC2_S3__SECRET_ACCESS_KEY") or None,
    )


def backup_root(doc: dict[str, Any]) -> tuple[str, str]:
    """(bucket, key prefix) of the backup's folder, from its spec as the projection records it."""
    dl = ((doc.get("status") or {}).get("spec") or {}).get("documentLibrary") or {}
    bucket = dl.get("destinationBucket")
    if not bucket:
        raise CliError(f"backup {doc.get('backupId')} records no destination bucket (state {doc.get('state')})")
    prefix = dl.get("destinationPrefix") or ""
    return bucket, f"{prefix}{doc['backupId']}/"


def _selected(relative: str, only: Part | None) -> bool:
    if only is None:
        return True
    if only is Part.metadata:
        return relative == "metadata.json"
    if only is Part.documentlibrary:
        return relative.startswith("documentlibrary/") or relative == "documentlibrary.manifest.jsonl"
    return relative.startswith(f"{only.value}/")


async def _download(store: ObjectStore, bucket: str, root: str, target: Path, only: Part | None) -> tuple[int, int]:
    import aioboto3  # here, not at the top: it takes a second to import and only this command needs it

    session = aioboto3.Session()
    async with session.client(
        "s3",
        endpoint_url=store.endpoint_url,
        region_name=store.region,
        aws_access_key_id=store.access_key_id,
        aws_secret_access_key=store.secret_access_key,
    ) as s3:
        keys: list[tuple[str, int]] = []
        async for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=root):
            for obj in page.get("Contents", []):
                relative = obj["Key"][len(root) :]
                if not _selected(relative, only):
                    continue
                unsafe = unsafe_key_reason(relative)
                if unsafe is not None:  # a key must never write outside DIR
                    raise CliError(f"refusing to download {obj['Key']!r}: {unsafe}")
                keys.append((obj["Key"], int(obj["Size"])))
        gate = asyncio.Semaphore(PARALLEL)

        async def fetch(key: str) -> None:
            path = target / key[len(root) :]
            path.parent.mkdir(parents=True, exist_ok=True)
            async with gate:
                body = (await s3.get_object(Bucket=bucket, Key=key))["Body"]
                try:
                    with path.open("wb") as out:
                        async for chunk in body.iter_chunks(CHUNK):
                            out.write(chunk)
                finally:
                    body.close()

        await asyncio.gather(*(fetch(key) for key, _ in keys))
    return len(keys), sum(size for _, size in keys)


@handle_errors
def download(
    backup_id: Annotated[str, typer.Argument(help="The backup id")],
    directory: Annotated[Path, typer.Argument(help="Where to write the artefacts (created if missing)")],
    only: Annotated[Part | None, typer.Option("--only", help="Only this part of the backup")] = None,
    api: ApiOption = None,
) -> None:
    """Download a backup's artefacts (database dump and checksum, document library, metadata) into DIR."""
    console = make_console()
    with ProjectionApi(api_url(api)) as client:
        doc = client.get(backup_id)
    bucket, root = backup_root(doc)
    if directory.exists() and not directory.is_dir():
        raise InvalidInput(f"{directory} exists and is not a directory")
    directory.mkdir(parents=True, exist_ok=True)
    store = object_store()
    try:
        count, size = asyncio.run(_download(store, bucket, root, directory, only))
    except CliError:
        raise
    except Exception as exc:  # botocore's and aiohttp's errors: one message, the cause chained
        raise CliError(
            f"cannot download s3://{bucket}/{root}: {exc}",
            hint="the object store comes from LC2_S3__ENDPOINT_URL and its keys, else the running `make up` stack",
        ) from exc
    if count == 0:
        what = f" ({only.value})" if only else ""
        raise CliError(f"no artefacts{what} under s3://{bucket}/{root} (backup state {doc.get('state')})")
    console.print(f"{count} objects, {human_bytes(size)} from s3://{bucket}/{root} in {directory}", highlight=False)
