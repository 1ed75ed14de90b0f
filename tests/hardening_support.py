"""Helpers for the hardening tests: a realistic replay corpus, real SMTP and Slack peers, ``veille run``
as a real subprocess, and the checks "each notice once, each delivery once" against the peers.

The corpus is built from real titles of the development set (nlp/data/has_dev_notices.jsonl): an
EUR-Lex feed in the documented item shape (docs/research/sources.md §2, as tests/test_scheduler.py builds
it), two news feeds, and a few constructed implementing acts of the HTA Regulation and the AI Act so
that the critical-alert path (immediate alerts by e-mail and Slack) runs too.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from html import escape
from pathlib import Path

from sqlmodel import select

from crawlers.replay.server import Route
from nlp.dataset import DEV_SET
from storage.db import session_scope
from storage.models import Delivery, Notice, Sighting
from tests.alerts_support import Inbox, SlackServer, start_smtp

ROOT = Path(__file__).resolve().parent.parent
RSS = {"Content-Type": "application/rss+xml; charset=utf-8"}

# Constructed critical acts (titles in the shape of the real HTA / AI Act implementing acts).
CRITICAL = [
    (
        f"3202{6 + k // 4}R0{101 + k}",
        f"Commission Implementing Regulation (EU) 2026/{101 + k} laying down rules for the application of "
        f"Regulation (EU) {act} as regards {what}",
    )
    for k, (act, what) in enumerate(
        [
            ("2021/2282", "joint clinical assessments of medicinal products for human use"),
            ("2021/2282", "the cooperation with the European Medicines Agency on joint scientific consultations"),
            ("2021/2282", "conflicts of interest of patient organisations and clinical experts"),
            ("2024/1689", "the template for the post-market monitoring plan of high-risk AI systems"),
        ]
    )
]


def more_critical(n: int, start: int = 201) -> list[tuple[str, str]]:
    """Further constructed HTA implementing acts (new CELEX numbers): new immediate alerts."""
    return [
        (
            f"32026R0{k}",
            f"Commission Implementing Regulation (EU) 2026/{k} laying down rules for the application of "
            f"Regulation (EU) 2021/2282 as regards the update {k - start + 1} of the joint clinical assessment reports",
        )
        for k in range(start, start + n)
    ]


def dev_items() -> list[dict]:
    return [json.loads(line) for line in DEV_SET.read_text(encoding="utf-8").splitlines() if line.strip()]


def _pub(day: str) -> str:
    return format_datetime(datetime.fromisoformat(day).replace(hour=10, tzinfo=UTC))


def eurlex_feed(items: list[tuple[str, str, str]]) -> bytes:
    """(celex, title, date) -> an EUR-Lex predefined feed (CELEX title prefix, CELLAR guid, empty description)."""
    out = ['<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>EUR-Lex</title>']
    for celex, title, day in items:
        out.append(
            f"<item><title>CELEX:{celex}: {escape(title)}</title><description/>"
            f"<link>https://eur-lex.europa.eu/./legal-content/AUTO/?uri=CELEX:{celex}</link>"
            f"<guid>https://eur-lex.europa.eu/./legal-content/AUTO/?uri=CELLAR:{celex}</guid>"
            f"<pubDate>{_pub(day)}</pubDate></item>"
        )
    return ("".join(out) + "</channel></rss>").encode()


def news_feed(tag: str, items: list[dict]) -> bytes:
    """Development-set news items as a Drupal-style feed (HTML escaped once more in the description)."""
    out = [f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>{tag}</title>']
    for it in items:
        out.append(
            f"<item><title>{escape(it['title'])}</title><link>{escape(it['url'])}</link>"
            f"<description>{escape('<p>' + escape(it['summary']) + '</p>')}</description>"
            f"<pubDate>{_pub(it['date'])}</pubDate><guid>{escape(it['id'])}</guid></item>"
        )
    return ("".join(out) + "</channel></rss>").encode()


@dataclass
class Corpus:
    routes: list[Route]
    sources: list[dict]  # for write_run_config: name, path
    n_items: int


def corpus(n_acts: int = 40, n_news: int = 30, critical: list[tuple[str, str]] = CRITICAL) -> Corpus:
    """One EUR-Lex feed (``n_acts`` real acts + the constructed critical ones) and two news feeds."""
    rows = dev_items()
    acts = [r for r in rows if r.get("celex", "").startswith("3") and r["lang"] == "en"][:n_acts]
    news = [r for r in rows if r["source"] in ("commission", "ema", "ai_office", "other")][: 2 * n_news]
    act_items = [(r["celex"], r["title"], r["date"]) for r in acts] + [(c, t, "2026-11-16") for c, t in critical]
    feeds = {
        "eurlex-oj": eurlex_feed(act_items),
        "sante-news": news_feed("DG SANTE", news[:n_news]),
        "ema-news": news_feed("EMA", news[n_news:]),
    }
    routes = [Route(path=f"/{name}.xml", body=body, headers=RSS) for name, body in feeds.items()]
    sources = [{"name": name, "path": f"/{name}.xml"} for name in feeds]
    return Corpus(routes, sources, len(act_items) + len(news))


# --- peers: a real SMTP server and a server speaking the Slack Web API ---------------------------------------


@dataclass
class Peers:
    inbox: Inbox
    smtp_port: int
    slack: SlackServer


class SlowInbox(Inbox):
    """An SMTP server that takes ``delay`` seconds to answer DATA (a busy relay): the hand-over window of
    each message lasts long enough to be observed from outside."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd hook
        import asyncio

        await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


