"""Where a request came from, recorded in the event that opens a backup or a restore.

Its own module because both a backup's command (``commands``) and a restore's (``restoring``) carry one, and the
events (``events``) import the restore's models: here it depends on neither.
"""

from __future__ import annotations

from typing import Literal

from lc2backup.domain.wire import WireModel

SourceKind = Literal["nats", "api", "kubernetes"]


class RequestSource(WireModel):
    """Where the request came from; for Kubernetes, the CR it belongs to."""

    kind: SourceKind
    command_id: str | None = None
    namespace: str | None = None
    name: str | None = None
    uid: str | None = None
    generation: int | None = None
