"""An HTTPS reverse proxy in front of Azurite that makes Copy Blob pending, counts writes and injects 503s.

Azurite completes every Copy Blob at once, so the pending path of ``start_copy_from_url`` (poll the
destination's ``x-ms-copy-status``, abort) cannot be tested against it alone. This proxy passes every request
through unchanged (method, raw path and query, headers including ``Authorization``, body streamed) to Azurite's
HTTPS endpoint, trusting the test CA, and serves the same certificate itself. Except:

* **Copy Blob** (``PUT`` with ``x-ms-copy-source``, no ``comp``, no ``x-ms-blob-type`` (Put Blob From URL) and no
  ``x-ms-requires-sync`` (synchronous Copy Blob From URL)): forwarded; on success the destination
  (``account/container/blob``) is counted in ``copies_started``. In pending mode (``/_fake/configure``
  ``{"pending_polls": N}`` or ``{"hold": true}``) the response says ``x-ms-copy-status: pending`` and the
  destination stays pending in the proxy: its next N property reads (``HEAD``, or ``GET`` without ``comp``)
  answer ``x-ms-copy-status: pending`` and ``x-ms-copy-progress: <half>/<length>``; the read after those
  reports what Azurite says (``success``). A held copy stays pending until ``/_fake/release`` or an abort.
  Listings (``GET ?comp=list``) are not rewritten. The data is in Azurite from the start: a pending
  destination is readable through the proxy, which Azure would not allow in full.
* **Abort Copy Blob** (``PUT ?comp=copy&copyid=<id>``, ``x-ms-copy-action: abort``) is answered by the proxy:
  for a destination pending here with that copy id, the destination blob in Azurite is overwritten with a
  zero-length block blob keeping its metadata (Azure leaves "length zero ... metadata unchanged"), later
  reads through the proxy add ``x-ms-copy-status: aborted`` and ``x-ms-copy-id``, and the answer is 204;
  ``aborts`` is counted. The aborted marker goes when the blob is written or deleted again. Not pending:
  409 ``NoPendingCopyOperation``; another copy id: 409 ``CopyIdMismatch`` (Azure's codes and XML body).
* **Writes**: every successful Put Blob, Put Block List, Put Blob From URL and Copy Blob is counted per
  destination (``writes``), the evidence for "each blob written once".
* **503**: ``/_fake/busy {"count": N}`` answers the next N data-plane requests 503 ``ServerBusy`` with
  ``Retry-After: 1`` and Azure's XML error body; ``busy`` counts them.

Test control (plain JSON over plain HTTP on a second port, so ``call_json`` needs no TLS): ``/_fake/health``,
``/_fake/state``, ``/_fake/configure``, ``/_fake/release``, ``/_fake/busy``, ``/_fake/reset``. Both ports bind
127.0.0.1. The access log names the request line and status, never a header. Run as ``python -m
lc2backup.testing.azure.copyproxy --port P --tls-port T --upstream URL --cert C --key K --ca CA``;
``PendingCopyProxy`` starts it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import re
import signal
import ssl
import sys
import urllib.parse
import uuid
from collections import Counter
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from typing import Any, ClassVar

from aiohttp import ClientSession, ClientTimeout, TCPConnector, web
from multidict import CIMultiDict
from yarl import URL

from lc2backup.devstack.ports import LOOPBACK, free_port
from lc2backup.devstack.servers import LoopbackServer, call_json

Json = dict[str, Any]

log = logging.getLogger("azure-copy-proxy")

HOP_BY_HOP = frozenset(
    h.lower()
    for h in (
        "Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "TE", "Trailer",
        "Transfer-Encoding", "Upgrade", "Host",
    )
)  # fmt: skip
CONTENT_RANGE = re.compile(r"bytes \d+-\d+/(\d+)")
X_MS_VERSION = "2025-01-05"


def blob_key(raw_path: str) -> str | None:
    """``account/container/blob`` for a blob URL path (percent-decoded), None for account or container paths."""
    parts = raw_path.lstrip("/").split("/", 2)
    if len(parts) < 3 or not parts[2]:
        return None
    return "/".join(urllib.parse.unquote(p) for p in parts)


def azure_error(status: int, code: str, message: str, extra: dict[str, str] | None = None) -> web.Response:
    request_id = str(uuid.uuid4())
    text = f"{message}\nRequestId:{request_id}\nTime:{formatdate(usegmt=True)}"
    body = f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code><Message>{text}</Message></Error>'
    headers = {"x-ms-error-code": code, "x-ms-request-id": request_id, "x-ms-version": X_MS_VERSION}
    return web.Response(status=status, text=body, content_type="application/xml", headers={**headers, **(extra or {})})


@dataclass
class Pending:
    copy_id: str
    remaining: int
    hold: bool

    def to_json(self) -> Json:
        return {"copy_id": self.copy_id, "remaining": self.remaining, "hold": self.hold}


@dataclass
class Proxy:
    upstream: str
    session: ClientSession
    pending_polls: int = 0
    hold: bool = False
    busy_remaining: int = 0
    pending: dict[str, Pending] = field(default_factory=dict)
    aborted: dict[str, str] = field(default_factory=dict)  # destination -> aborted copy id
    copies_started: Counter[str] = field(default_factory=Counter)
    writes: Counter[str] = field(default_factory=Counter)
    copies: list[Json] = field(default_factory=list)
    aborts: int = 0
    busy: int = 0
    requests: int = 0
    pending_reads: int = 0

    # --- data plane ---

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        if self.busy_remaining > 0:
            self.busy_remaining -= 1
            self.busy += 1
            await request.read()
            return azure_error(
                503,
                "ServerBusy",
                "The server is currently unable to receive requests. Please retry your request.",
                {"Retry-After": "1"},
            )
        query = request.rel_url.query
        comp = query.get("comp")
        key = blob_key(request.raw_path.split("?", 1)[0])
        headers = request.headers
        abort = headers.get("x-ms-copy-action", "").lower() == "abort"
        if request.method == "PUT" and comp == "copy" and key is not None and abort:
            return await self.abort(request, key, query.get("copyid", ""))
        kind = None
        if request.method == "PUT" and key is not None:
            if comp is None and "x-ms-copy-source" in headers:
                sync = "x-ms-blob-type" in headers or headers.get("x-ms-requires-sync", "").lower() == "true"
                kind = "put" if sync else "copy"
            elif comp is None or comp == "blocklist":
                kind = "put"
        is_read = request.method in ("HEAD", "GET") and comp is None and key is not None
        async with self.forward(request) as upstream:
            out = CIMultiDict((k, v) for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP)
            ok = 200 <= upstream.status < 300
            if kind is not None and key is not None and ok:
                self.writes[key] += 1
                self.aborted.pop(key, None)
                self.pending.pop(key, None)
                if kind == "copy":
                    self.started_copy(key, headers["x-ms-copy-source"], out)
            elif request.method == "DELETE" and key is not None and comp is None and ok:
                self.aborted.pop(key, None)
                self.pending.pop(key, None)
            elif is_read and key is not None and ok:
                self.rewrite_read(key, out)
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason, headers=out)
            if upstream.content_length is not None:
                response.content_length = upstream.content_length
            await response.prepare(request)
            if request.method != "HEAD":
                async for chunk in upstream.content.iter_chunked(1 << 16):
                    await response.write(chunk)
            await response.write_eof()
            return response

    def forward(self, request: web.Request) -> Any:
        headers = CIMultiDict((k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP)
        data = request.content.iter_chunked(1 << 16) if request.body_exists else None
        url = URL(self.upstream + request.raw_path, encoded=True)
        return self.session.request(
            request.method,
            url,
            headers=headers,
            data=data,
            allow_redirects=False,
            skip_auto_headers=("Content-Type", "Accept-Encoding", "User-Agent", "Accept"),
        )

    def started_copy(self, key: str, source: str, out: CIMultiDict[str]) -> None:
        copy_id = out.get("x-ms-copy-id", "")
        self.copies_started[key] += 1
        self.copies.append({"destination": key, "source": source, "copy_id": copy_id})
        if self.hold or self.pending_polls > 0:
            self.pending[key] = Pending(copy_id, self.pending_polls, self.hold)
            out["x-ms-copy-status"] = "pending"

    def rewrite_read(self, key: str, out: CIMultiDict[str]) -> None:
        if key in self.aborted:
            out["x-ms-copy-status"] = "aborted"
            out["x-ms-copy-id"] = self.aborted[key]
            out["x-ms-copy-status-description"] = "The copy operation was aborted."
            out.pop("x-ms-copy-progress", None)
            return
        pending = self.pending.get(key)
        if pending is None:
            return
        if not pending.hold and pending.remaining <= 0:
            del self.pending[key]
            return
        self.pending_reads += 1
        if not pending.hold:
            pending.remaining -= 1
        total = self.blob_length(out)
        out["x-ms-copy-status"] = "pending"
        out["x-ms-copy-id"] = pending.copy_id
        out["x-ms-copy-progress"] = f"{total // 2}/{total}"
        out.pop("x-ms-copy-completion-time", None)

    @staticmethod
    def blob_length(out: CIMultiDict[str]) -> int:
        match = CONTENT_RANGE.fullmatch(out.get("Content-Range", ""))
        if match:
            return int(match.group(1))
        return int(out.get("Content-Length", "0") or 0)

    async def abort(self, request: web.Request, key: str, copy_id: str) -> web.StreamResponse:
        await request.read()
        pending = self.pending.get(key)
        if pending is None:
            return azure_error(409, "NoPendingCopyOperation", "There is currently no pending copy operation.")
        if pending.copy_id and copy_id != pending.copy_id:
            return azure_error(
                409, "CopyIdMismatch", "The specified copy ID did not match the copy ID for the pending copy operation."
            )
        await self.truncate(request, key)
        del self.pending[key]
        self.aborted[key] = pending.copy_id
        self.aborts += 1
        request_id = str(uuid.uuid4())
        return web.Response(
            status=204,
            headers={"x-ms-request-id": request_id, "x-ms-version": request.headers.get("x-ms-version", X_MS_VERSION)},
        )

    async def truncate(self, request: web.Request, key: str) -> None:
        """Overwrite the destination in Azurite with zero bytes, keeping its metadata (the caller's token)."""
        auth = {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "x-ms-version", "x-ms-date")}
        url = URL(self.upstream + request.raw_path.split("?", 1)[0], encoded=True)
        async with self.session.head(url, headers=auth) as head:
            meta = {k: v for k, v in head.headers.items() if k.lower().startswith("x-ms-meta-")}
            content_type = head.headers.get("Content-Type", "application/octet-stream")
        put = {**auth, **meta, "x-ms-blob-type": "BlockBlob", "Content-Type": content_type}
        async with self.session.put(url, headers=put, data=b"") as resp:
            if resp.status >= 300:
                log.warning("abort: truncating %s in Azurite answered %s", key, resp.status)

    # --- test control ---

    def state(self) -> Json:
        return {
            "config": {"pending_polls": self.pending_polls, "hold": self.hold},
            "copies_started": dict(self.copies_started),
            "copies_total": sum(self.copies_started.values()),
            "copies": self.copies,
            "pending": {k: v.to_json() for k, v in self.pending.items()},
            "pending_reads": self.pending_reads,
            "aborted": dict(self.aborted),
            "aborts": self.aborts,
            "writes": dict(self.writes),
            "busy": self.busy,
            "busy_remaining": self.busy_remaining,
            "requests": self.requests,
        }

    async def c_health(self, _request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def c_state(self, _request: web.Request) -> web.Response:
        return web.json_response(self.state())

    async def c_configure(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        if "pending_polls" in body:
            self.pending_polls = max(0, int(body["pending_polls"] or 0))
        if "hold" in body:
            self.hold = bool(body["hold"])
        return web.json_response(self.state()["config"])

    async def c_release(self, request: web.Request) -> web.Response:
        path = (await json_body(request)).get("path")
        released = [k for k in self.pending if path is None or k == path]
        for k in released:
            del self.pending[k]
        return web.json_response({"released": released})

    async def c_busy(self, request: web.Request) -> web.Response:
        self.busy_remaining = max(0, int((await json_body(request)).get("count") or 0))
        return web.json_response({"busy_remaining": self.busy_remaining})

    async def c_reset(self, _request: web.Request) -> web.Response:
        self.pending_polls, self.hold, self.busy_remaining = 0, False, 0
        self.pending.clear()
        self.aborted.clear()
        self.copies_started.clear()
        self.writes.clear()
        self.copies.clear()
        self.aborts = self.busy = self.requests = self.pending_reads = 0
        return web.json_response({})


async def json_body(request: web.Request) -> Json:
    if not request.can_read_body:
        return {}
    body = await request.json()
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="a JSON object is required")
    return body


def data_app(proxy: Proxy) -> web.Application:
    app = web.Application(client_max_size=0)
    app.router.add_route("*", "/{tail:.*}", proxy.handle)
    return app


def control_app(proxy: Proxy) -> web.Application:
    app = web.Application()
    app.router.add_get("/_fake/health", proxy.c_health)
    app.router.add_get("/_fake/state", proxy.c_state)
    app.router.add_post("/_fake/configure", proxy.c_configure)
    app.router.add_post("/_fake/release", proxy.c_release)
    app.router.add_post("/_fake/busy", proxy.c_busy)
    app.router.add_post("/_fake/reset", proxy.c_reset)
    return app


async def serve(args: argparse.Namespace) -> None:
    client_tls = ssl.create_default_context(cafile=str(args.ca))
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(str(args.cert), str(args.key))
    timeout = ClientTimeout(total=None, sock_connect=10)
    async with ClientSession(connector=TCPConnector(ssl=client_tls), timeout=timeout, auto_decompress=False) as session:
        proxy = Proxy(args.upstream.rstrip("/"), session)
        fmt = '"%r" %s %Tfs'
        runners = [web.AppRunner(data_app(proxy), access_log_format=fmt), web.AppRunner(control_app(proxy))]
        for runner in runners:
            await runner.setup()
        await web.TCPSite(runners[0], args.host, args.tls_port, ssl_context=server_tls).start()
        await web.TCPSite(runners[1], args.host, args.port).start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        log.info(
            "copy proxy on https://%s:%d -> %s, control http://%s:%d",
            args.host,
            args.tls_port,
            args.upstream,
            args.host,
            args.port,
        )
        await stop.wait()
        for runner in reversed(runners):
            await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default=LOOPBACK)
    parser.add_argument("--port", type=int, required=True, help="control API, plain http")
    parser.add_argument("--tls-port", type=int, required=True, help="the proxied Blob endpoint, https")
    parser.add_argument("--upstream", required=True, help="Azurite's https endpoint, e.g. https://127.0.0.1:10000")
    parser.add_argument("--cert", type=Path, required=True)
    parser.add_argument("--key", type=Path, required=True)
    parser.add_argument("--ca", type=Path, required=True, help="the CA that signed Azurite's certificate")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(serve(args))


