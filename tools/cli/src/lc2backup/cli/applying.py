"""``lc2backup apply -f FILE``: send a BackupRequest manifest through the API or straight to NATS.

Both ways are idempotent like ``kubectl apply``: the manifest's namespace/name is the request id, sent as
the API's ``Idempotency-Key`` or as the JetStream ``Nats-Msg-Id``, so re-applying the same manifest, either
way, names the same backup instead of starting a second one (``backup_id_for_manifest``, docs/requests.md).
Nothing is sent unless the manifest validates locally.
"""

from __future__ import annotations

import asyncio
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import nats
import nats.errors
import typer
from nats.js.api import PubAck
from nats.js.errors import APIError, NoStreamResponseError

from lc2backup.cli.client import ProjectionApi
from lc2backup.cli.errors import CliError, NotConfigured, Unreachable, handle_errors
from lc2backup.cli.locating import api_url, nats_url
from lc2backup.cli.manifests import Manifest, load_manifest
from lc2backup.cli.options import ApiOption, NatsOption
from lc2backup.cli.rendering import make_console
from lc2backup.cli.watching import follow, report
from lc2backup.eventing import Topology
from lc2backup.eventing.permissions import INBOX_ROOT, inbox_prefix


class Via(StrEnum):
    api = "api"
    nats = "nats"


def submit_via_api(api: ProjectionApi, manifest: Manifest) -> str:
    accepted = api.request_backup(manifest.raw_spec, idempotency_key=manifest.request_id)
    backup_id: str = accepted["backupId"]
    return backup_id


async def _quiet(_exc: Exception) -> None:
    """nats-py logs every connection error itself; the CLI reports the one that matters instead."""


async def publish_via_nats(url: str, manifest: Manifest, topology: Topology | None = None) -> PubAck:
    topology = topology or Topology()
    try:
        user = urlsplit(url).username  # a NATS user may only receive replies below its own inbox prefix
        inbox = inbox_prefix(user) if user else INBOX_ROOT
        nc = await nats.connect(url, connect_timeout=3, allow_reconnect=False, error_cb=_quiet, inbox_prefix=inbox)
    except (OSError, nats.errors.Error, TimeoutError) as exc:
        raise Unreachable(f"cannot connect to NATS at {url}: {exc or type(exc).__name__}") from exc
    try:
        ack: PubAck = await nc.jetstream(timeout=5).publish(
            topology.request_subject,
            manifest.command(),
            stream=topology.commands_stream,
            headers={"Nats-Msg-Id": manifest.request_id},
        )
        return ack
    except NoStreamResponseError as exc:
        raise NotConfigured(
            f"no JetStream stream takes {topology.request_subject} on {url}",
            hint="the services create the streams at start-up: are they running? (`make status`)",
        ) from exc
    except APIError as exc:
        raise CliError(f"JetStream refused the command: {exc.description or exc}") from exc
    except nats.errors.TimeoutError as exc:
        raise Unreachable(f"NATS at {url} did not acknowledge the command in time") from exc
    finally:
        await nc.close()


@handle_errors
def apply(
    filename: Annotated[Path, typer.Option("--filename", "-f", help="BackupRequest manifest (YAML); - for stdin")],
    via: Annotated[Via, typer.Option(help="Send through the projection API or publish to NATS")] = Via.api,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Follow the backup until it ends")] = False,
    timeout: Annotated[float, typer.Option(help="With --watch: give up (exit 3) after this many seconds")] = 3600.0,
    api: ApiOption = None,
    nats_option: NatsOption = None,
) -> None:
    """Request the backup a BackupRequest manifest describes (re-applying it is the same backup)."""
    console = make_console()
    manifest = load_manifest(filename)
    # every endpoint is resolved before anything is sent: a request is never left half-done by a missing flag
    api_base = api_url(api) if via is Via.api or watch else None
    summary: dict[str, Any] = {}
    if api_base is not None and via is Via.api:
        with ProjectionApi(api_base) as client:
            backup_id = submit_via_api(client, manifest)
        summary["sent"] = f"POST {api_base}/api/v1/backups (Idempotency-Key: {manifest.request_id})"
    else:
        url = nats_url(nats_option)
        ack = asyncio.run(publish_via_nats(url, manifest))
        backup_id = manifest.nats_backup_id()
        summary["sent"] = (
            f"{url} {Topology().request_subject} (stream seq {ack.seq}, Nats-Msg-Id {manifest.request_id})"
        )
        if ack.duplicate:
            summary["note"] = "unchanged: JetStream already has this manifest's command (same Nats-Msg-Id)"
    console.print(f"backuprequest/{manifest.resource} applied via {via.value}", highlight=False)
    console.print(f"  backup id  [bold]{backup_id}[/]", highlight=False)
    for key, value in summary.items():
        console.print(f"  {key:<9}  {value}", highlight=False, markup=False)
    if api_base is None or not watch:
        flag = f" --api {api}" if api else ""
        console.print(f"  watch it   lc2backup watch {backup_id}{flag}", highlight=False, markup=False)
        return
    with ProjectionApi(api_base) as client:
        watched = follow(client, backup_id, console, timeout=timeout)
    raise typer.Exit(report(console, make_console(stderr=True), backup_id, watched, timeout))
