"""Microsoft Entra-shaped access tokens for the Azure stand-ins.

Azurite's OAuth ``basic`` mode checks a bearer token's issuer, audience and times, not its signature; the
Resource Manager stand-in checks the same. So a token is an unsigned JWT with the claims Entra ID puts there.
Every token minted here is recorded by its minter so the tests can look for it in events, logs and artefacts.
"""

from __future__ import annotations

import base64
import json
import secrets
import time

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
ISSUER = f"https://sts.windows.net/{TENANT}/"
STORAGE = "https://storage.azure.com"
MANAGEMENT = "https://management.azure.com"


def _b64(doc: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()


def mint_token(
    resource: str, lifetime: int = 3600, object_id: str = "7d3b8a1e-2f4c-4b6a-9e1d-3c5f7a9b1d2e"
) -> tuple[str, int]:
    """(token, expires_on) for ``resource`` (an audience such as ``STORAGE``; a trailing ``/`` or ``/.default`` is
    dropped). Each token is unique (``jti``)."""
    audience = resource.removesuffix("/.default").rstrip("/")
    now = int(time.time())
    claims = {
        "aud": audience,
        "iss": ISSUER,
        "iat": now - 60,
        "nbf": now - 60,
        "exp": now + lifetime,
        "oid": object_id,
        "tid": TENANT,
        "sub": object_id,
        "jti": secrets.token_hex(16),
    }
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}.{secrets.token_urlsafe(24)}", now + lifetime


def token_claims(token: str) -> dict[str, object] | None:
    """The claims of a token minted here (None when it is not one)."""
    try:
        payload = token.split(".")[1]
        doc = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None
