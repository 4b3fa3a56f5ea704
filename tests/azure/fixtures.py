"""The Azure stand-ins as pytest fixtures, shared by tests/azure and the Azure crash matrix in tests/faults."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lc2backup.testing.azure.stack import AzureFakes


@pytest.fixture(scope="session")
def azure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzureFakes]:
    """Azurite, the copy proxy, the managed-identity endpoint and Resource Manager: one set per session."""
    fakes = AzureFakes.start(tmp_path_factory.mktemp("azure"))
    yield fakes
    fakes.stop()
