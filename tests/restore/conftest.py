"""The tests of restores start the restorer too."""

from __future__ import annotations

import pytest

from tests.support import ALL_SERVICES


@pytest.fixture
def system_services() -> tuple[str, ...]:
    return ALL_SERVICES
