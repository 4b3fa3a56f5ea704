"""The layout forms each cloud's real address of an artefact: s3://, gs://, and Azure's blob URL."""

from __future__ import annotations

import pytest

from lc2backup.domain import BackupLayout, parse_spec
from lc2backup.domain.layout import location, source_uri


def _spec(provider: str) -> dict[str, object]:
    return {
        "projectId": "retail",
        "environment": "prd",
        "provider": provider,
        "database": {"type": "snapshot" if provider != "local" else "dump", "instanceId": "db"},
        "documentLibrary": {"sourceBucket": "liferay", "destinationBucket": "backups", "destinationPrefix": "r/"},
    }


@pytest.mark.parametrize(
    ("provider", "account", "expected"),
    [
        ("local", None, "s3://backups/r/b1/metadata.json"),
        ("aws", None, "s3://backups/r/b1/metadata.json"),
        ("gcp", None, "gs://backups/r/b1/metadata.json"),
        ("azure", "lc2store", "https://lc2store.blob.core.windows.net/backups/r/b1/metadata.json"),
    ],
)
def test_each_cloud_gets_its_real_location(provider: str, account: str | None, expected: str) -> None:
    layout = BackupLayout.of(parse_spec(_spec(provider)), "b1", account=account)
    assert layout.uri(layout.metadata_key) == expected


def test_an_azure_location_names_the_storage_account_and_container() -> None:
    spec = parse_spec(_spec("azure"))
    assert source_uri(spec, "lc2src") == "https://lc2src.blob.core.windows.net/liferay/"
    layout = BackupLayout.of(spec, "b1")
    with pytest.raises(ValueError, match="storage account of container 'backups'"):
        layout.uri(layout.metadata_key)  # no account: no address can be formed, and none is guessed


def test_location_keeps_the_key_as_it_is() -> None:
    assert location("s3", "b", "a/b c/ü") == "s3://b/a/b c/ü"
    assert location("gs", "b") == "gs://b/"
