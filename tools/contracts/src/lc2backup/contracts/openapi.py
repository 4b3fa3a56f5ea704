"""openapi.json: the projection API's OpenAPI document, from the archiver's own FastAPI app.

The app is built with resources it never opens: ``.openapi()`` only reads the routes, and the lifespan (which
would connect to PostgreSQL and NATS) runs only when the app is served.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from lc2backup.archiver.api import ApiResources, create_app


@asynccontextmanager
async def _never_opened() -> AsyncIterator[ApiResources]:
    raise RuntimeError("the contracts generator never serves the API")
    yield


def openapi_document() -> dict[str, Any]:
    return create_app(open_resources=_never_opened).openapi()
