"""The GCP fakes as pytest fixtures, shared by tests/gcp and the GCP crash matrix in tests/faults."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.gcp.support import REFRESH_TOKEN, GcpFakes


@pytest.fixture(scope="session")
def gcp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcpFakes]:
    """fake-gcs-server, the Cloud SQL Admin and Storage Transfer fakes: one set per session."""
    fakes = GcpFakes.start(tmp_path_factory.mktemp("gcp"), REFRESH_TOKEN)
    yield fakes
    fakes.stop()
