"""What the CLI decides before it talks to anything: manifest validation, endpoint resolution, bad options.

No servers: an API URL that nothing listens on proves that nothing was sent (sending would fail with exit 1
"cannot reach", not exit 2 with the manifest's problems).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from lc2backup.devstack import free_port
from tests.cli.helpers import SAMPLE, lc2, lc2_process, write_manifest
from tests.support import local_spec


@pytest.fixture
def nowhere() -> str:
    return f"http://127.0.0.1:{free_port()}"


@pytest.mark.parametrize("via", ["api", "nats"])
def test_an_invalid_manifest_lists_every_problem_with_its_field_and_sends_nothing(
    tmp_path: Path, nowhere: str, via: str
) -> None:
    spec = local_spec("Not_A_Bucket", "dst-bucket", retentionDays=0, projectId="Retail")
    spec["database"]["type"] = "backup"
    manifest = write_manifest(tmp_path / "bad.yaml", spec, name="bad", kind="Backup")
    result = lc2(
        "apply", "-f", str(manifest), "--via", via, "--api", nowhere, "--nats", f"nats://127.0.0.1:{free_port()}"
    )
    assert result.exit_code == 2, result.output
    for field in (
        "kind",
        "spec.projectId",
        "spec.database.type",
        "spec.documentLibrary.sourceBucket",
        "spec.retentionDays",
    ):
        assert field in result.stderr, result.stderr
    assert "(5 problems); nothing was sent" in result.stderr
    assert "cannot reach" not in result.output and "cannot connect" not in result.output


def test_cross_field_rules_and_a_missing_name_are_problems_too(tmp_path: Path, nowhere: str) -> None:
    spec = local_spec("same-bucket", "same-bucket", prefix="")
    manifest = write_manifest(tmp_path / "overlap.yaml", spec, name="")
    result = lc2("apply", "-f", str(manifest), "--api", nowhere)
    assert result.exit_code == 2, result.output
    assert "metadata.name" in result.stderr
    assert "spec.documentLibrary.destinationPrefix" in result.stderr and "overlaps its source" in result.stderr


def test_the_sample_manifest_is_valid_and_only_then_needs_an_endpoint(tmp_path: Path) -> None:
    result = lc2("apply", "-f", str(SAMPLE), env={"LC2_STATE_DIR": str(tmp_path)})
    assert result.exit_code == 1, result.output
    assert "no projection API configured" in result.stderr
    assert "make up" in result.stderr and "--api" in result.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("kind: BackupRequest\nspec: [unclosed\n", "is not valid YAML at line 3"),
        ("- just\n- a list\n", "expected a BackupRequest mapping"),
        ("kind: BackupRequest\n---\nkind: BackupRequest\n", "holds 2 YAML documents"),
    ],
)
def test_unreadable_manifests_exit_2(tmp_path: Path, nowhere: str, content: str, message: str) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(content)
    result = lc2("apply", "-f", str(path), "--api", nowhere)
    assert result.exit_code == 2, result.output
    assert message in result.stderr


def test_a_missing_file_exits_2(tmp_path: Path, nowhere: str) -> None:
    result = lc2("apply", "-f", str(tmp_path / "absent.yaml"), "--api", nowhere)
    assert result.exit_code == 2
    assert "no such file" in result.stderr


def test_without_any_endpoint_the_error_says_how_to_get_one(tmp_path: Path) -> None:
    for args in (["list"], ["get", "x"], ["events", "x"], ["watch", "x"]):
        result = lc2(*args, env={"LC2_STATE_DIR": str(tmp_path)})
        assert result.exit_code == 1, result.output
        assert "no projection API configured" in result.stderr
        assert "make up" in result.stderr and "LC2_API_URL" in result.stderr


def test_a_stale_state_file_is_reported_as_not_running(tmp_path: Path) -> None:
    exited = subprocess.Popen(["true"])
    exited.wait()
    (tmp_path / "stack.json").write_text(
        json.dumps({"supervisor": {"pid": exited.pid}, "api": {"url": "http://127.0.0.1:1"}, "env": {}})
    )
    result = lc2("list", env={"LC2_STATE_DIR": str(tmp_path)})
    assert result.exit_code == 1
    assert "is not running (stale stack.json)" in result.stderr
    status = lc2("dev", "status", "--dir", str(tmp_path))
    assert status.exit_code == 1
    assert "not running" in status.output


def test_an_unreachable_api_is_a_clear_error(nowhere: str) -> None:
    result = lc2("list", "--api", nowhere)
    assert result.exit_code == 1
    assert f"cannot reach the projection API at {nowhere}" in result.stderr


def test_list_refuses_a_state_that_does_not_exist(nowhere: str) -> None:
    result = lc2("list", "--state", "Done", "--api", nowhere)
    assert result.exit_code == 2
    assert "Succeeded" in result.stderr


def test_help_names_every_command() -> None:
    result = lc2("--help")
    assert result.exit_code == 0
    for command in ("apply", "list", "get", "events", "watch", "demo", "dev"):
        assert command in result.output


@pytest.mark.parametrize(
    ("databases", "message"),
    [
        ("postgresql://me@db/lportal", "LC2_LOCAL__DATABASES is not JSON"),
        ('["postgresql://me@db/lportal"]', "must map instance ids to DSN strings"),
        ('{"liferay-local": "postgresql://me@db/lportal"}', "names 'liferay-local', the local stack's own"),
    ],
)
def test_dev_up_refuses_databases_it_could_not_honour_before_starting_anything(
    tmp_path: Path, databases: str, message: str
) -> None:
    directory = tmp_path / "lc2"
    done = lc2_process(
        "dev", "up", "--detach", env={"LC2_STATE_DIR": str(directory), "LC2_LOCAL__DATABASES": databases}, timeout=60
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert message in done.stderr, done.stderr
    assert not directory.exists()  # nothing was started, not even in the background
