"""Liferay's generated files: the literal prefixes per company id, nothing more."""

from __future__ import annotations

import pytest

from lc2backup.domain import BackupLayout, generated_prefixes, is_generated, parse_spec


@pytest.mark.parametrize(
    ("key", "generated"),
    [
        ("20101/0/document_thumbnail/30001/1/60000/70000.png", True),
        ("20101/0/document_preview/30001/1/60000/70000/1.png", True),
        ("20101/0/adaptive/cfg/30001/30001/60000/70000/r.jpg", True),
        ("_deleted/20101/0/adaptive/cfg/x.jpg", True),
        ("20101/0/other_system_data/x", False),  # repository 0 is not generated as a whole
        ("20101/30001/60000/1.0", False),
        ("20101/30001/document_thumbnail/1.0", False),  # not repository 0
        ("abc/0/document_thumbnail/x", False),  # company ids are numbers
        ("20101/0/document_thumbnail", False),  # the folder name alone is not a file below it
    ],
)
def test_is_generated(key: str, generated: bool) -> None:
    assert is_generated(key) is generated


def test_generated_prefixes_per_company() -> None:
    prefixes = generated_prefixes("store/", ["20102", "20101", "not-a-company"])
    assert "store/20101/0/document_thumbnail/" in prefixes
    assert "store/20102/0/adaptive/" in prefixes
    assert "store/_deleted/20101/0/document_preview/" in prefixes
    assert not any("not-a-company" in p for p in prefixes)
    assert all(p.endswith("/") for p in prefixes)


def test_layout_puts_everything_under_the_backup_id() -> None:
    spec = parse_spec(
        {
            "projectId": "retail",
            "environment": "prd",
            "provider": "local",
            "database": {"type": "dump", "instanceId": "db"},
            "documentLibrary": {"sourceBucket": "src", "destinationBucket": "dst", "destinationPrefix": "retail/prd"},
        }
    )
    layout = BackupLayout.of(spec, "b1")
    assert layout.metadata_key == "retail/prd/b1/metadata.json"
    assert layout.database_key("lportal", "dump") == "retail/prd/b1/database/lportal.dump"
    assert layout.document_library_prefix == "retail/prd/b1/documentlibrary/"
    assert layout.uri(layout.manifest_key) == "s3://dst/retail/prd/b1/documentlibrary.manifest.jsonl"
