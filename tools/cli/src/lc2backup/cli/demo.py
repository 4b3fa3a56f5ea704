"""``lc2backup demo`` (``make demo``): one whole backup of a Liferay-like environment, from nothing, in seconds,
then restored and proven.

A fresh stack under ``<state dir>/demo``, a seeded ``lportal`` database and ``liferay-dl`` store, the six
services as real processes, then ``deploy/samples/backuprequest-local.yaml`` applied through the API and
watched to the end (``--provider gcp`` or ``azure``: through that provider, against local stand-ins of the
cloud, a ``CloudDemo``). It shows what a user would check afterwards (the API's view, where the artefacts are,
what was skipped), restores the backup into a new database and a new prefix of the backup bucket (environment
``<env>-restored``), verifies it (a scratch restore compared with what the backup recorded: the verdict's
tables, rows and objects) and always stops everything it started, Ctrl-C included. A provider that cannot
restore in this build is said so, and the demo still ends with its backup.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Protocol

import typer
from rich.console import Console
from rich.rule import Rule

from lc2backup.cli.applying import submit_via_api
from lc2backup.cli.client import ProjectionApi
from lc2backup.cli.demoazure import AzureDemo
from lc2backup.cli.demodata import DemoData, DemoSize, prepare, s3_client, services_env
from lc2backup.cli.demogcp import GcpDemo
from lc2backup.cli.devstate import default_state_dir
from lc2backup.cli.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, InvalidInput, StackFailure, handle_errors
from lc2backup.cli.manifests import Manifest, load_manifest
from lc2backup.cli.options import StateDirOption
from lc2backup.cli.rendering import human_bytes, human_duration, make_console
from lc2backup.cli.restoring import follow_restore, report_restore
from lc2backup.cli.signals import Stop, stop_on_signals
from lc2backup.cli.stackview import SAMPLE
from lc2backup.cli.watching import follow, report
from lc2backup.devstack import LocalStack, ServiceSet, StackError


class CloudDemo(Protocol):
    """A cloud's stand-ins for one demo run, beside the local stack: started, seeded, described, stopped."""

    sample: str  # the BackupRequest applied by default
    stand_ins: str  # what ``start`` starts, for the first step's line
    guide: str  # where to read on after a Succeeded demo

    def start(self) -> None: ...
    def prepare(self, stack: LocalStack, size: DemoSize) -> DemoData: ...
    def env(self) -> dict[str, str]: ...
    def where(self) -> str: ...
    def artefacts(self, wanted: dict[str, str | None]) -> dict[str, tuple[str, int | None]]: ...
    def stop(self) -> None: ...


CLOUDS: dict[str, Callable[[Path], CloudDemo]] = {"gcp": GcpDemo, "azure": AzureDemo}


def find_sample(sample: str = SAMPLE) -> Path:
    """A sample manifest, from the working directory or from the source tree this package runs from."""
    for base in (Path.cwd(), *Path(__file__).resolve().parents):
        candidate = base / sample
        if candidate.is_file():
            return candidate
    raise InvalidInput(f"cannot find {sample}", hint="run from the repository, or pass --manifest FILE")


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def _wanted(doc: dict[str, Any]) -> dict[str, str | None]:
    """The artefacts to show: label -> location as the API gives it."""
    status = doc["status"]
    return {
        "metadata.json": doc.get("metadataLocation"),
        "database dump": (status["database"].get("export") or {}).get("location"),
        "doclib manifest": (status["documentLibrary"].get("transfer") or {}).get("manifestLocation"),
    }


async def _artefacts(endpoint: str, wanted: dict[str, str | None]) -> dict[str, tuple[str, int | None]]:
    """Each artefact's URI and the size the store reports for it (read back, not taken from the events)."""
    found: dict[str, tuple[str, int | None]] = {}
    async with s3_client(endpoint) as s3:
        for label, uri in wanted.items():
            if not uri:
                continue
            bucket, key = _split(uri)
            try:
                head = await s3.head_object(Bucket=bucket, Key=key)
                found[label] = (uri, int(head["ContentLength"]))
            except s3.exceptions.ClientError:
                found[label] = (uri, None)
    return found


