"""Liferay's document-library store layout and the generated files a backup may skip.

Keys are ``[<area>/]{companyId}/{repositoryId}/{fileName}/{version}``; generated files (thumbnails,
previews, Adaptive Media renditions) live under repository ``0`` in three literal folders, which Liferay
regenerates after a restore. Excluding means exactly these prefixes per company id, never ``<cid>/0/``
as a whole: repository 0 is also the system area for other data.
"""

from __future__ import annotations

from collections.abc import Iterable

GENERATED_FOLDERS: tuple[str, ...] = ("document_thumbnail", "document_preview", "adaptive")
STORE_AREAS: tuple[str, ...] = ("_deleted", "_new")  # store areas behind Liferay's LPS-174816 flag


def is_generated(relative_key: str) -> bool:
    """True for ``<companyId>/0/<generated folder>/...`` (optionally below a store area)."""
    parts = relative_key.split("/", 4)
    if parts and parts[0] in STORE_AREAS:
        parts = parts[1:]
    return len(parts) >= 4 and parts[0].isdigit() and parts[1] == "0" and parts[2] in GENERATED_FOLDERS


def generated_prefixes(source_prefix: str, company_ids: Iterable[str]) -> list[str]:
    """The literal prefixes to exclude (what Storage Transfer Service / a manifest filter needs)."""
    return [
        f"{source_prefix}{area}{cid}/0/{folder}/"
        for cid in sorted(c for c in company_ids if c.isdigit())
        for area in ("", *(f"{a}/" for a in STORE_AREAS))
        for folder in GENERATED_FOLDERS
    ]
