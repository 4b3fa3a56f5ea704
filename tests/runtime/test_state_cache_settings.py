"""The bound of the folds a service keeps comes from ``LC2_STATE_CACHE__MAX_BACKUPS``; a negative one is refused."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from lc2backup.eventing import StateCache
from lc2backup.runtime import ServiceSettings


def test_the_bound_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ServiceSettings().state_cache.max_backups == 1024
    monkeypatch.setenv("LC2_STATE_CACHE__MAX_BACKUPS", "0")
    assert ServiceSettings().state_cache.max_backups == 0
    monkeypatch.setenv("LC2_STATE_CACHE__MAX_BACKUPS", "-1")
    with pytest.raises(ValidationError, match="max_backups"):
        ServiceSettings()
    with pytest.raises(ValueError, match="max_backups must be >= 0"):
        StateCache(-1)