@contextmanager
def peers(authenticator=None, smtp_delay: float = 0.0, **controller_kw):
    inbox = SlowInbox(smtp_delay) if smtp_delay else Inbox()
    kw = {"authenticator": authenticator, "auth_require_tls": False} if authenticator else {}
    ctl = start_smtp(inbox, **kw, **controller_kw)
    try:
        with SlackServer() as slack:
            yield Peers(inbox, ctl.port, slack)
    finally:
        ctl.stop()


def _wide_digest_window(home: Path) -> None:
    """The corpus's acts and news are a few years old: a profile copy whose digest window takes them all in, so
    that the digests carry them (the shipped 14 days would archive them unsent, which other tests cover)."""
    shipped = (ROOT / "core" / "profiles" / "has" / "profile.toml").read_text(encoding="utf-8")
    copy = home / "profiles" / "has" / "profile.toml"
    copy.parent.mkdir(parents=True, exist_ok=True)
    copy.write_text(shipped.replace("digest_window_days = 14", "digest_window_days = 3660"), encoding="utf-8")


def write_run_config(
    home: Path,
    base_url: str,
    p: Peers,
    sources: list[dict],
    smtp: str = "",
    extra: str = "",
    digest_time: str = "00:00",
) -> Path:
    """A config whose sources point at the replay server, e-mail to the SMTP peer, Slack to the Slack peer;
    digests due at every run by default (digest time 00:00, every day)."""
    home.mkdir(parents=True, exist_ok=True)
    _wide_digest_window(home)
    cfg = home / "veille.toml"
    lines = [
        'profile = "has"',
        "[crawl]",
        "download_delay = 0",
        "concurrent_per_host = 4",
        "retries = 0",
        "timeout = 10",
        "max_run_seconds = 120",
        "[smtp]",
        'host = "127.0.0.1"',
        f"port = {p.smtp_port}",
        "starttls = false",
        "timeout = 10",
        smtp,
        "[slack]",
        f'base_url = "{p.slack.base}/api/"',
        "[schedule]",
        f'digest_time = "{digest_time}"',
        'digest_days = "every"',
        extra,
    ]
    for s in sources:
        lines += [
            "[[sources]]",
            f'name = "{s["name"]}"',
            'kind = "rss"',
            f'url = "{base_url}{s["path"]}"',
            'languages = ["en"]',
        ]
    cfg.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return cfg


def veille_env(home: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "VEILLE_HOME": str(home), "COLUMNS": "200", "PYTHONUNBUFFERED": "1", **extra}
    env.setdefault("VEILLE_SLACK_TOKEN", "xoxb-hardening-test")
    return env


def veille_cmd(cfg: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "veille", "--config", str(cfg), *args]


