"""What the README tells a user, done as written: after ``make up``, against a real detached stack; and the
backup layout it describes, against the five services.

One ``dev up --detach`` for the module, started the way ``make up`` starts it, from a folder that looks like
the repository (``.venv`` and ``deploy`` linked in, ``.lc2`` its own), with ``LC2_LOCAL__DATABASES`` naming a
database of another PostgreSQL server: the user's own.
"""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lc2backup.devstack import LocalStack
from lc2backup.devstack.seeding import (
    LIFERAY_TABLES,
    liferay_database_sql,
    plan_document_library,
    seed_document_library,
)
from tests.cli.helpers import REPO, backup_id_in, lc2, lc2_process, processes_under, write_manifest
from tests.support import System, local_spec

pytestmark = pytest.mark.e2e

RECIPE = re.compile(r"<!-- restore-recipe:begin -->\s*```\n(.*?)```\s*<!-- restore-recipe:end -->", re.DOTALL)
SERVICE_RECIPE = re.compile(
    r"<!-- restore-service-recipe:begin -->\s*```\n(.*?)```\s*<!-- restore-service-recipe:end -->", re.DOTALL
)


@dataclass(frozen=True)
class DevStack:
    cwd: Path  # the folder the user works in: .lc2 is the stack's state
    state: dict[str, object]

    @property
    def directory(self) -> Path:
        return self.cwd / ".lc2"

    @property
    def env(self) -> dict[str, str]:
        return {"LC2_STATE_DIR": str(self.directory)}

    def dsn_for(self, database: str) -> str:
        """A database on the stack's PostgreSQL."""
        postgres = self.state["postgres"]
        assert isinstance(postgres, dict)
        return f"{str(postgres['dsn']).rsplit('/', 1)[0]}/{database}"


def row_counts(dsn: str) -> dict[str, int]:
    """Rows per Liferay table, counted by psql."""
    sql = " UNION ALL ".join(f"SELECT '{table}', count(*) FROM {table}" for table in LIFERAY_TABLES)
    out = subprocess.run(["psql", "-X", "-At", "-F", " ", dsn, "-c", sql], capture_output=True, text=True, check=True)
    return {table: int(count) for table, count in (line.split() for line in out.stdout.splitlines())}


@pytest.fixture(scope="module")
def own_database(stack: LocalStack) -> str:
    """A Liferay-like database on another PostgreSQL server (the session's), smaller than the demo's."""
    name = f"own_{uuid.uuid4().hex[:8]}"
    stack.postgres.create_database(name)
    stack.postgres.psql(liferay_database_sql(scale=1), name)
    stack.postgres.psql(
        "DELETE FROM assetentry WHERE entryid % 3 = 0; DELETE FROM journalarticle WHERE id_ > 81000", name
    )
    return name


@pytest.fixture(scope="module")
def dev_stack(tmp_path_factory: pytest.TempPathFactory, stack: LocalStack, own_database: str) -> Iterator[DevStack]:
    cwd = tmp_path_factory.mktemp("user")
    for name in (".venv", "deploy"):
        (cwd / name).symlink_to(REPO / name)
    directory = cwd / ".lc2"
    databases = json.dumps({"my-own": stack.postgres.dsn_for(own_database)})
    up = lc2_process("dev", "up", "--detach", env={"LC2_STATE_DIR": str(directory), "LC2_LOCAL__DATABASES": databases})
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        yield DevStack(cwd, json.loads((directory / "stack.json").read_text()))
    finally:
        lc2_process("dev", "down", env={"LC2_STATE_DIR": str(directory)})
        for proc in processes_under(directory):  # only if `down` failed: never leave a stack behind
            proc.kill()
        LocalStack(directory).remove()


def _run_block(dev_stack: DevStack, block: re.Pattern[str], name: str) -> subprocess.CompletedProcess[str]:
    """The README's block ``name``, pasted into bash in order (set -euo pipefail) in the user's folder."""
    found = block.search((REPO / "README.md").read_text())
    assert found, f"README.md has no {name} block"
    return subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + found.group(1)],
        cwd=dev_stack.cwd,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(dev_stack.cwd), "COLUMNS": "100"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_readme_restore_recipe_runs_as_written(dev_stack: DevStack) -> None:
    """Every line of the README's restore block, pasted into bash in order; the restored rows equal the source's."""
    done = _run_block(dev_stack, RECIPE, "restore-recipe")
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert "lportal.dump: OK" in done.stdout  # sha256sum -c checked the downloaded dump
    source, restored = row_counts(dev_stack.dsn_for("lportal")), row_counts(dev_stack.dsn_for("lportal_restored"))
    print(f"recipe: restored row counts {restored}")
    assert restored == source and sum(source.values()) > 10_000


