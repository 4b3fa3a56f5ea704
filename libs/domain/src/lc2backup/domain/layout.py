"""Where a backup's artefacts go: everything under ``<destinationBucket>/<destinationPrefix><backupId>/``.

```
<destinationPrefix><backupId>/
  database/<databaseName>.<ext>         the dump / export (or the export's folder on AWS/GCP)
  database/<databaseName>.figures.json  rows and row checksum per table, of the snapshot dumped (local only)
  documentlibrary/<key relative to sourcePrefix>
  documentlibrary.manifest.jsonl        one JSON line per copied object: key, size, etag
  documentlibrary.manifest.parts/<n>.jsonl  the same lines in the parts written as the copy went (n = 000001…)
  metadata.json                         written once, last
```
"""

from __future__ import annotations

from dataclasses import dataclass

from lc2backup.domain.spec import BackupRequestSpec

SCHEMES = {"aws": "s3", "local": "s3", "gcp": "gs", "azure": "https"}
AZURE_BLOB_HOST = "{account}.blob.core.windows.net"


def location(scheme: str, bucket: str, key: str = "", account: str | None = None) -> str:
    """The real address of ``key`` in ``bucket``: ``s3://bucket/key``, ``gs://bucket/key``, or on Azure, where
    the bucket is a container of a storage account, ``https://<account>.blob.core.windows.net/<container>/key``."""
    if scheme == "https":
        if not account:
            raise ValueError(f"an Azure location needs the storage account of container {bucket!r}")
        return f"https://{AZURE_BLOB_HOST.format(account=account)}/{bucket}/{key}"
    return f"{scheme}://{bucket}/{key}"


@dataclass(frozen=True)
class BackupLayout:
    """``bucket`` is the S3/GCS bucket or the Azure container; ``account`` the Azure storage account holding it."""

    bucket: str
    root: str
    scheme: str = "s3"
    account: str | None = None

    @classmethod
    def of(cls, spec: BackupRequestSpec, backup_id: str) -> BackupLayout:
        dl = spec.document_library
        root = f"{dl.destination_prefix}{backup_id}/"
        return cls(dl.destination_bucket, root, SCHEMES[spec.provider], dl.storage_account)

    def database_key(self, database: str, extension: str) -> str:
        return f"{self.root}database/{database}.{extension}"

    @property
    def database_prefix(self) -> str:
        return f"{self.root}database/"

    @property
    def document_library_prefix(self) -> str:
        return f"{self.root}documentlibrary/"

    @property
    def manifest_key(self) -> str:
        return f"{self.root}documentlibrary.manifest.jsonl"

    @property
    def manifest_parts_prefix(self) -> str:
        return f"{self.root}documentlibrary.manifest.parts/"

    def manifest_part_key(self, number: int) -> str:
        return f"{self.manifest_parts_prefix}{number:06d}.jsonl"

    @property
    def metadata_key(self) -> str:
        return f"{self.root}metadata.json"

    def uri(self, key: str) -> str:
        return location(self.scheme, self.bucket, key, self.account)


def unsafe_key_reason(relative: str) -> str | None:
    """Why a source object's key (relative to the source prefix) may not be copied, or None if it may.

    The copy's key is ``documentlibrary/<relative>``: a ``.`` or ``..`` segment (with ``/`` or ``\\`` as
    separator) or a leading separator would let a hostile store key land outside the backup's folder once
    anything resolves paths (S3-compatible stores that normalise keys, ``aws s3 cp --recursive`` to a disk).
    Liferay never writes such keys, so the branch fails loudly instead of copying them somewhere else.
    """
    if relative and relative[0] in "/\\":
        return "absolute key (leading separator)"
    if "\x00" in relative:
        return "NUL in key"
    segments = relative.replace("\\", "/").split("/")
    if any(segment in (".", "..") for segment in segments):
        return "'.' or '..' segment"
    return None


def source_uri(spec: BackupRequestSpec) -> str:
    dl = spec.document_library
    return location(SCHEMES[spec.provider], dl.source_bucket, dl.source_prefix, dl.storage_account)
