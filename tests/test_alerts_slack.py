"""Slack delivery against a local HTTP server speaking the Web API and webhook shapes."""

import datetime as dt
import json
from email.utils import format_datetime

import pytest
from sqlmodel import select

import alerts
from alerts.digest import Digest, Group, Item, Section
from alerts.slack import MAX_BLOCKS, MAX_SECTION, payloads, retry_after_seconds
from core.config import load_settings
from storage.db import session_scope
from storage.models import Delivery
from tests.alerts_support import SlackServer, add_notice, classify_as, write_config, write_routing

MONDAY = dt.datetime(2026, 11, 23, 7, tzinfo=dt.UTC)
ROUTING = """
[labels.numerique]
slack = ["#veille-numerique"]
webhooks = ["direction"]
[webhooks.direction]
"""


@pytest.fixture
def engine(sqlite_url):
    """SQLite only: the outbox is the same code on PostgreSQL (tested in test_alerts_routing), and retries are slow."""
    from storage.db import open_archive

    return open_archive(sqlite_url)


@pytest.fixture
def slack():
    with SlackServer() as server:
        yield server


@pytest.fixture
def settings(veille_home, slack, monkeypatch):
    write_config(veille_home, f'[slack]\nbase_url = "{slack.base}/api/"\n')
    write_routing(veille_home, ROUTING)
    monkeypatch.setenv("VEILLE_SLACK_TOKEN", "xoxb-test-token")
    monkeypatch.setenv("VEILLE_WEBHOOK_DIRECTION", f"{slack.base}/hooks/T000/B000/secret")
    return load_settings()


def seed(engine, n=1):
    ids = []
    for k in range(n):
        nid = add_notice(
            engine,
            f"ai-{k}",
            title_fr=f"Lignes directrices sur l'intelligence artificielle en santé n°{k}",
            kind="guidance",
            url=f"https://digital-strategy.ec.europa.eu/{k}",
        )
        classify_as(engine, nid, "numerique")
        ids.append(nid)
    return ids


def rows(engine):
    with session_scope(engine) as s:
        return [
            (r.recipient, r.status, r.attempts, r.last_error) for r in s.exec(select(Delivery).order_by(Delivery.id))
        ]


def test_429_with_retry_after_and_500_before_200(engine, settings, slack):
    seed(engine)
    # Web API: 429 (Retry-After 1 s), then 500, then 200. Webhook: 500, 429, then 200.
    # (slack-sdk counts attempts across its handlers: the budget is the largest max_retry_count.)
    slack.scripts = {
        "/api/": [(429, {"Retry-After": "1"}), (500, {})],
        "/hooks/": [(500, {}), (429, {"Retry-After": "1"})],
    }
    stats = alerts.send_digests(engine, settings, now=MONDAY)
    assert stats.sent == 2 and stats.failed == 0, stats.errors
    api = [p for p in slack.posts if p["path"] == "/api/chat.postMessage"]
    hooks = [p for p in slack.posts if p["path"].startswith("/hooks/")]
    assert len(api) == 1 and len(hooks) == 1  # one accepted post each, despite four refusals
    assert len(slack.attempts) == 6
    assert api[0]["auth"] == "Bearer xoxb-test-token" and api[0]["channel"] == "#veille-numerique"
    blocks = json.dumps(api[0]["blocks"], ensure_ascii=False)
    assert "Lignes directrices sur l'intelligence artificielle en santé n°0" in blocks
    # The real explanation: the rule's French description and the words as written in the title.
    assert "_Pourquoi :_ Intelligence artificielle appliquée à la santé : « intelligence artificielle »" in blocks
    assert "channel" not in hooks[0] and hooks[0]["blocks"] == api[0]["blocks"]
    first_429, after = slack.attempts[0][1], slack.attempts[1][1]
    assert after - first_429 >= 1.0  # Retry-After was honoured
    assert {s for _, s, _, _ in rows(engine)} == {"sent"}


def test_rate_limited_beyond_retries_fails_then_next_run_sends_once(engine, settings, slack):
    seed(engine)
    # Retry-After far away (an HTTP date): not worth waiting in this run.
    later = format_datetime(dt.datetime.now(dt.UTC) + dt.timedelta(hours=1), usegmt=True)
    slack.script = [(429, {"Retry-After": later}), (429, {"Retry-After": "3600"})]
    stats = alerts.send_digests(engine, settings, now=MONDAY)
    assert stats.failed == 2 and stats.sent == 0
    errors = {e for *_, e in rows(engine)}
    assert any("429" in e for e in errors)
    assert not any("secret" in e for e in errors)  # the webhook URL is never in an error
    stats = alerts.send_digests(engine, settings, now=MONDAY + dt.timedelta(hours=2))
    assert stats.sent == 2 and len(slack.posts) == 2
    alerts.send_digests(engine, settings, now=MONDAY + dt.timedelta(days=1))
    assert len(slack.posts) == 2


def test_retry_after_http_date():
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert retry_after_seconds("Thu, 01 Jan 2026 00:00:30 GMT", now) == 30
    assert retry_after_seconds("7", now) == 7
    assert retry_after_seconds("soon", now) is None


def test_long_digest_is_split_within_slack_limits():
    items = [
        Item(
            i,
            "Titre " + "x" * 5000,
            "",
            dt.date(2026, 1, 1),
            "src",
            "https://e.eu",
            "résumé " * 200,
            "news",
            "numerique",
            0.9,
            [],
            ["r"],
        )
        for i in range(130)
    ]
    d = Digest(
        "digest",
        "#c",
        "slack",
        dt.date(2026, 1, 2),
        None,
        [Section("numerique", "Numérique", [Group("news", "Actualités", items)])],
    )
    parts = payloads(d, "#c")
    assert len(parts) == 3
    assert all(len(p["blocks"]) <= MAX_BLOCKS for p in parts)
    texts = [b["text"]["text"] for p in parts for b in p["blocks"] if b["type"] == "section"]
    assert all(len(t) <= MAX_SECTION for t in texts)
    assert sum("Titre" in t for t in texts) == 130  # nothing lost in the split


def test_multi_part_message_resumes_after_accepted_parts(engine, settings, slack, monkeypatch):
    monkeypatch.setattr("alerts.slack.BACKOFF", 0.05)  # the 5xx retries of this test, quickly
    seed(engine, 60)  # 60 items: two posts per recipient
    # Web API: part 1 accepted, part 2 refused (500 three times: retries exhausted).
    slack.script = []
    original = slack.httpd.RequestHandlerClass.do_POST

    def flaky(handler):
        if (
            handler.path.startswith("/api/")
            and len([p for p in slack.posts if p["path"].startswith("/api/")]) == 1
            and slack.fail_api
        ):
            slack.script = [(500, {})]
        return original(handler)

    slack.fail_api = True
    slack.httpd.RequestHandlerClass.do_POST = flaky
    stats = alerts.send_digests(engine, settings, now=MONDAY)
    assert stats.failed == 60 and stats.sent == 60  # webhook fine; the API message half-sent
    assert len([p for p in slack.posts if p["path"].startswith("/api/")]) == 1
    slack.fail_api = False
    stats = alerts.send_digests(engine, settings, now=MONDAY + dt.timedelta(hours=1))
    api = [p for p in slack.posts if p["path"].startswith("/api/")]
    assert stats.sent == 60 and len(api) == 2  # only part 2 was posted again, part 1 not twice
    assert "partie 1/2" in json.dumps(api[0]["blocks"], ensure_ascii=False)
    assert "partie 2/2" in json.dumps(api[1]["blocks"], ensure_ascii=False)
