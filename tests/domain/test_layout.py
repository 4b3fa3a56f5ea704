"""The layout forms each cloud's real address of an artefact: s3://, gs://, and Azure's blob URL."""

from __future__ import annotations

import pytest

from lc2backup.domain import BackupLayout, parse_spec
from lc2backup.domain.layout import location, source_uri
from lc2backup.domain.spec import SpecInvalid


def _spec(provider: str, account: str | None = None) -> dict[str, object]:
    dl = {"sourceBucket": "liferay", "destinationBucket": "backups", "destinationPrefix": "r/"}
    return {
        "projectId": "retail",
        "environment": "prd",
        "provider": provider,
        "database": {"type": "snapshot" if provider != "local" else "dump", "instanceId": "db"},
        "documentLibrary": dl if account is None else {**dl, "storageAccount": account},
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
    layout = BackupLayout.of(parse_spec(_spec(provider, account)), "b1")
    assert layout.uri(layout.metadata_key) == expected


def test_an_azure_location_names_the_storage_account_and_container() -> None:
    spec = parse_spec(_spec("azure", "lc2src"))
    assert source_uri(spec) == "https://lc2src.blob.core.windows.net/liferay/"
    with pytest.raises(ValueError, match="storage account of container 'backups'"):
        BackupLayout("backups", "r/b1/", "https").uri("metadata.json")  # no account: none is guessed


@pytest.mark.parametrize(("provider", "account"), [("azure", None), ("gcp", "lc2store")])
def test_the_storage_account_is_required_for_azure_and_refused_elsewhere(provider: str, account: str | None) -> None:
    with pytest.raises(SpecInvalid, match="storageAccount names the Azure storage account"):
        parse_spec(_spec(provider, account))


def test_location_keeps_the_key_as_it_is() -> None:
    assert location("s3", "b", "a/b c/ü") == "s3://b/a/b c/ü"
    assert location("gs", "b") == "gs://b/"
