"""Who is calling the projection API, and which projects they may see.

A caller presents ``Authorization: Bearer <token>``; the API keeps only SHA-256 digests of tokens, each mapped
to a tenant and its projects (``"*"``: every project, for operators). Reads of another tenant's backup answer
exactly like a backup that does not exist (404, same body), so nobody learns what they may not see; listing
or creating for a project outside the grant is 403. Design, and the Kubernetes variant: docs/security.md.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import TypeAdapter, ValidationError

from lc2backup.archiver.errors import Forbidden, Unauthenticated
from lc2backup.archiver.settings import ALL_PROJECTS, TOKEN_HASH, ApiSettings, TenantGrant

log = logging.getLogger(__name__)

_GRANTS = TypeAdapter(dict[str, TenantGrant])
bearer = HTTPBearer(auto_error=False, description="A token issued by the operators (its SHA-256 is configured)")


def token_digest(token: str) -> str:
    """The key a token is configured under: ``sha256(token)`` in lowercase hex."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Tenant:
    name: str
    projects: frozenset[str]

    @property
    def sees_everything(self) -> bool:
        return ALL_PROJECTS in self.projects

    def may_use(self, project_id: str | None) -> bool:
        return self.sees_everything or (project_id is not None and project_id in self.projects)

    def visible_projects(self) -> list[str] | None:
        """The filter a query applies: None for every project."""
        return None if self.sees_everything else sorted(self.projects)


class TokenBook:
    """Token digests -> tenants, from the settings and the optional tokens file (read once, at start)."""

    def __init__(self, grants: Mapping[str, TenantGrant]) -> None:
        self._tenants = {digest: Tenant(grant.tenant, frozenset(grant.projects)) for digest, grant in grants.items()}

    @classmethod
    def from_settings(cls, settings: ApiSettings) -> TokenBook:
        grants = dict(settings.tokens)
        if settings.tokens_file is not None:
            try:
                grants.update(_GRANTS.validate_json(settings.tokens_file.read_bytes()))
            except (OSError, ValidationError, json.JSONDecodeError) as exc:
                raise ValueError(f"cannot read the API tokens file {settings.tokens_file}: {exc}") from exc
            bad = [key[:12] for key in grants if not TOKEN_HASH.match(key)]
            if bad:
                raise ValueError(f"{settings.tokens_file}: keys must be SHA-256 hex digests of tokens (got {bad})")
        book = cls(grants)
        if not book:
            log.warning("no API token is configured (LC2_API__TOKENS / LC2_API__TOKENS_FILE): every call is refused")
        return book

    def __bool__(self) -> bool:
        return bool(self._tenants)

    def tenant_for(self, token: str) -> Tenant | None:
        return self._tenants.get(token_digest(token))


async def current_tenant(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Tenant:
    """The FastAPI dependency every ``/api/v1`` route takes: 401 unless a configured token is presented."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated("a bearer token is required")
    book: TokenBook = request.app.state.tokens
    tenant = book.tenant_for(credentials.credentials)
    if tenant is None:
        raise Unauthenticated("the bearer token is not valid")
    return tenant


def require_project(tenant: Tenant, project_id: str) -> None:
    if not tenant.may_use(project_id):
        raise Forbidden(f"tenant {tenant.name} may not use project {project_id}")


__all__ = ["Tenant", "TokenBook", "bearer", "current_tenant", "require_project", "token_digest"]