def test_the_readme_restore_through_the_restorer_runs_as_written(dev_stack: DevStack) -> None:
    """The README's restore, verify and restorable commands, pasted in order: each exits 0 (--watch: Succeeded,
    the verification passed), the restored database's rows equal the source's, the backup is named restorable."""
    done = _run_block(dev_stack, SERVICE_RECIPE, "restore-service-recipe")
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert "Verification  Passed" in done.stdout and "is the last proven restorable" in done.stdout, done.stdout
    restored = re.search(r"read into liferay-local/(lportal_r[0-9a-f]{8})", done.stdout)
    assert restored, done.stdout
    assert row_counts(dev_stack.dsn_for(restored.group(1))) == row_counts(dev_stack.dsn_for("lportal"))


def test_make_up_backs_up_the_users_own_database(
    dev_stack: DevStack, stack: LocalStack, own_database: str, tmp_path: Path
) -> None:
    """LC2_LOCAL__DATABASES given to `make up` is kept beside the demo's instance, and its dump restores."""
    spec = local_spec("liferay-dl", "lc2-backups", instance="my-own", database_name=own_database, projectId="mine")
    manifest = write_manifest(tmp_path / "mine.yaml", spec, name="mine")
    applied = lc2("apply", "-f", str(manifest), "--watch", "--timeout", "150", env=dev_stack.env)
    assert applied.exit_code == 0, applied.output
    backup_id = backup_id_in(applied.stdout)

    target = tmp_path / "restore"
    downloaded = lc2("download", backup_id, str(target), "--only", "database", env=dev_stack.env)
    assert downloaded.exit_code == 0, downloaded.output
    assert sorted(p.name for p in (target / "database").iterdir()) == [
        f"{own_database}.dump",
        f"{own_database}.dump.sha256",
        f"{own_database}.figures.json",
    ]
    check = subprocess.run(["sha256sum", "-c", f"{own_database}.dump.sha256"], cwd=target / "database", check=False)
    assert check.returncode == 0

    restored = f"r_{own_database}"
    stack.postgres.create_database(restored)
    done = subprocess.run(
        [
            "pg_restore",
            "--no-owner",
            f"--dbname={stack.postgres.dsn_for(restored)}",
            str(target / "database" / f"{own_database}.dump"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    mine, demo = row_counts(stack.postgres.dsn_for(own_database)), row_counts(dev_stack.dsn_for("lportal"))
    assert row_counts(stack.postgres.dsn_for(restored)) == mine
    assert mine != demo  # the dump is of the user's database, not of the demo's
    status = lc2_process("dev", "status", env={**dev_stack.env, "COLUMNS": "200"})
    assert "liferay-local, my-own" in status.stdout, status.stdout  # both instances, never a DSN
    assert stack.postgres.dsn_for(own_database) not in status.stdout


async def test_the_readme_layout_a_copied_key_loses_the_source_prefix(
    system: System, s3: Any, buckets: tuple[str, str], tmp_path: Path
) -> None:
    """README "What a backup is": with `sourcePrefix: liferay`, `liferay/20101/30001/60000/1.0` is copied to
    `documentlibrary/20101/30001/60000/1.0`, and the manifest names it `20101/30001/60000/1.0`."""
    source, destination = buckets
    layout = await seed_document_library(s3, source, "liferay/", plan_document_library(20))
    await s3.put_object(Bucket=source, Key="liferay-other/20101/1/1/1.0", Body=b"beside the prefix, not in it")
    spec = system.spec(source, destination)
    spec["documentLibrary"]["sourcePrefix"] = "liferay"  # no trailing '/': completed by the spec
    manifest = write_manifest(tmp_path / "prefixed.yaml", spec, name="prefixed")
    applied = lc2("apply", "-f", str(manifest), "--api", system.api, env={"LC2_API_TOKEN": system.api_token})
    assert applied.exit_code == 0, applied.output
    backup_id = backup_id_in(applied.stdout)
    assert (await system.wait_for(backup_id, timeout=90))["state"] == "Succeeded"

    root = f"backups/{backup_id}/"
    listed = await s3.list_objects_v2(Bucket=destination, Prefix=f"{root}documentlibrary/")
    copied = {obj["Key"][len(root) :] for obj in listed.get("Contents", [])}
    assert "documentlibrary/20101/30001/60000/1.0" in copied
    assert copied == {f"documentlibrary/{key}" for key in layout.regular}
    body = await (await s3.get_object(Bucket=destination, Key=f"{root}documentlibrary.manifest.jsonl"))["Body"].read()
    assert {json.loads(line)["key"] for line in body.decode().splitlines()} == set(layout.regular)
