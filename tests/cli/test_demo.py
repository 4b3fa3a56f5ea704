"""``make demo``: ``lc2backup demo`` as a real process, from nothing to a Succeeded backup, restored and verified,
and back to nothing."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from lc2backup.devstack import LocalStack
from tests.cli.helpers import lc2_process, processes_under

pytestmark = pytest.mark.e2e


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "lc2"
    yield directory
    LocalStack(directory / "demo").remove()


def test_demo_backs_up_the_sample_environment_and_stops_everything(state_dir: Path) -> None:
    done = lc2_process("demo", env={"LC2_STATE_DIR": str(state_dir)})
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "demo Succeeded" in out

    # the projection API's JSON for the backup is printed whole
    start = out.index("{\n")
    doc, _ = json.JSONDecoder().raw_decode(out[start:])
    assert doc["state"] == "Succeeded"
    assert doc["projectId"] == "retail" and doc["environment"] == "dev"
    root = f"s3://lc2-backups/retail/dev/{doc['backupId']}/"
    assert doc["metadataLocation"] == root + "metadata.json"

    # where the artefacts are (sizes read back from the store), what was skipped, how long it took
    assert re.search(rf"metadata\.json\s+{re.escape(root)}metadata\.json\s+\(\d", out)
    assert re.search(rf"database dump\s+{re.escape(root)}database/lportal\.dump\s+\(\d", out)
    assert "S3 endpoint" in out
    excluded = doc["status"]["documentLibrary"]["counters"]["objectsExcluded"]
    assert excluded > 0
    assert f"generated files  {excluded} skipped of {excluded} in the store" in out

    # then restored into a new database and prefix, and verified: the verdict says what was compared
    assert "5/6 restoring backup" in out and "database restored as liferay-local/lportal_r" in out
    assert "Verification  Passed" in out
    copied = doc["status"]["documentLibrary"]["counters"]["objectsCopied"]
    assert re.search(rf"compared\s+8 tables, \d+ rows; {copied} objects", out), out
    assert "counts and row checksums equal the backup's figures" in out
    assert re.search(r"elapsed \d", out)

    assert processes_under(state_dir / "demo") == []


@pytest.mark.gcp
def test_the_gcp_demo_backs_up_through_the_google_stand_ins_and_stops_everything(state_dir: Path) -> None:
    done = lc2_process("demo", "--provider", "gcp", env={"LC2_STATE_DIR": str(state_dir)})
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "demo Succeeded" in out
    start = out.index("{\n")
    doc, _ = json.JSONDecoder().raw_decode(out[start:])
    assert (doc["state"], doc["provider"]) == ("Succeeded", "gcp")
    root = f"gs://lc2-backups/retail/dev/{doc['backupId']}/"
    assert doc["metadataLocation"] == root + "metadata.json"
    assert re.search(rf"metadata\.json\s+{re.escape(root)}metadata\.json\s+\(\d", out)
    assert re.search(rf"database dump\s+{re.escape(root)}database/lportal\.sql\.gz\s+\(\d", out)
    assert "GCS endpoint" in out and "Storage Transfer" in out
    excluded = doc["status"]["documentLibrary"]["counters"]["objectsExcluded"]
    assert excluded > 0 and f"generated files  {excluded} skipped of {excluded} in the store" in out
    assert processes_under(state_dir / "demo") == []


@pytest.mark.azure
def test_the_azure_demo_backs_up_through_the_azure_stand_ins_and_stops_everything(state_dir: Path) -> None:
    done = lc2_process("demo", "--provider", "azure", env={"LC2_STATE_DIR": str(state_dir)})
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "demo Succeeded" in out
    start = out.index("{\n")
    doc, _ = json.JSONDecoder().raw_decode(out[start:])
    assert (doc["state"], doc["provider"]) == ("Succeeded", "azure")
    container = "https://devstoreaccount1.blob.core.windows.net/lc2-backups/"
    root = f"{container}retail/dev/{doc['backupId']}/"
    assert doc["metadataLocation"] == root + "metadata.json"
    # sizes read back from Azurite: metadata.json, and the long-term-retention archive in its backup's folder
    assert re.search(rf"metadata\.json\s+{re.escape(root)}metadata\.json\s+\(\d", out)
    archive = f"{container}lc2-{doc['backupId']}/lportal.dump"
    assert re.search(rf"database dump\s+{re.escape(archive)}\s+\(\d", out)
    assert "Blob endpoint" in out and "Resource Manager" in out
    excluded = doc["status"]["documentLibrary"]["counters"]["objectsExcluded"]
    assert excluded > 0 and f"generated files  {excluded} skipped of {excluded} in the store" in out
    assert processes_under(state_dir / "demo") == []
