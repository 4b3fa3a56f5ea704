"""Tenants of the projection API for the security tests: each with its own bearer token and projects.

The tokens are made up per test; only their SHA-256 digests reach the archiver (``LC2_API__TOKENS``), next to
the operator token the ``system`` fixture adds for its own helpers.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class Tenant:
    name: str
    projects: tuple[str, ...]
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
def tenants() -> dict[str, Tenant]:
    return {
        name: Tenant(name, projects, f"tok-{name}-{secrets.token_urlsafe(24)}")
        for name, projects in (("retail-team", ("retail",)), ("bank-team", ("bank", "insurance")), ("ops", ("*",)))
    }


def tokens_setting(tenants: dict[str, Tenant]) -> str:
    return json.dumps(
        {
            hashlib.sha256(t.token.encode()).hexdigest(): {"tenant": t.name, "projects": list(t.projects)}
            for t in tenants.values()
        }
    )


@pytest.fixture
def system_extra_env(tenants: dict[str, Tenant]) -> dict[str, str]:
    return {"LC2_API__TOKENS": tokens_setting(tenants)}