# --- the wrapper tests use ---------------------------------------------------------------------------------


@dataclass
class PendingCopyProxy(LoopbackServer):
    """The proxy as a child process: ``account_url`` replaces Azurite's; ``endpoint`` is the plain-http control API."""

    name: ClassVar[str] = "azure-copy-proxy"
    ready_path: ClassVar[str] = "/_fake/health"

    upstream: str
    cert: Path
    key: Path
    ca: Path
    account: str = "devstoreaccount1"
    tls_port: int = field(default_factory=free_port)

    def argv(self) -> list[str]:
        argv = [sys.executable, "-m", "lc2backup.testing.azure.copyproxy", "--host", LOOPBACK]
        argv += ["--port", str(self.port), "--tls-port", str(self.tls_port), "--upstream", self.upstream]
        return [*argv, "--cert", str(self.cert), "--key", str(self.key), "--ca", str(self.ca)]

    @property
    def blob_endpoint(self) -> str:
        return f"https://{LOOPBACK}:{self.tls_port}"

    @property
    def account_url(self) -> str:
        return f"{self.blob_endpoint}/{self.account}"

    def configure(self, pending_polls: int | None = None, hold: bool | None = None) -> Json:
        """Copies started from now on stay pending for ``pending_polls`` property reads, or (``hold``) until
        released or aborted. ``configure(0, False)`` turns pending mode off."""
        body: Json = {}
        if pending_polls is not None:
            body["pending_polls"] = pending_polls
        if hold is not None:
            body["hold"] = hold
        return self._call("POST", "configure", body)

    def release(self, path: str | None = None) -> list[str]:
        """Complete the pending copy to ``path`` (``account/container/blob``), or all of them."""
        result: list[str] = self._call("POST", "release", {} if path is None else {"path": path})["released"]
        return result

    def busy(self, count: int) -> None:
        """The next ``count`` Blob requests get 503 ServerBusy with ``Retry-After: 1``."""
        self._call("POST", "busy", {"count": count})

    def state(self) -> Json:
        """``{"config": {"pending_polls", "hold"}, "copies_started": {path: n}, "copies_total": n,
        "copies": [{"destination", "source", "copy_id"}], "pending": {path: {"copy_id", "remaining", "hold"}},
        "pending_reads": n, "aborted": {path: copy_id}, "aborts": n, "writes": {path: n}, "busy": n,
        "busy_remaining": n, "requests": n}``; paths are ``account/container/blob``."""
        return self._call("GET", "state")

    def reset(self) -> None:
        """Forget counts, pending and aborted copies; pending mode and busy injection off."""
        self._call("POST", "reset", {})

    def _call(self, method: str, path: str, body: Json | None = None) -> Json:
        result: Json = call_json(f"{self.endpoint}/_fake/{path}", method, body, timeout=10)
        return result


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
