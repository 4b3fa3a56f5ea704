"""A local OAuth token endpoint and the credentials file that makes google-auth refresh against it.

The GCP fakes require ``Authorization: Bearer <token>`` as Google does, and hand out those tokens themselves:
``POST /token`` exchanges the one refresh token the server was started with for a fresh random access token
(form-encoded, RFC 6749 section 6), and every token issued stays valid for the life of the process.
``/tokeninfo`` answers whether a token was issued here, as Google's does, so another fake can check tokens.

Which credentials file reaches it: google-auth 2.63 **ignores** ``token_uri`` in an ``authorized_user`` file
(``google.oauth2.credentials.Credentials.from_authorized_user_info`` always puts Google's own endpoint back),
so an ``authorized_user`` ADC file would refresh against oauth2.googleapis.com. The ``external_account_authorized_user``
type (workforce identity federation) honours its ``token_url`` and refreshes with the same grant
(``grant_type=refresh_token``, client credentials in an HTTP Basic header), so ``write_adc_file`` writes that
type. ``google.oauth2.credentials.Credentials(token_uri=...)`` built in code also works here: it sends the client
credentials in the form instead, which the endpoint accepts as well.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from aiohttp import web

CLIENT_ID = "lc2-fake-client.apps.googleusercontent.com"
CLIENT_SECRET = "lc2-fake-client-secret"
ADC_TYPE = "external_account_authorized_user"
# Regional access boundary lookups (off unless an experimental variable is set) parse a workforce pool from it.
AUDIENCE = "//iam.googleapis.com/locations/global/workforcePools/lc2-fake/providers/local"
EXPIRES_IN = 3600
SCOPE = "https://www.googleapis.com/auth/cloud-platform"


class TokenIssuer:
    """Issues access tokens for one refresh token and answers whether a request carries one of them."""

    def __init__(self, refresh_token: str) -> None:
        if not refresh_token:
            raise ValueError("a refresh token is required")
        self._refresh_token = refresh_token
        self._issued: dict[str, None] = {}  # insertion-ordered set

    @property
    def issued(self) -> list[str]:
        """Every access token handed out (for tests that look for leaked credentials), oldest first."""
        return list(self._issued)

    def authenticated(self, request: web.Request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and token.strip() in self._issued

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("grant_type") != "refresh_token":
            return _oauth_error("unsupported_grant_type", "only the refresh_token grant is served here")
        presented = form.get("refresh_token")
        if not isinstance(presented, str) or not secrets.compare_digest(presented, self._refresh_token):
            return _oauth_error("invalid_grant", "Bad Request")
        access_token = f"ya29.fake-{secrets.token_urlsafe(32)}"
        self._issued[access_token] = None
        return web.json_response({"access_token": access_token, "expires_in": EXPIRES_IN, "token_type": "Bearer"})

    async def tokeninfo(self, request: web.Request) -> web.Response:
        """Google's ``tokeninfo`` (``access_token`` in the form or query): lets another fake check a token."""
        form = await request.post() if request.method == "POST" else request.query
        token = form.get("access_token")
        if not isinstance(token, str) or token not in self._issued:
            return web.json_response({"error": "invalid_token", "error_description": "Invalid Value"}, status=400)
        info = {"azp": CLIENT_ID, "aud": CLIENT_ID, "scope": SCOPE, "expires_in": EXPIRES_IN, "access_type": "offline"}
        return web.json_response(info)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/token", self.token)
        app.router.add_post("/tokeninfo", self.tokeninfo)
        app.router.add_get("/tokeninfo", self.tokeninfo)


def _oauth_error(error: str, description: str) -> web.Response:
    return web.json_response({"error": error, "error_description": description}, status=400)


def write_adc_file(path: Path, token_uri: str, refresh_token: str) -> Path:
    """Write Application Default Credentials that refresh against ``token_uri`` (see the module docstring).

    Point ``GOOGLE_APPLICATION_CREDENTIALS`` at the file; ``google.auth.default()`` then returns credentials
    whose requests carry tokens issued by the fake.
    """
    info = {
        "type": ADC_TYPE,
        "audience": AUDIENCE,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "refresh_token": refresh_token,
        "token_url": token_uri,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(info, indent=2))
    path.chmod(0o600)
    return path
