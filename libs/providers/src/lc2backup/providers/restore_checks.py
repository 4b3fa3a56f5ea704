"""The judgements every restore provider makes the same way, whatever store it reads: ``metadata.json`` against the
plan, the manifest's lines, a restored document library against its manifest.

Pure: the provider reads the bytes and the listings with its own client, these say what is wrong (each finding
names the object or file and what differs), so the rules are one across providers and tested without a store.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from lc2backup.domain.events import VerificationSummary
from lc2backup.domain.metadata import MetadataDocument
from lc2backup.domain.restoring import RestorePlan
from lc2backup.providers.errors import PermanentProviderError

SAMPLED = 64  # objects whose content fingerprint a verification compares
LISTED = 20  # findings named one by one before "... and N more"
ArtefactCheck = Callable[[MetadataDocument], str | None]
"""A provider's check of its database artefact in ``metadata.json``: a problem, or None."""


@dataclass(frozen=True)
class ManifestLine:
    key: str
    size: int
    etag: str


def parse_manifest(body: bytes, where: str) -> list[ManifestLine]:
    """The manifest's lines (``{"key", "size", "etag"}`` each); an unreadable line fails, naming it."""
    lines = []
    for number, raw in enumerate(body.splitlines(), start=1):
        try:
            doc = json.loads(raw)
            lines.append(ManifestLine(str(doc["key"]), int(doc["size"]), str(doc["etag"]).strip('"')))
        except (ValueError, KeyError, TypeError) as exc:
            raise PermanentProviderError(f"manifest {where} line {number} is unreadable: {exc!r}") from exc
    return lines


def check_metadata(body: bytes | None, where: str, plan: RestorePlan, artefact: ArtefactCheck) -> list[str]:
    """What is wrong with ``metadata.json`` (``body``, None when missing) for ``plan``: it must name the backup,
    list the database artefact (``artefact`` says how) and count the objects the log recorded."""
    if body is None:
        return [f"{where} is missing: the backup's folder was changed"]
    try:
        doc = MetadataDocument.model_validate_json(body)
    except ValueError as exc:
        return [f"{where} is not a metadata document: {str(exc)[:300]}"]
    found: list[str] = []
    if doc.backup_id != plan.backup_id:
        found.append(f"{where} names backup {doc.backup_id}, not {plan.backup_id}")
    if plan.database is not None and (problem := artefact(doc)) is not None:
        found.append(f"{where} {problem}")
    library = plan.document_library
    if library is not None and doc.document_library.objects_copied != library.objects:
        found.append(f"{where} counts {doc.document_library.objects_copied} copied objects, the log {library.objects}")
    return found


def compare_library(
    manifest: list[ManifestLine],
    sizes: Mapping[str, int],
    where: str,
    *,
    merge: bool,
    differs: Callable[[ManifestLine], str | None],
    sampled_what: str,
    summary: VerificationSummary,
    findings: list[str],
    checks: list[str],
) -> VerificationSummary:
    """A restored library (``sizes``: key below the target prefix -> size) against its manifest: every object
    present with its size, nothing extra (unless merged into), and for a sample of ``SAMPLED`` objects spread over
    the manifest ``differs`` finds nothing (the provider's content fingerprint: an ETag, an MD5)."""
    expected = {line.key: line for line in manifest}
    missing = sorted(set(expected) - set(sizes))
    extra = sorted(set(sizes) - set(expected))
    findings += [f"object {key} is missing from {where}" for key in missing[:LISTED]]
    if len(missing) > LISTED:
        findings.append(f"... and {len(missing) - LISTED} more objects missing from {where}")
    if extra and not merge:
        findings.append(f"{len(extra)} objects in {where} are not in the manifest (first: {extra[0]})")
    wrong_size = [k for k, line in expected.items() if k in sizes and sizes[k] != line.size]
    findings += [f"object {k} is {sizes[k]} bytes, {expected[k].size} in the manifest" for k in wrong_size[:LISTED]]
    step = max(1, len(manifest) // SAMPLED)
    sampled = [line for line in manifest[::step] if line.key in sizes]
    differing = [found for line in sampled if (found := differs(line)) is not None]
    findings += differing
    restored_bytes = sum(sizes[k] for k in expected if k in sizes)
    if not missing and not wrong_size:
        checks.append(f"{len(manifest)} objects, {restored_bytes} bytes: every manifest object present, same size")
    if not differing:
        checks.append(f"{len(sampled)} sampled {sampled_what}")
    return summary.model_copy(
        update={"objects": len(manifest) - len(missing), "bytes": restored_bytes, "objects_sampled": len(sampled)}
    )
