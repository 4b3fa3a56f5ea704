"""``make demo PROVIDER=gcp``: the same backup through the gcp provider, against local stand-ins of Google Cloud.

Besides the local stack, the demo starts fake-gcs-server and the Cloud SQL Admin and Storage Transfer servers
of the test package (``lc2backup.testing.gcp``, installed by ``make install``, never in the image); the
``lportal`` database becomes the Cloud SQL instance ``lc2-demo:europe-west1:liferay-gcp`` and the store is
seeded into the fake GCS bucket ``liferay-dl``. The services use the real Google clients with Application
Default Credentials from a file whose token endpoint is the fake's.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from lc2backup.cli.demodata import (
    BACKUP_BUCKET,
    DATABASE,
    SOURCE_BUCKET,
    DemoData,
    DemoSize,
    demo_layout,
    seed_database,
)
from lc2backup.cli.errors import StackFailure
from lc2backup.devstack import LocalStack
from lc2backup.domain import is_generated

SAMPLE = "deploy/samples/backuprequest-gcp-demo.yaml"
PROJECT = "lc2-demo"
INSTANCE = "liferay-gcp"


class GcpDemo:
    """The GCP stand-ins of one demo run: started, seeded, described, stopped."""

    sample = SAMPLE
    stand_ins = "the Google Cloud stand-ins (GCS, Cloud SQL Admin, Storage Transfer)"
    guide = "see docs/gcp.md"

    def __init__(self, where: Path) -> None:
        self._where = where
        self._fakes: Any = None

    def start(self) -> None:
        try:
            from lc2backup.testing.gcp.stack import GcpFakes
        except ImportError as exc:
            raise StackFailure(
                "PROVIDER=gcp needs the test package lc2backup-testing (its Google Cloud stand-ins)",
                hint="run it from the repository: make demo PROVIDER=gcp (make install installs it)",
            ) from exc
        self._fakes = GcpFakes.start(self._where / "gcp")

    def prepare(self, stack: LocalStack, size: DemoSize) -> DemoData:
        from lc2backup.testing.gcp.stack import seed_gcs

        dsn = stack.postgres.create_database(DATABASE)
        database_bytes = asyncio.run(seed_database(dsn, size))
        self._fakes.sqladmin.add_instance(PROJECT, INSTANCE, dsn)
        gcs = self._fakes.client(PROJECT)
        for bucket in (SOURCE_BUCKET, BACKUP_BUCKET):
            gcs.create_bucket(bucket)
        asyncio.run(seed_gcs(gcs, SOURCE_BUCKET, "", demo_layout(size)))
        blobs = list(gcs.list_blobs(SOURCE_BUCKET))
        return DemoData(
            dsn,
            database_bytes,
            objects=len(blobs),
            object_bytes=sum(int(b.size) for b in blobs),
            generated_objects=sum(is_generated(b.name) for b in blobs),
            seeded_now=True,
        )

    def env(self) -> dict[str, str]:
        """The gcp provider pointed at the stand-ins; they finish an operation in about a second, so the services
        poll every second (the default, 15 s, suits Cloud SQL's minutes)."""
        env: dict[str, str] = self._fakes.env(project=PROJECT)
        return {**env, "LC2_POLL_INTERVAL_SECONDS": "1"}

    def where(self) -> str:
        f = self._fakes
        return (
            f"GCS endpoint     {f.gcs.endpoint}  (fake-gcs-server; Cloud SQL Admin {f.sqladmin.endpoint}, "
            f"Storage Transfer {f.sts.endpoint})"
        )

    def artefacts(self, wanted: dict[str, str | None]) -> dict[str, tuple[str, int | None]]:
        """Each artefact's URI and the size GCS reports for it (read back, not taken from the events)."""
        gcs, found = self._fakes.client(PROJECT), {}
        for label, uri in wanted.items():
            if not uri:
                continue
            bucket, _, key = uri.removeprefix("gs://").partition("/")
            blob = gcs.bucket(bucket).get_blob(key)
            found[label] = (uri, int(blob.size) if blob is not None else None)
        return found

    def stop(self) -> None:
        if self._fakes is not None:
            self._fakes.stop()