def _summary(console: Console, where: str, doc: dict[str, Any], data: DemoData, artefacts: Any) -> None:
    status = doc["status"]
    counters = status["documentLibrary"].get("counters") or {}
    transfer = status["documentLibrary"].get("transfer") or {}
    console.print(Rule("the projection API's view: GET /api/v1/backups/" + doc["backupId"]))
    console.print_json(data=doc)
    console.print(Rule("artefacts"))
    console.print(where, highlight=False)
    for label, (uri, size) in artefacts.items():
        console.print(f"{label:<16} {uri}  ({human_bytes(size) if size is not None else 'MISSING'})", highlight=False)
    if transfer.get("destination"):
        copied = f"{counters.get('objectsCopied', 0)} objects, {human_bytes(counters.get('bytesCopied'))}"
        console.print(f"{'document library':<16} {transfer['destination']}  ({copied})", highlight=False)
    console.print(
        f"generated files  {counters.get('objectsExcluded', 0)} skipped of {data.generated_objects} in the store "
        f"({human_bytes(counters.get('bytesExcluded'))}: thumbnails, previews, adaptive renditions; "
        "Liferay regenerates them)",
        highlight=False,
    )


def _restore_and_verify(
    api: ProjectionApi, console: Console, err: Console, backup_id: str, sample: Manifest, timeout: float
) -> int:
    """Steps 5 and 6: the backup restored into new targets, then verified; the exit code."""
    spec, bucket = sample.spec, sample.spec.document_library.destination_bucket
    target, prefix = f"{spec.environment}-restored", f"restored/{spec.environment}/"
    request = {
        "backupId": backup_id,
        "target": {"projectId": spec.project_id, "environment": target},
        "documentLibrary": {"bucket": bucket, "prefix": prefix},
    }
    console.print(
        f"[bold]5/6[/] restoring backup {backup_id} into {spec.project_id}/{target}: a new database, and the"
        f" prefix {prefix} of bucket {bucket}",
        highlight=False,
    )
    restore_id = api.request_restore(request, None)["restoreId"]
    watched = follow_restore(api, restore_id, console, timeout=timeout)
    problems = ((watched.doc or {}).get("status") or {}).get("problems") or []
    if any(p.get("type") == "provider_capability" for p in problems):
        console.print(f"      [yellow]not restored[/]: {problems[0]['message']}", highlight=False)
        return EXIT_OK
    code = report_restore(console, err, restore_id, watched, timeout, {})
    if code != EXIT_OK:
        return code
    plan = (watched.doc or {}).get("status", {}).get("plan") or {}
    database = plan.get("database") or {}
    if database:
        where = f"{database.get('targetInstance')}/{database.get('targetDatabase')}"
        console.print(f"      database restored as {where}", highlight=False)
    console.print(f"[bold]6/6[/] verifying backup {backup_id}: a scratch restore compared with what it recorded")
    verification = api.verify(backup_id, None)["restoreId"]
    watched = follow_restore(api, verification, console, timeout=timeout)
    return report_restore(console, err, verification, watched, timeout, {})


