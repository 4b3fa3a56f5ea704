"""A managed-identity token endpoint as App Service and Azure Functions expose it, for ``DefaultAzureCredential``.

With ``IDENTITY_ENDPOINT`` and ``IDENTITY_HEADER`` set (and no ``IDENTITY_SERVER_THUMBPRINT``, which would mean
Service Fabric) azure-identity (1.27.0) picks its App Service managed identity: the sync credential through
MSAL's ``ManagedIdentityClient``, the aio one through its own client; both send

    GET <IDENTITY_ENDPOINT>?api-version=2019-08-01&resource=<resource>   X-IDENTITY-HEADER: <IDENTITY_HEADER>

(``resource`` is the scope without ``/.default``; a user-assigned identity adds ``client_id``, ``mi_res_id`` or
``object_id``) and read ``access_token``, ``expires_on`` (epoch seconds, a string as App Service sends it),
``resource`` and ``token_type``. Tokens are minted by ``tokens.mint_token`` (what Azurite's OAuth ``basic``
accepts). A missing ``X-IDENTITY-HEADER`` is 400 and a wrong one 401, each with App Service's error body
``{"statusCode", "message"}``; a missing ``resource`` or an ``api-version`` other than 2019-08-01 is 400.

Every issued token is recorded (``/_fake/state``): the tests look for them in events, logs and artefacts.
The access log names the request line (api-version, resource), never a header. Run as
``python -m lc2backup.testing.azure.identity --port P --secret S``; ``ManagedIdentityEndpoint`` starts it.
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import logging
import secrets
import sys
from dataclasses import dataclass, field
from typing import Any, ClassVar

from aiohttp import web

from lc2backup.devstack.ports import LOOPBACK
from lc2backup.devstack.servers import LoopbackServer, call_json
from lc2backup.testing.azure.tokens import mint_token

Json = dict[str, Any]

log = logging.getLogger("fake-managed-identity")

API_VERSION = "2019-08-01"
TOKEN_PATH = "/msi/token"
CLIENT_ID = "5e29463d-71da-4fe0-8e69-999b57db23b0"
"""The client id the endpoint reports for its (system-assigned) identity."""


def error(status: int, message: str) -> web.Response:
    return web.json_response({"statusCode": status, "message": message}, status=status)


@dataclass
class Endpoint:
    secret: str
    lifetime: int = 3600
    issued: list[Json] = field(default_factory=list)
    requests: int = 0
    refused: int = 0

    async def token(self, request: web.Request) -> web.Response:
        self.requests += 1
        header = request.headers.get("X-IDENTITY-HEADER")
        if header is None:
            self.refused += 1
            return error(400, "Unable to find X-IDENTITY-HEADER in the request.")
        if not hmac.compare_digest(header.encode(), self.secret.encode()):
            self.refused += 1
            return error(401, "The X-IDENTITY-HEADER value is not valid.")
        if request.query.get("api-version") != API_VERSION:
            self.refused += 1
            return error(400, f"api-version must be {API_VERSION}.")
        resource = request.query.get("resource")
        if not resource:
            self.refused += 1
            return error(400, "Required query parameter resource is missing.")
        token, expires_on = mint_token(resource, lifetime=self.lifetime)
        self.issued.append({"token": token, "resource": resource, "expires_on": expires_on})
        body = {
            "access_token": token,
            "expires_on": str(expires_on),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": request.query.get("client_id") or CLIENT_ID,
        }
        return web.json_response(body)

    async def health(self, _request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def state(self, _request: web.Request) -> web.Response:
        return web.json_response(self.state_json())

    def state_json(self) -> Json:
        return {
            "issued": [entry["token"] for entry in self.issued],
            "resources": [entry["resource"] for entry in self.issued],
            "requests": self.requests,
            "refused": self.refused,
            "lifetime": self.lifetime,
        }

    async def configure(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        if "lifetime" in body:
            self.lifetime = int(body["lifetime"])
        return web.json_response(self.state_json())

    async def reset(self, _request: web.Request) -> web.Response:
        self.issued.clear()
        self.requests = self.refused = 0
        return web.json_response({})


def create_app(secret: str, lifetime: int = 3600) -> web.Application:
    endpoint = Endpoint(secret, lifetime)
    app = web.Application()
    app.router.add_get(TOKEN_PATH, endpoint.token)
    app.router.add_get("/_fake/health", endpoint.health)
    app.router.add_get("/_fake/state", endpoint.state)
    app.router.add_post("/_fake/configure", endpoint.configure)
    app.router.add_post("/_fake/reset", endpoint.reset)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default=LOOPBACK)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", required=True, help="the value X-IDENTITY-HEADER must carry")
    parser.add_argument("--lifetime", type=int, default=3600, help="seconds a token is valid")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # the request line carries api-version and resource only; tokens are in response bodies, never logged
    web.run_app(
        create_app(args.secret, args.lifetime),
        host=args.host,
        port=args.port,
        access_log_format='"%r" %s %Tfs',
        print=None,
    )


# --- the wrapper tests use ---------------------------------------------------------------------------------


@dataclass
class ManagedIdentityEndpoint(LoopbackServer):
    """This endpoint as a child process on 127.0.0.1; ``env()`` is what a service process needs to use it."""

    name: ClassVar[str] = "fake-managed-identity"
    ready_path: ClassVar[str] = "/_fake/health"

    secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    lifetime: int = 3600

    def argv(self) -> list[str]:
        argv = [sys.executable, "-m", "lc2backup.testing.azure.identity", "--port", str(self.port)]
        # "--secret=…": a secret that starts with "-" (token_urlsafe may) is otherwise read as an option
        return [*argv, f"--secret={self.secret}", "--lifetime", str(self.lifetime)]

    @property
    def token_url(self) -> str:
        return f"{self.endpoint}{TOKEN_PATH}"

    def env(self) -> dict[str, str]:
        """``IDENTITY_ENDPOINT``/``IDENTITY_HEADER`` select App Service managed identity; ``AZURE_TOKEN_CREDENTIALS``
        narrows ``DefaultAzureCredential`` to ``ManagedIdentityCredential`` (no environment, workload identity,
        CLI or developer credentials tried first)."""
        return {
            "IDENTITY_ENDPOINT": self.token_url,
            "IDENTITY_HEADER": self.secret,
            "AZURE_TOKEN_CREDENTIALS": "managedidentitycredential",
        }

    def state(self) -> Json:
        """``{"issued": [token, ...], "resources": [resource, ...], "requests": n, "refused": n, "lifetime": s}``."""
        return self._call("GET", "state")

    def issued(self) -> list[str]:
        return list(self.state()["issued"])

    def configure(self, lifetime: int) -> None:
        """Tokens issued from now on are valid for ``lifetime`` seconds."""
        self._call("POST", "configure", {"lifetime": lifetime})

    def reset(self) -> None:
        """Forget issued tokens and counts (the tokens stay valid until they expire)."""
        self._call("POST", "reset", {})

    def _call(self, method: str, path: str, body: Json | None = None) -> Json:
        result: Json = call_json(f"{self.endpoint}/_fake/{path}", method, body, timeout=10)
        return result


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