def run_veille(cfg: Path, home: Path, *args: str, timeout: float = 240, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        veille_cmd(cfg, *args),
        cwd=ROOT,
        env=veille_env(home, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# --- what the archive and the peers hold ---------------------------------------------------------------------


def notice_identities(engine) -> tuple[Counter, Counter]:
    """How many notices per CELEX, and how many sightings per (source, external id)."""
    with session_scope(engine) as s:
        celex = Counter(c for c in s.exec(select(Notice.celex)) if c)
        sightings = Counter((src, ext) for src, ext in s.exec(select(Sighting.source, Sighting.external_id)))
    return celex, sightings


def deliveries(engine) -> list[Delivery]:
    with session_scope(engine) as s:
        return list(s.exec(select(Delivery).order_by(Delivery.id)))


def delivery_keys(engine, batch: str | None = None) -> dict[tuple[str, str, str, str], str]:
    """(notice URL, recipient, channel, purpose) -> status: comparable across archives (ids differ)."""
    query = select(Notice.url, Delivery.recipient, Delivery.channel, Delivery.purpose, Delivery.status).join(
        Notice, Notice.id == Delivery.notice_id
    )
    if batch is not None:
        query = query.where(Delivery.batch == batch)
    with session_scope(engine) as s:
        return {(u, r, c, p): st for u, r, c, p, st in s.exec(query)}


ITEM_URL_RE = re.compile(r"^  (https?://\S+)\r?$", re.M)  # an item's link, on its own line (digest.txt)
# <url|title> (alerts.escape.slack_link); not the item's "Fiche veille" and "EUR-Lex (FR)" links under it
SLACK_LINK_RE = re.compile(r"<(https?://[^|>]+)\|(?!Fiche veille>|EUR-Lex \((?:FR|EN)\)>)")


def _page(url: str) -> str:
    """The notice's URL of a link: items that share one listing page point into it (``#:~:text=``)."""
    return url.split("#:~:text=", 1)[0]


def received(p: Peers) -> Counter:
    """(notice URL, recipient, channel, purpose) -> how many messages the peers received carrying it."""
    got: Counter = Counter()
    for env, msg in zip(p.inbox.envelopes, p.inbox.messages(), strict=True):
        purpose = msg["X-Veille-Batch"].split(":", 1)[0]
        text = msg.get_body(("plain",)).get_content()
        for url in {_page(u) for u in ITEM_URL_RE.findall(text)}:
            for rcpt in env.rcpt_tos:
                got[(url, rcpt, "email", purpose)] += 1
    for post in p.slack.posts:
        if not post["path"].startswith("/api/"):
            continue
        blocks = post.get("blocks")
        blocks = json.loads(blocks) if isinstance(blocks, str) else blocks or []
        header = next((b["text"]["text"] for b in blocks if b["type"] == "header"), "")
        purpose = "alert" if "Alerte" in header else "reminder" if "Rappel" in header else "digest"
        texts = [b["text"]["text"] for b in blocks if b["type"] == "section"]
        urls = {_page(u.replace("&amp;", "&")) for t in texts for u in SLACK_LINK_RE.findall(t)}
        for url in urls:
            got[(url, post["channel"], "slack", purpose)] += 1
    return got


def age_sending_rows(engine, by: timedelta) -> int:
    """Time passes: rows a killed run left ``sending`` become stale, so the next run settles them."""
    from sqlalchemy import update

    with session_scope(engine, write=True) as s:
        rows = list(s.exec(select(Delivery).where(Delivery.status == "sending")))
        for r in rows:
            s.connection().execute(update(Delivery).where(Delivery.id == r.id).values(sent_at=r.sent_at - by))
    return len(rows)


@dataclass
class Measured:
    returncode: int
    seconds: float
    max_rss_mb: float  # peak RSS of the process and of every descendant it waited for (the crawl child)
    stdout: str
    stderr: str


def run_measured(cmd: list[str], env: dict[str, str], timeout: float, cwd: Path = ROOT) -> Measured:
    """Run ``cmd`` and read the peak RSS of its process tree (the command and the crawl child it waits for),
    through bench/peak_rss.py (a direct child of pytest would report pytest's own size)."""
    import tempfile
    import time

    from bench.peak_rss import measure

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.monotonic()
        returncode, max_rss_mb = measure(cmd, timeout, cwd=cwd, env=env, stdout=out, stderr=err)
        seconds = time.monotonic() - t0
        out.seek(0)
        err.seek(0)
        return Measured(
            returncode,
            seconds,
            max_rss_mb,
            out.read().decode("utf-8", "replace"),
            err.read().decode("utf-8", "replace"),
        )


def bulk_routes(n_feeds: int, per_feed: int) -> tuple[list[Route], list[dict]]:
    """``n_feeds`` news feeds of ``per_feed`` items each: real development-set titles and summaries, each
    item a distinct notice (own guid and link), as bench/crawl.py builds its archive."""
    rows = dev_items()
    routes, sources = [], []
    for f in range(n_feeds):
        items = []
        for i in range(per_feed):
            it = dict(rows[(f * per_feed + i) % len(rows)])
            it.update(id=f"bulk-{f}-{i}", url=f"https://example.eu/bulk/{f}/{i}_en", title=f"{it['title']} [{f}-{i}]")
            items.append(it)
        routes.append(Route(path=f"/bulk-{f}.xml", body=news_feed(f"bulk {f}", items), headers=RSS))
        sources.append({"name": f"bulk-{f}", "path": f"/bulk-{f}.xml"})
    return routes, sources
