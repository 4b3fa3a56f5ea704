"""Kubernetes Events on a CR's major transitions, so ``kubectl describe br`` (or ``rr``) tells the story.

Each Event's name is derived from what caused it (the id of the event recorded), so a redelivered
message creates nothing new: the API answers 409 and that is success. Events are best effort: a refusal
other than the API being unavailable is logged, never retried.
"""

from __future__ import annotations

import hashlib
import logging
import socket
from datetime import datetime

from lc2backup.crd_gateway.errors import KubernetesError, KubernetesUnavailable, ResourceConflict
from lc2backup.crd_gateway.kube import Json, KubeApi
from lc2backup.crd_gateway.projection import Transition, identity
from lc2backup.domain import API_GROUP, API_VERSION

log = logging.getLogger(__name__)
COMPONENT = "lc2backup-crd-gateway"


class EventRecorder:
    def __init__(self, api: KubeApi, enabled: bool = True) -> None:
        self._api = api
        self._enabled = enabled
        self._instance = socket.gethostname()

    async def record(self, kind: str, resource: Json, transition: Transition, key: str, at: datetime) -> None:
        """Create the Event on ``resource`` (of ``kind``) once per ``key``; raises only KubernetesUnavailable
        (retry the whole step)."""
        if not self._enabled:
            return
        namespace, name, uid, _ = identity(resource)
        digest = hashlib.sha256(f"{uid}/{key}".encode()).hexdigest()[:16]
        stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{name}.{digest}", "namespace": namespace},
            "involvedObject": {
                "apiVersion": f"{API_GROUP}/{API_VERSION}",
                "kind": kind,
                "namespace": namespace,
                "name": name,
                "uid": uid,
                "resourceVersion": (resource.get("metadata") or {}).get("resourceVersion"),
            },
            "type": transition.type,
            "reason": transition.reason,
            "message": transition.message,
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "reportingInstance": self._instance,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        try:
            await self._api.create_event(namespace, body)
        except ResourceConflict:
            return  # recorded before this redelivery
        except KubernetesUnavailable:
            raise
        except KubernetesError as exc:
            log.warning("event %s on %s/%s not recorded: %s", transition.reason, namespace, name, exc)
