"""What a running local stack looks like on screen: its URLs, credentials and processes, from ``stack.json``."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from lc2backup.cli.devstate import ENV_FILE, StackState, children
from lc2backup.cli.rendering import human_bytes, local_time

SAMPLE = "deploy/samples/backuprequest-local.yaml"


def _urls(doc: dict[str, Any], state: StackState, api_ready: bool | None) -> Table:
    demo, creds = doc.get("demo", {}), doc.get("s3Credentials", {})
    api = doc.get("api", {}).get("url", "-")
    if api_ready is not None:
        api += "  (ready)" if api_ready else "  (not answering)"
    s3 = f"{doc.get('s3', {}).get('endpoint', '-')}   key {creds.get('accessKeyId')} / {creds.get('secretAccessKey')}"
    database = f"{demo.get('database', '-')} ({human_bytes(demo.get('databaseBytes'))}) as {demo.get('instanceId')}"
    store = f"{demo.get('sourceObjects', 0)} objects, {human_bytes(demo.get('sourceBytes'))}"
    nats = doc.get("nats", {})
    rows = [
        ("projection API", f"{api}   docs: {doc.get('api', {}).get('docs', '-')}"),
        ("NATS", f"{nats.get('url', '-')}   monitor: {nats.get('monitor', '-')}"),
        ("PostgreSQL", doc.get("postgres", {}).get("dsn", "-")),
        ("S3 (SeaweedFS)", s3),
        ("demo database", database),
        ("databases", ", ".join(doc.get("databases") or []) + "   (instance ids; LC2_LOCAL__DATABASES adds yours)"),
        ("demo buckets", f"{demo.get('sourceBucket', '-')} ({store}) -> {demo.get('backupBucket', '-')}"),
        ("logs", doc.get("logs", "-")),
        ("environment", f"source {state.path.parent / ENV_FILE}"),
        ("started", local_time(doc.get("startedAt"))),
    ]
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for key, value in rows:
        grid.add_row(key, escape(str(value)))
    return grid


def _service_state(svc: dict[str, Any], running: bool) -> Text:
    """``running``, or ``down`` with why and when it comes back; with the restarts so far."""
    if svc.get("state") == "down" or not running:
        text = Text("down", style="bold red")
        if svc.get("lastExit"):
            text.append(f" ({svc['lastExit']} at {local_time(svc.get('lastExitAt'))})")
        if svc.get("nextRestartAt"):
            text.append(f", restarting at {local_time(svc['nextRestartAt'])}")
        if svc.get("lastError"):
            text.append(f"; last attempt: {svc['lastError'].splitlines()[0]}")
    else:
        text = Text("running", style="green")
        if svc.get("lastExit"):
            text.append(f" (last {svc['lastExit']} at {local_time(svc.get('lastExitAt'))})", style="yellow")
    return text


def down_services(state: StackState) -> list[str]:
    """The services the supervisor records as down, or that no longer run under it."""
    live = children(state)
    return [
        name for name, svc in state.doc.get("services", {}).items() if svc.get("state") == "down" or name not in live
    ]


def _processes(state: StackState) -> Table:
    doc = state.doc
    table = Table(show_edge=False, header_style="bold", pad_edge=False)
    for column in ("PROCESS", "PID", "STATE", "RESTARTS", "URL"):
        table.add_column(
            column, no_wrap=column not in ("URL", "STATE"), justify="right" if column == "RESTARTS" else "left"
        )
    urls = {
        "nats": doc.get("nats", {}).get("url"),
        "postgres": doc.get("postgres", {}).get("dsn"),
        "s3": doc.get("s3", {}).get("endpoint"),
        **{name: svc.get("url") for name, svc in doc.get("services", {}).items()},
    }
    live = children(state)
    services = doc.get("services", {})
    for role, pid in state.pids().items():
        running = role in live
        if role in services:
            shown, restarts = _service_state(services[role], running), str(services[role].get("restarts", 0))
        else:
            shown, restarts = (Text("running", style="green") if running else Text("stopped", style="red")), ""
        table.add_row(role, str(pid), shown, restarts, escape(urls.get(role) or ""))
    return table


def stack_view(state: StackState, api_ready: bool | None = None) -> RenderableType:
    heading = Text.assemble(("LC2 Backup local stack", "bold"), f"  {state.path.parent}")
    hint = Text(f"try: lc2backup apply -f {SAMPLE} --watch", style="dim")
    parts: list[RenderableType] = [heading, _urls(state.doc, state, api_ready), Text(""), _processes(state)]
    down = down_services(state)
    if down:
        warning = f"down: {', '.join(down)} (the supervisor restarts them; logs in {state.doc.get('logs', '-')})"
        parts.append(Text(warning, style="bold red"))
    return Group(*parts, Text(""), hint)
