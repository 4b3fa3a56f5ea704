"""The Storage Transfer provider on its own against fake-gcs-server and the STS stand-in: the limits STS puts on
exclude prefixes are met before a job is created, with a reason the user can act on."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from lc2backup.domain import BackupLayout, parse_spec
from lc2backup.providers import BackupJob, PermanentProviderError
from lc2backup.providers.gcp import GcpSettings, StorageTransferProvider, transfer_job_name
from lc2backup.providers.gcp.clients import GcpClients
from tests.gcp.support import PROJECT, CloudSql, GcpFakes, gcp_spec

pytestmark = [pytest.mark.gcp]


def _provider(fakes: GcpFakes) -> StorageTransferProvider:
    settings = GcpSettings(
        project=PROJECT, storage_endpoint=fakes.gcs.endpoint, storage_transfer_endpoint=fakes.sts.endpoint
    )
    return StorageTransferProvider(GcpClients(settings), settings)


async def test_more_companies_than_sts_can_exclude_is_refused_before_any_job(
    fakes: GcpFakes, gcs: Any, gcs_buckets: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    source, destination = gcs_buckets
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(fakes.adc))
    companies = [str(20100 + i) for i in range(112)]  # 9 prefixes each: 1008 > 1000

    def seed() -> None:
        for cid in companies:
            gcs.bucket(source).blob(f"dl/{cid}/30001/1/1.0").upload_from_string(b"x")

    await asyncio.to_thread(seed)
    spec = parse_spec(gcp_spec(CloudSql("i", "lportal", ""), source, destination))
    job = BackupJob("b-many", spec, BackupLayout.of(spec, "b-many"))
    with pytest.raises(PermanentProviderError, match="112 companies.*1008 exclude prefixes.*excludeGeneratedFiles"):
        await _provider(fakes).start_transfer(job)
    assert transfer_job_name("b-many") not in [j["name"] for j in fakes.sts.state()["jobs"]]

    # control: one company fewer fits, and the job is created
    await asyncio.to_thread(lambda: gcs.bucket(source).blob(f"dl/{companies[-1]}/30001/1/1.0").delete())
    started = await _provider(fakes).start_transfer(job)
    assert len(started.excluded_prefixes) == 999
    assert transfer_job_name("b-many") in [j["name"] for j in fakes.sts.state()["jobs"]]
