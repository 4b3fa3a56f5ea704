"""Azure's server-side copy of one blob (Copy Blob), started once and followed to its end: the document-library
copy of a backup and of a restore both go through it.

The copy is started only if the destination is missing (``IfMissing``): a destination that exists holds a copy an
earlier attempt started or finished, which is adopted and followed, never started twice (``replace`` starts it
over what is there: a restore merging into a prefix that holds another version of the blob). A pending copy is
looked at every ``copy_poll_seconds``; one still pending ``copy_deadline_seconds`` after we began following it is
aborted at the server and fails. A destination holding a copy of another source is refused, naming it.
"""

from __future__ import annotations

import asyncio
import time
import urllib.parse
from typing import Any

from lc2backup.providers.azure.errors import AzureCall
from lc2backup.providers.azure.settings import AzureSettings
from lc2backup.providers.base import BranchCheck
from lc2backup.providers.errors import PermanentProviderError


class BlobCopier:
    """Copies into destinations (``BlobClient``s) with the grant ``grant`` names; ``still_running`` is asked
    between looks at a pending copy (a backup's branch that stopped stops waiting)."""

    def __init__(self, settings: AzureSettings, grant: str, still_running: BranchCheck | None = None) -> None:
        self._settings = settings
        self._grant = grant
        self._still_running = still_running

    def _call(self, resource: str) -> AzureCall:
        return AzureCall(self._grant, resource, "", self._settings.transient_retry_seconds)

    async def copy(self, url: str, name: str, destination: Any, *, replace: bool = False) -> Any | None:
        """The destination's properties once Azure has copied ``url`` (the blob ``name``) into it; None when the
        source vanished before the copy started."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

        call = self._call(f"copy of {name} to {destination.url}")
        condition = {} if replace else {"match_condition": MatchConditions.IfMissing}
        try:
            await destination.start_copy_from_url(url, **condition)
        except ResourceExistsError:
            pass  # copied, or being copied, by an earlier attempt: its status is read below
        except ResourceNotFoundError as exc:
            if getattr(exc, "error_code", None) in ("CannotVerifyCopySource", "BlobNotFound"):
                return None
            raise call.translate(exc) from exc
        except Exception as exc:
            raise call.translate(exc) from exc
        return await self.follow(name, destination, url, call)

    async def follow(self, name: str, destination: Any, url: str, call: AzureCall) -> Any:
        """Wait for the copy of ``url`` into ``destination`` to end; its properties (aborted past the deadline)."""
        deadline = time.monotonic() + self._settings.copy_deadline_seconds
        while True:
            try:
                props = await destination.get_blob_properties()
            except Exception as exc:
                raise call.translate(exc) from exc
            copy = props.copy
            if copy.source is not None and urllib.parse.urlsplit(copy.source).path != urllib.parse.urlsplit(url).path:
                raise PermanentProviderError(
                    f"{destination.url} already holds a copy of {copy.source}, not of {name}: it was written by"
                    " someone else"
                )
            status = str(copy.status or "success").lower()
            if status == "success":
                return props
            if status != "pending":
                raise PermanentProviderError(f"Azure reports the copy of {name} {status}: {copy.status_description}")
            if time.monotonic() >= deadline:
                await self._abort(destination, copy.id, call)
                raise PermanentProviderError(
                    f"the copy of {name} to {destination.url} was still pending ({copy.progress or 'no progress'})"
                    f" after {self._settings.copy_deadline_seconds:g} s (LC2_AZURE__COPY_DEADLINE_SECONDS): aborted"
                )
            if self._still_running is not None:
                await self._still_running()
            await asyncio.sleep(self._settings.copy_poll_seconds)

    @staticmethod
    async def _abort(destination: Any, copy_id: str, call: AzureCall) -> None:
        from azure.core.exceptions import HttpResponseError

        try:
            await destination.abort_copy(copy_id)
        except HttpResponseError as exc:
            if getattr(exc, "error_code", None) != "NoPendingCopyOperation":  # it ended meanwhile
                raise call.translate(exc) from exc
