"""Helpers for the alerts tests: notices and label scores in a real archive, an SMTP server, a Slack server."""

from __future__ import annotations

import errno
import json
import socket
import threading
import time
from datetime import UTC, datetime
from email import message_from_bytes
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from sqlmodel import select

from core.records import NoticeRecord
from storage.db import session_scope
from storage.ingest import ingest
from storage.models import LabelScore

DATA = Path(__file__).parent / "data" / "alerts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_smtp(handler, **kw):
    """A started aiosmtpd ``Controller`` on 127.0.0.1 and a free port (its ``.port``). The port is free when
    chosen, but another process (a second test run, an outgoing connection) may take it before the server
    binds it: then another port is tried, instead of failing the test."""
    from aiosmtpd.controller import Controller

    for attempt in range(10):
        ctl = Controller(handler, hostname="127.0.0.1", port=free_port(), **kw)
        try:
            ctl.start()
            return ctl
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE or attempt == 9:
                raise
    raise AssertionError("unreachable")


def add_notice(engine, external_id: str, **kw) -> int:
    base = dict(source="cellar-acts", external_id=external_id, kind="act", published_at=datetime.now(UTC))
    base.update(kw)
    stats = ingest(engine, [NoticeRecord(**base)])
    return stats.changed_ids[0]


def classify_as(engine, notice_id: int, *labels: str, settings=None) -> dict[str, float]:
    """Score a notice by the real classifier (``nlp.classify``, the rules of ``settings``' home, the shipped
    HAS ones by default) and check that it selects ``labels``: a test's notice must carry the words a unit's
    rules look for, as real notices do. Returns the selected labels' scores."""
    from core.config import load_settings
    from nlp.classify import classify

    classify(engine, settings or load_settings(), [notice_id])
    with session_scope(engine) as s:
        rows = s.exec(select(LabelScore).where(LabelScore.notice_id == notice_id, LabelScore.selected))
        got = {r.label: r.score for r in rows}
    assert set(labels) <= set(got), f"notice {notice_id}: the rules select {got}, not {labels}"
    return got


def _kind(row: dict) -> str:
    celex = row.get("celex") or ""
    if celex[:1] == "3":
        return "act"
    if celex[:1] == "5" and ("PC" in celex or "DC" in celex):
        return "proposal"
    title = row["title"].lower()
    if "guidance" in title or "guideline" in title or "orientations" in title:
        return "guidance"
    return "news"


def load_dev_notices(engine, limit: int | None = None, settings=None) -> list[int]:
    """The realistic notices copied from the development set, ingested, then scored by the real classifier
    (``nlp.classify``, the shipped rules of ``settings``' home, no model): real scores and explanations."""
    from core.config import load_settings
    from nlp.classify import classify

    rows = [json.loads(line) for line in (DATA / "notices.jsonl").read_text(encoding="utf-8").splitlines()]
    ids = []
    for row in rows[:limit]:
        lang = row.get("lang", "en")
        rec = NoticeRecord(
            source={"eurlex": "cellar-acts", "commission": "sante-public-health", "ema": "ema-news"}.get(
                row["source"], row["source"]
            ),
            external_id=row["id"],
            url=row.get("url"),
            celex=row.get("celex"),
            kind=_kind(row),
            published_at=datetime.fromisoformat(row["date"]).replace(tzinfo=UTC),
            **{f"title_{lang}": row["title"], f"summary_{lang}": row.get("summary")},
        )
        ids.append(ingest(engine, [rec]).changed_ids[0])
    classify(engine, settings or load_settings(), ids)
    return ids


def write_config(home: Path, extra: str = "") -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "veille.toml").write_text('profile = "has"\n' + extra, encoding="utf-8")


def write_routing(home: Path, text: str) -> Path:
    path = home / "profiles" / "has" / "routing.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# --- a real SMTP server ------------------------------------------------------------------------------


class Inbox:
    """aiosmtpd handler that keeps every accepted message; can refuse DATA while ``down``."""

    def __init__(self) -> None:
        self.envelopes: list = []
        self.down = False

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd hook name
        if self.down:
            return "451 4.3.0 try again later"
        self.envelopes.append(envelope)
        return "250 OK"

    def messages(self):
        return [message_from_bytes(e.content, policy=default_policy) for e in self.envelopes]


# --- a local HTTP server speaking the Slack Web API and webhook shapes -------------------------------------


class SlackServer:
    """Answers the scripted statuses first (429 with Retry-After, 500...), then 200; keeps the posts."""

    def __init__(self) -> None:
        self.script: list[tuple[int, dict]] = []  # (status, headers) answered before the next 200s
        self.scripts: dict[str, list[tuple[int, dict]]] = {}  # the same, per path prefix ("/api/", "/hooks/")
        self.posts: list[dict] = []
        self.attempts: list[tuple[str, float]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                server.attempts.append((self.path, time.monotonic()))
                queue = next((q for p, q in server.scripts.items() if self.path.startswith(p)), server.script)
                if queue:
                    status, headers = queue.pop(0)
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    is_api = self.path.startswith("/api/")
                    payload = json.dumps({"ok": False, "error": "ratelimited" if status == 429 else "internal_error"})
                    out = (payload if is_api else ("rate_limited" if status == 429 else "server_error")).encode()
                    self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                    return
                if self.headers.get("Content-Type", "").startswith("application/json"):
                    data = json.loads(body)
                else:  # WebClient posts JSON for chat.postMessage with blocks; form otherwise
                    from urllib.parse import parse_qs

                    data = {k: v[0] for k, v in parse_qs(body.decode()).items()}
                server.posts.append({"path": self.path, "auth": self.headers.get("Authorization"), **data})
                if self.path.startswith("/api/"):
                    out = json.dumps({"ok": True, "channel": data.get("channel"), "ts": f"{time.time():.6f}"}).encode()
                    ctype = "application/json"
                else:
                    out, ctype = b"ok", "text/plain"
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> SlackServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def dev_digest_html(engine, settings, recipient: str = "veille-deai@has-sante.fr") -> str:
    """The HTML digest a unit receives for the realistic development-set notices (one failed source)."""
    from alerts.config import load_routing
    from alerts.jobs import Renderer, batch_id
    from alerts.render import html_body
    from alerts.routing import digest_due, load_candidates
    from storage.runs import finish_run, start_run

    ids = load_dev_notices(engine, settings=settings)
    run = start_run(engine, "ema-news", "rss")
    finish_run(engine, run, ok=False, error="https://www.ema.europa.eu/en/news.xml : HTTP 503 (service indisponible)")
    now = datetime.now(UTC)
    routing = load_routing(settings)
    cands = load_candidates(engine, ids=ids)
    mine = [d.notice_id for d in digest_due(routing, list(cands.values())) if d.recipient.address == recipient]
    digest = Renderer(engine, settings, routing, now).digest(batch_id("digest", now.date(), "email", recipient), mine)
    return html_body(digest)
