"""Liferay-like data for the demo, the tests and the benchmarks.

The database gets a handful of Liferay's core tables (Company, User_, Group_, DLFolder, DLFileEntry,
DLFileVersion, JournalArticle, AssetEntry) filled with generated rows. The document library is laid out
like Liferay's S3/GCS store: ``{companyId}/{repositoryId}/{fileEntryId}/{version}`` for real files, and
generated files under ``{companyId}/0/document_thumbnail|document_preview|adaptive/...``.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Any

LIFERAY_SCHEMA = """
CREATE TABLE IF NOT EXISTS Company (companyId bigint PRIMARY KEY, webId varchar(75), mx varchar(200),
    homeURL text, active_ boolean);
CREATE TABLE IF NOT EXISTS User_ (userId bigint PRIMARY KEY, companyId bigint REFERENCES Company,
    screenName varchar(75), emailAddress varchar(254), firstName varchar(75), lastName varchar(75),
    createDate timestamp, status integer);
CREATE TABLE IF NOT EXISTS Group_ (groupId bigint PRIMARY KEY, companyId bigint REFERENCES Company,
    name text, friendlyURL varchar(255), site boolean);
CREATE TABLE IF NOT EXISTS DLFolder (folderId bigint PRIMARY KEY, groupId bigint REFERENCES Group_,
    companyId bigint, repositoryId bigint, name varchar(255), description text);
CREATE TABLE IF NOT EXISTS DLFileEntry (fileEntryId bigint PRIMARY KEY, groupId bigint, companyId bigint,
    repositoryId bigint, folderId bigint, fileName varchar(255), mimeType varchar(75), title varchar(255),
    version varchar(75), size_ bigint, createDate timestamp);
CREATE TABLE IF NOT EXISTS DLFileVersion (fileVersionId bigint PRIMARY KEY, fileEntryId bigint
    REFERENCES DLFileEntry, version varchar(75), size_ bigint, checksum varchar(75), changeLog text);
CREATE TABLE IF NOT EXISTS JournalArticle (id_ bigint PRIMARY KEY, groupId bigint, companyId bigint,
    articleId varchar(75), version double precision, title text, content text, status integer);
CREATE TABLE IF NOT EXISTS AssetEntry (entryId bigint PRIMARY KEY, groupId bigint, companyId bigint,
    classNameId bigint, classPK bigint, title text, viewCount integer);
"""

LIFERAY_DATA = """
INSERT INTO Company SELECT 20100 + g, 'liferay' || g || '.com', 'mail.liferay' || g || '.com',
    'https://liferay' || g || '.com', true FROM generate_series(1, {companies}) g ON CONFLICT DO NOTHING;
INSERT INTO Group_ SELECT 30000 + g, 20101 + (g % {companies}), 'Site ' || g, '/site-' || g, true
    FROM generate_series(1, {groups}) g ON CONFLICT DO NOTHING;
INSERT INTO User_ SELECT 40000 + g, 20101 + (g % {companies}), 'user' || g, 'user' || g || '@liferay.com',
    'First' || g, 'Last' || g, now() - (g || ' minutes')::interval, 0 FROM generate_series(1, {users}) g
    ON CONFLICT DO NOTHING;
INSERT INTO DLFolder SELECT 50000 + g, 30001 + (g % {groups}), 20101 + (g % {companies}), 30001 + (g % {groups}),
    'Folder ' || g, md5(g::text) FROM generate_series(1, {folders}) g ON CONFLICT DO NOTHING;
INSERT INTO DLFileEntry SELECT 60000 + g, 30001 + (g % {groups}), 20101 + (g % {companies}),
    30001 + (g % {groups}), 50001 + (g % {folders}), 'file-' || g || '.pdf', 'application/pdf',
    'Document ' || g, '1.0', 4096 + g, now() FROM generate_series(1, {files}) g ON CONFLICT DO NOTHING;
INSERT INTO DLFileVersion SELECT 70000 + g, 60000 + g, '1.0', 4096 + g, md5(g::text), 'initial'
    FROM generate_series(1, {files}) g ON CONFLICT DO NOTHING;
