"""A local HTTP server that replays recorded (or constructed) source responses on 127.0.0.1.

Used by the tests (real Scrapy downloads, no stubbed downloader), by ``veille demo`` (a machine with
no network replays recorded sources through the whole pipeline) and by the benchmark.

A *bundle* is a folder with ``routes.jsonl``: one JSON object per line,
``{"path": "/x", "query": "a=1" | "contains": ["..."], "status": 200, "headers": {...},
"body": "bodies/file", "fault": null}``; ``veille crawl --record DIR`` writes the same format.
A route matches a request on its path, and on its exact query or on substrings of the decoded query
(SPARQL queries carry dates, so bundles match them on stable fragments). First match wins.

Conditional GET: every 200 route has an ETag (from its body unless given) and answers
``If-None-Match`` / ``If-Modified-Since`` with 304. Scripted faults: ``hang`` (say nothing),
``reset`` (close the socket), ``truncate`` (Content-Length larger than the body sent), ``huge``
(announce and stream a body of ``size`` bytes), ``huge_nolength`` (stream it with no length).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote_plus, urlsplit

DEFAULT_ROBOTS = b"User-agent: *\nAllow: /\n"


@dataclass
class Route:
    path: str
    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    query: str | None = None  # exact raw query, if given
    contains: list[str] = field(default_factory=list)  # substrings of the decoded query
    fault: str | None = None  # hang | reset | truncate | huge | huge_nolength
    size: int = 50_000_000  # for huge faults
    hang_seconds: float = 30.0
    etag: bool = True  # add an ETag computed from the body when none is given

    def matches(self, path: str, query: str) -> bool:
        if path != self.path:
            return False
        if self.query is not None and query != self.query:
            return False
        decoded = unquote_plus(query)
        return all(c in decoded for c in self.contains)

    def response_headers(self) -> dict[str, str]:
        headers = {k.title(): v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
        if self.status == 200 and self.etag and "Etag" not in headers:
            headers["Etag"] = '"' + hashlib.sha1(self.body).hexdigest()[:20] + '"'
        return headers


HOP_HEADERS = {"content-length", "transfer-encoding", "connection", "content-encoding", "date", "keep-alive"}


def load_bundle(bundle_dir: str | Path) -> list[Route]:
    """Routes of a bundle folder (``routes.jsonl`` + body files)."""
    base = Path(bundle_dir)
    routes = []
    for n, line in enumerate((base / "routes.jsonl").read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            spec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{base / 'routes.jsonl'}:{n}: JSON invalide : {exc.msg}") from None
        body = (base / spec["body"]).read_bytes() if spec.get("body") else b""
        routes.append(
            Route(
                path=spec["path"],
                body=body,
                status=int(spec.get("status", 200)),
                headers=dict(spec.get("headers", {})),
                query=spec.get("query") if spec.get("query") is not None and not spec.get("contains") else None,
                contains=list(spec.get("contains", [])),
                fault=spec.get("fault"),
            )
        )
    return routes


class ReplayServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, routes: list[Route] | None = None, host: str = "127.0.0.1", port: int = 0):
        super().__init__((host, port), _Handler)
        self.routes: list[Route] = list(routes or [])
        self.log: list[dict] = []
        self.lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def add(self, route: Route, first: bool = True) -> Route:
        """Add a route; ``first`` makes it override earlier routes for the same request."""
        with self.lock:
            self.routes.insert(0, route) if first else self.routes.append(route)
        return route

    def remove(self, route: Route) -> None:
        with self.lock:
            self.routes.remove(route)

    def find(self, path: str, query: str) -> Route | None:
        with self.lock:
            return next((r for r in self.routes if r.matches(path, query)), None)

    def requests_for(self, path: str) -> list[dict]:
        return [r for r in self.log if r["path"] == path]

    def start(self) -> ReplayServer:
        self._thread = threading.Thread(target=self.serve_forever, name="replay-server", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self.shutdown()
        self.server_close()

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Handler(BaseHTTPRequestHandler):
    server: ReplayServer
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: object) -> None:  # silence stderr
        return None

    def do_GET(self) -> None:
        self._serve(head=False)

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        self._serve(head=False, extra_query=body)

    def _serve(self, head: bool, extra_query: str = "") -> None:
        parts = urlsplit(self.path)
        query = "&".join(filter(None, [parts.query, extra_query]))
        self.server.log.append(
            {"method": self.command, "path": parts.path, "query": query, "headers": dict(self.headers.items())}
        )
        route = self.server.find(parts.path, query)
        if route is None and parts.path == "/robots.txt":
            route = Route(path="/robots.txt", body=DEFAULT_ROBOTS, headers={"Content-Type": "text/plain"})
        if route is None:
            return self._send(404, {"Content-Type": "text/plain"}, b"no recorded response for this URL\n", head)
        # The client may give up (size cap, timeout): that is the point of some faults.
        with contextlib.suppress(TimeoutError, BrokenPipeError, ConnectionResetError):
            self._answer(route, head)

    def _answer(self, route: Route, head: bool) -> None:
        if route.fault == "hang":
            time.sleep(route.hang_seconds)
            return self.close_connection_now()
        if route.fault == "reset":
            return self.close_connection_now(reset=True)
        headers = route.response_headers()
        if route.fault in ("huge", "huge_nolength"):
            return self._stream_huge(route, headers)
        if route.fault == "truncate":
            self.send_response(route.status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(route.body) * 2 + 100))
            self.end_headers()
            self.wfile.write(route.body[: max(1, len(route.body) // 2)])
            self.wfile.flush()
            return self.close_connection_now()
        if route.status == 200 and self._not_modified(headers):
            keep = {k: v for k, v in headers.items() if k in ("Etag", "Last-Modified", "Cache-Control")}
            return self._send(304, keep, b"", head=True)
        return self._send(route.status, headers, route.body, head)

    def _not_modified(self, headers: dict[str, str]) -> bool:
        inm = self.headers.get("If-None-Match")
        if inm and headers.get("Etag"):
            return headers["Etag"] in [t.strip() for t in inm.split(",")] or inm.strip() == "*"
        ims, lm = self.headers.get("If-Modified-Since"), headers.get("Last-Modified")
        if ims and lm:
            try:
                return parsedate_to_datetime(lm) <= parsedate_to_datetime(ims)
            except (TypeError, ValueError):
                return False
        return False

    def _send(self, status: int, headers: dict[str, str], body: bytes, head: bool) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head and body:
            self.wfile.write(body)

    def _stream_huge(self, route: Route, headers: dict[str, str]) -> None:
        self.send_response(route.status)
        for k, v in headers.items():
            self.send_header(k, v)
        if route.fault == "huge":
            self.send_header("Content-Length", str(route.size))
        self.end_headers()
        chunk = b"<item>" + b"x" * 65_530
        sent = 0
        while sent < route.size:
            self.wfile.write(chunk)
            sent += len(chunk)
        self.close_connection_now()

    def close_connection_now(self, reset: bool = False) -> None:
        self.close_connection = True
        if reset:  # RST instead of FIN: SO_LINGER with a zero timeout
            import struct

            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