@handle_errors
def demo(
    manifest: Annotated[Path | None, typer.Option(help=f"BackupRequest to apply (default: {SAMPLE})")] = None,
    directory: StateDirOption = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the backup to finish")] = 90.0,
    scale: Annotated[int, typer.Option(help="Database size: 1 is a few MB", min=1)] = 1,
    files: Annotated[int, typer.Option(help="Objects in the document library", min=10)] = 400,
    provider: Annotated[
        str, typer.Option(help="local: the embedded stack; gcp or azure: that provider against local stand-ins")
    ] = "local",
) -> None:
    """Back up a Liferay-like environment on a fresh embedded stack, end to end."""
    console, err = make_console(), make_console(stderr=True)
    started = time.monotonic()
    if provider != "local" and provider not in CLOUDS:
        raise InvalidInput(f"--provider {provider}: the demo runs local, gcp or azure", hint="make demo PROVIDER=azure")
    where = (directory or default_state_dir() / "demo").resolve()
    cloud = CLOUDS[provider](where) if provider in CLOUDS else None
    sample = load_manifest(manifest or find_sample(cloud.sample if cloud is not None else SAMPLE))
    LocalStack(where).remove()  # a demo always starts from nothing
    stack = LocalStack(where)
    services: ServiceSet | None = None
    code = EXIT_FAILED
    timings: dict[str, float] = {}
    with stop_on_signals():
        try:
            mark = time.monotonic()
            extra = f" and {cloud.stand_ins}" if cloud is not None else ""
            console.print(f"[bold]1/6[/] starting NATS, PostgreSQL and SeaweedFS{extra} in {where}")
            stack.start()
            if cloud is not None:
                cloud.start()
            timings["servers"] = time.monotonic() - mark

            mark = time.monotonic()
            console.print("[bold]2/6[/] seeding a Liferay-like environment")
            size = DemoSize(scale=scale, files=files)
            data = cloud.prepare(stack, size) if cloud is not None else prepare(stack, size)
            console.print(
                f"      database lportal: {human_bytes(data.database_bytes)};  bucket liferay-dl: {data.objects} "
                f"objects, {human_bytes(data.object_bytes)}, {data.generated_objects} of them generated files",
                highlight=False,
            )
            timings["seeding"] = time.monotonic() - mark

            mark = time.monotonic()
            console.print("[bold]3/6[/] starting crd-gateway, db-export, doclib-transfer, metadata, archiver, restorer")
            env = {**services_env(stack, data), **(cloud.env() if cloud is not None else {})}
            services = ServiceSet(env, where / "logs", nats_users=stack.nats.users, nats_url=stack.nats.service_url)
            services.start()
            timings["services"] = time.monotonic() - mark

            mark = time.monotonic()
            console.print(f"[bold]4/6[/] applying {sample.origin} through the API ({services.api_url})")
            with ProjectionApi(services.api_url, token=services.api_token) as api:
                backup_id = submit_via_api(api, sample)
                console.print(f"      backup {backup_id}", highlight=False)
                watched = follow(api, backup_id, console, timeout=timeout)
                code = report(console, err, backup_id, watched, timeout)
                doc = api.get(backup_id) if watched.doc is not None else None
                timings["backup"] = time.monotonic() - mark

                if doc is not None:
                    if cloud is not None:
                        place, artefacts = cloud.where(), cloud.artefacts(_wanted(doc))
                    else:
                        place = (
                            f"S3 endpoint      {stack.s3.endpoint}  (SeaweedFS; access key lc2-dev / lc2-dev-secret)"
                        )
                        artefacts = asyncio.run(_artefacts(stack.s3.endpoint, _wanted(doc)))
                    _summary(console, place, doc, data, artefacts)
                if code == EXIT_OK:
                    mark = time.monotonic()
                    code = _restore_and_verify(api, console, err, backup_id, sample, timeout)
                    timings["restore and verification"] = time.monotonic() - mark
            if code != EXIT_OK:
                for name, svc in services.services.items():
                    tail = svc.process.log_tail(25) if svc.process else ""
                    err.print(Rule(f"{name} log (last lines)"))
                    err.print(tail, markup=False, highlight=False)
        except Stop as stop:
            err.print(f"{stop}: stopping everything")
            code = EXIT_INTERRUPTED
        except StackError as exc:
            raise StackFailure(str(exc)) from exc
        finally:
            mark = time.monotonic()
            if services is not None:
                services.stop()
            if cloud is not None:
                cloud.stop()
            stack.stop()
            timings["stopping"] = time.monotonic() - mark
    elapsed = time.monotonic() - started
    steps = ", ".join(f"{name} {human_duration(seconds)}" for name, seconds in timings.items())
    console.print(Rule())
    console.print(f"elapsed {human_duration(elapsed)} ({steps}); everything stopped, state kept in {where}")
    if code == EXIT_OK:
        then = "`make up` runs the same stack and keeps it running" if cloud is None else cloud.guide
        console.print(f"[bold green]demo Succeeded[/]: {then}")
    raise typer.Exit(code)
