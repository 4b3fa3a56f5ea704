"""A fake stage in front of moto, at the network edge: it forwards every request and, on demand, answers
the way real AWS does where moto cannot.

moto makes snapshots ``available`` and exports ``complete`` at once, never throttles and never stalls.
The stage can (per operation, identified from the wire request as AWS would route it):

- ``set_fields``: rewrite fields of moto's XML answer (``Status``, ``PercentProgress``,
  ``TotalExtractedDataInGB``, ``FailureCause``): a snapshot ``creating``, an export ``IN_PROGRESS``;
- ``fail``: answer the next N requests with an AWS error (``Throttling``, ``SlowDown``, ``AccessDenied``);
- ``stall``: forward the request (moto acts on it) but hold the answer, as if the caller crashed
  between the cloud call and recording it.

It counts every request per operation, so a test can assert what reached "AWS", and keeps the parameters of
each RDS request (``calls``: which snapshot a restore named, which identifier). A plain threaded
``http.server``: it serves while the test's event loop is blocked (e.g. restarting a service).
"""

from __future__ import annotations

import http.client
import re
import threading
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "expect",
    "proxy-connection",
    "te",
    "upgrade",
    "server",
    "date",
}


def operation_of(method: str, target: str, headers: dict[str, str], body: bytes) -> str:
    """The API operation of a request: RDS (query protocol, ``Action=``) or S3 (REST, path-style)."""
    url = urllib.parse.urlsplit(target)
    query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
    if method == "POST" and url.path == "/" and b"Action=" in body:
        return urllib.parse.parse_qs(body.decode())["Action"][0]
    segments = [s for s in url.path.split("/") if s]
    copy = "x-amz-copy-source" in headers
    if method == "PUT":
        if "partNumber" in query:
            return "UploadPartCopy" if copy else "UploadPart"
        if len(segments) == 1:
            return "CreateBucket"
        return "CopyObject" if copy else "PutObject"
    if method == "POST":
        return "CreateMultipartUpload" if "uploads" in query else "CompleteMultipartUpload"
    if method == "HEAD":
        return "HeadBucket" if len(segments) == 1 else "HeadObject"
    if method == "DELETE":
        return "AbortMultipartUpload" if "uploadId" in query else "DeleteObject"
    if len(segments) <= 1:
        return "ListObjectsV2" if segments else "ListBuckets"
    return "GetObject"


def _rds_error(code: str, message: str) -> bytes:
    return (
        '<ErrorResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/"><Error><Type>Sender</Type>'
        f"<Code>{code}</Code><Message>{message}</Message></Error><RequestId>stage</RequestId></ErrorResponse>"
    ).encode()


def _s3_error(code: str, message: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message>{message}</Message>'
        "<RequestId>stage</RequestId></Error>"
    ).encode()


def rewrite_fields(xml: bytes, fields: dict[str, str]) -> bytes:
    """Set each ``<Name>value</Name>`` in every item of an RDS answer (inserted after ``</Status>``)."""
    text = xml.decode()
    for name, value in fields.items():
        element = f"<{name}>{value}</{name}>"
        pattern = re.compile(rf"<{name}>[^<]*</{name}>")
        found = pattern.search(text)
        text = pattern.sub(element, text) if found else text.replace("</Status>", f"</Status>{element}")
    return text.encode()


@dataclass
class _Failure:
    remaining: int
    status: int
    code: str
    message: str


@dataclass
class Stage:
    """The proxy; ``url`` is what the services use as their RDS / S3 endpoint."""

    upstream: str
    seen: Counter[str] = field(default_factory=Counter)
    injected: Counter[str] = field(default_factory=Counter)
    _fields: dict[str, dict[str, str]] = field(default_factory=dict)
    _failures: dict[str, _Failure] = field(default_factory=dict)
    _stalls: dict[str, int] = field(default_factory=dict)
    _stalled: Counter[str] = field(default_factory=Counter)
    _calls: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    _unstall: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Stage:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-stage", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._unstall.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    # -- controls -------------------------------------------------------------------------------------
    def set_fields(self, operation: str, fields: dict[str, str] | None) -> None:
        with self._lock:
            if fields is None:
                self._fields.pop(operation, None)
            else:
                self._fields[operation] = dict(fields)

    def fail(self, operation: str, times: int, code: str, status: int = 400, message: str = "injected") -> None:
        with self._lock:
            self._failures[operation] = _Failure(times, status, code, message)

    def stall(self, operation: str, times: int = 1) -> None:
        with self._lock:
            self._stalls[operation] = times

    def release_stalls(self) -> None:
        self._unstall.set()

    def count(self, operation: str) -> int:
        with self._lock:
            return self.seen[operation]

    def stalled(self, operation: str) -> int:
        with self._lock:
            return self._stalled[operation]

    def calls(self, operation: str) -> list[dict[str, str]]:
        """The parameters of every RDS request of ``operation`` that reached the stage, in order."""
        with self._lock:
            return [dict(params) for params in self._calls.get(operation, [])]

    # -- the proxy ------------------------------------------------------------------------------------
    def decide(
        self, operation: str, params: dict[str, str] | None = None
    ) -> tuple[_Failure | None, bool, dict[str, str] | None]:
        with self._lock:
            self.seen[operation] += 1
            if params is not None:
                self._calls.setdefault(operation, []).append(params)
            failure = self._failures.get(operation)
            if failure is not None and failure.remaining > 0:
                failure.remaining -= 1
                self.injected[operation] += 1
                return failure, False, None
            stall = self._stalls.get(operation, 0) > 0
            if stall:
                self._stalls[operation] -= 1
                self._stalled[operation] += 1
            return None, stall, self._fields.get(operation)

    def forward(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        url = urllib.parse.urlsplit(self.upstream)
        conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=60)
        try:
            conn.request(method, target, body=body if body or method in ("PUT", "POST") else None, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, {k: v for k, v in resp.getheaders() if k.lower() not in _HOP_BY_HOP}, data
        finally:
            conn.close()

    def wait_unstalled(self) -> None:
        self._unstall.wait(timeout=120)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    stage: ClassVar[Stage]

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while (size := int(self.rfile.readline().split(b";")[0], 16)) > 0:
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        body = self._body()
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        if "Content-Length" not in headers and body:
            headers["Content-Length"] = str(len(body))
        lowered = {k.lower(): v for k, v in headers.items()}
        operation = operation_of(self.command, self.path, lowered, body)
        rds = self.command == "POST" and self.path == "/"
        query = rds and b"Action=" in body  # an RDS request (query protocol): its parameters are kept
        params = dict(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True)) if query else None
        failure, stall, fields = self.stage.decide(operation, params)
        if failure is not None:
            render = _rds_error if rds else _s3_error
            self._reply(failure.status, {"Content-Type": "text/xml"}, render(failure.code, failure.message))
            return
        status, out_headers, data = self.stage.forward(self.command, self.path, headers, body)
        if fields and status == 200:
            data = rewrite_fields(data, fields)
        if stall:
            self.stage.wait_unstalled()
        self._reply(status, out_headers, data)

    def _reply(self, status: int, headers: dict[str, str], data: bytes) -> None:
        head = self.command == "HEAD"  # a HEAD answer keeps the object's Content-Length and has no body
        try:
            self.send_response(status)
            for key, value in headers.items():
                if head or key.lower() != "content-length":
                    self.send_header(key, value)
            if not head:
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if not head:
                self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the caller is gone (killed while we held its answer)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle


def _handler(stage: Stage) -> type[BaseHTTPRequestHandler]:
    return type("StageHandler", (_Handler,), {"stage": stage})