INSERT INTO JournalArticle SELECT 80000 + g, 30001 + (g % {groups}), 20101 + (g % {companies}), 'ART-' || g, 1.0,
    'Article ' || g, repeat(md5(g::text), 24), 0 FROM generate_series(1, {articles}) g ON CONFLICT DO NOTHING;
INSERT INTO AssetEntry SELECT 90000 + g, 30001 + (g % {groups}), 20101 + (g % {companies}), 20011, 60000 + g,
    'Asset ' || g, g % 100 FROM generate_series(1, {files}) g ON CONFLICT DO NOTHING;
"""


def liferay_database_sql(scale: int = 1) -> str:
    """SQL creating and filling the tables; scale 1 is a few MB (the demo), scale 100 a few hundred MB."""
    sizes = {
        "companies": 2,
        "groups": 20 * scale,
        "users": 2000 * scale,
        "folders": 200 * scale,
        "files": 5000 * scale,
        "articles": 3000 * scale,
    }
    return LIFERAY_SCHEMA + LIFERAY_DATA.format(**sizes)


LIFERAY_TABLES = (
    "company",
    "user_",
    "group_",
    "dlfolder",
    "dlfileentry",
    "dlfileversion",
    "journalarticle",
    "assetentry",
)


@dataclass
class DocumentLibraryLayout:
    """What ``seed_document_library`` wrote: keys relative to the prefix, split by kind."""

    regular: dict[str, int] = field(default_factory=dict)  # key -> size
    generated: dict[str, int] = field(default_factory=dict)

    @property
    def total_objects(self) -> int:
        return len(self.regular) + len(self.generated)


def plan_document_library(
    files: int = 200,
    *,
    companies: tuple[int, ...] = (20101, 20102),
    generated_share: float = 0.2,
    large_every: int = 0,
    large_size: int = 2 * 1024 * 1024,
    seed: int = 7,
) -> DocumentLibraryLayout:
    """Keys and sizes of a Liferay store: ``files`` objects, ``generated_share`` of them generated files."""
    rng = random.Random(seed)
    layout = DocumentLibraryLayout()
    n_generated = int(files * generated_share)
    for i in range(files - n_generated):
        cid = companies[i % len(companies)]
        repo = 30001 + i % 20
        size = large_size if large_every and i % large_every == 0 else rng.randint(4 * 1024, 64 * 1024)
        layout.regular[f"{cid}/{repo}/{60000 + i}/1.{i % 3}"] = size
    folders = ("document_thumbnail", "document_preview", "adaptive")
    for i in range(n_generated):
        cid = companies[i % len(companies)]
        folder = folders[i % 3]
        if folder == "adaptive":
            key = f"{cid}/0/adaptive/a1b2c3d4-config/{30001 + i % 20}/{30001 + i % 20}/{60000 + i}/{70000 + i}/"
            key += "rendition.jpg"
        else:
            key = f"{cid}/0/{folder}/{30001 + i % 20}/{i // 100}/{60000 + i}/{70000 + i}.png"
        layout.generated[key] = rng.randint(2 * 1024, 16 * 1024)
    return layout


async def seed_document_library(
    client: Any,
    bucket: str,
    prefix: str = "",
    layout: DocumentLibraryLayout | None = None,
    concurrency: int = 32,
) -> DocumentLibraryLayout:
    """Upload ``layout`` (default: ``plan_document_library()``) with pseudo-random bytes."""
    layout = layout or plan_document_library()
    rng = random.Random(11)
    pool = rng.randbytes(8 * 1024 * 1024)
    items = [*layout.regular.items(), *layout.generated.items()]
    queue: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)

    async def worker() -> None:
        while not queue.empty():
            key, size = queue.get_nowait()
            start = rng.randrange(0, max(len(pool) - size, 1))
            body = pool[start : start + size] if size <= len(pool) else (pool * (size // len(pool) + 1))[:size]
            await client.put_object(Bucket=bucket, Key=f"{prefix}{key}", Body=body)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return layout
