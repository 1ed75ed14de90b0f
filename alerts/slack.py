"""Slack: Block Kit messages through slack-sdk (``WebClient.chat_postMessage`` or ``WebhookClient``).

Retries: slack-sdk only retries connection errors by default; we add rate-limit (429, honouring
Retry-After, also when it is an HTTP date, which crashes the stock handler) and server-error (500,
503) handlers. A webhook answers 429/5xx without raising: the status code is checked here.
Limits: at most 50 blocks per message and 3000 characters per section text; a long digest is
split into several posts. Every crawled string is mrkdwn-escaped (``alerts.escape``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.error import URLError

from slack_sdk import WebClient, WebhookClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler
from slack_sdk.http_retry.builtin_handlers import ServerErrorRetryHandler
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator

from alerts.delivery import Rejected
from alerts.digest import Digest, Item
from alerts.escape import clean, mrkdwn, slack_link
from core.dates import fr_date, paris_time

MAX_BLOCKS = 50
MAX_SECTION = 3000
MAX_HEADER = 150
MAX_WAIT = 60.0  # longer Retry-After: give up now, the outbox retries on the next run
BACKOFF = 0.5  # seconds, doubled at each retry of a 5xx or a connection error


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: an integer or an HTTP date (RFC 9110). None if unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class RetryAfterHandler(RateLimitErrorRetryHandler):
    """The stock 429 handler, reading Retry-After as seconds or as an HTTP date, with a cap."""

    def _wait(self, response: Any) -> float | None:
        for k, v in (response.headers or {}).items():
            if k.lower() == "retry-after":
                return retry_after_seconds(v[0] if isinstance(v, list) else v)
        return None

    def _can_retry(self, *, state, request, response=None, error=None) -> bool:
        if response is None or response.status_code != 429:
            return False
        wait = self._wait(response)
        return wait is None or wait <= MAX_WAIT

    def prepare_for_next_attempt(self, *, state, request, response=None, error=None) -> None:
        wait = self._wait(response)
        state.next_attempt_requested = True
        time.sleep((1.0 if wait is None else wait) + random.random())
        state.increment_current_attempt()


def retry_handlers() -> list:
    backoff = BackoffRetryIntervalCalculator(backoff_factor=BACKOFF)
    return [
        ConnectionErrorRetryHandler(max_retry_count=2, interval_calculator=backoff),
        RetryAfterHandler(max_retry_count=3),
        ServerErrorRetryHandler(max_retry_count=3, interval_calculator=backoff),
    ]


# --- Block Kit -----------------------------------------------------------------------------------


def _section(text: str) -> dict:
    if len(text) > MAX_SECTION:
        text = text[: MAX_SECTION - 1] + "…"
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(text: str) -> dict:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text[:MAX_SECTION]}]}


def item_block(i: Item) -> dict:
    meta = " · ".join(
        x for x in (mrkdwn(i.date_text), mrkdwn(i.source), mrkdwn(i.kind_name), f"score {i.score_text}") if x
    )
    lines = [f"*{slack_link(i.url, i.title, 600)}*" if i.url else f"*{mrkdwn(i.title, 600)}*"]
    if i.title_other:
        lines.append(f"_{mrkdwn(i.title_other, 300)}_")
    lines.append(meta + (f" · concerne aussi : {mrkdwn(', '.join(i.also), 200)}" if i.also else ""))
    if i.summary:
        lines.append(mrkdwn(i.summary, 600))
    if i.why:
        lines.append("_Pourquoi :_ " + mrkdwn(" ; ".join(i.why), 600))
    if i.links:
        lines.append(" · ".join(slack_link(url, name) for name, url in i.links))
    return _section("\n".join(lines))


def _head(d: Digest) -> list[dict]:
    if d.purpose == "alert":
        head = f"🚨 Alerte veille UE — {clean(d.rule, 100)}"
    elif d.purpose == "reminder":
        head = f"⏰ Rappel d'échéance — {clean(d.rule, 100)}"
    else:
        head = f"Veille réglementaire UE — {fr_date(d.day)}"
    out: list[dict] = [{"type": "header", "text": {"type": "plain_text", "text": clean(head, MAX_HEADER)}}]
    if d.purpose == "digest":
        since = f" depuis le {paris_time(d.since)}" if d.since else ""
        what = "Sources vérifiées, rien de nouveau" if d.nothing_new else f"{d.count} nouveauté{'s' * (d.count > 1)}"
        out.append(_context(f"{what}{since}" + (f"\n{d.archived_text}" if d.archived_text else "")))
    return out


def _deadlines(d: Digest) -> list[dict]:
    lines = [
        f"• *{mrkdwn(e.left_text)}* {mrkdwn(e.deadline_text)} · {mrkdwn(e.kind_name)} — "
        + (slack_link(e.url, e.title, 300) if e.url else mrkdwn(e.title, 300))
        for e in d.deadlines[:40]
    ]
    return [_section("*Échéances*\n" + "\n".join(lines))] if lines else []


def _sources(d: Digest) -> list[dict]:
    """The footer: sources whose runs failed, sources gone quiet or degraded."""
    out = []
    if d.failed:
        lines = [
            f"• {mrkdwn(f.source)} : {f.runs} échec{'s' * (f.runs > 1)}, dernier le {f.last_at_text} — "
            f"{mrkdwn(f.last_error, 200)}"
            for f in d.failed
        ]
        out.append(_context(":warning: *Sources en échec depuis le dernier envoi*\n" + "\n".join(lines)))
    if d.unhealthy:
        lines = [f"• {mrkdwn(q.text, 300)}" for q in d.unhealthy]
        out.append(_context(":zzz: *Sources silencieuses ou dégradées*\n" + "\n".join(lines)))
    return out


def blocks(d: Digest) -> list[dict]:
    """All the blocks of a digest, before splitting into posts."""
    out = _head(d) + _deadlines(d)
    for s in d.sections:
        out.append(_section(f"*{mrkdwn(s.name, 200)}*"))
        for g in s.groups:
            out.append(_context(f"*{mrkdwn(g.title)}*"))
            out.extend(item_block(i) for i in g.items)
        out.append({"type": "divider"})
    return out + _sources(d)


def payloads(d: Digest, channel: str | None) -> list[dict]:
    """The posts of one message: the blocks split to stay within Slack's per-message limit."""
    all_blocks = blocks(d)
    size = MAX_BLOCKS - 1  # room for a "part k/n" context block
    chunks = [all_blocks[i : i + size] for i in range(0, len(all_blocks), size)] or [[]]
    fallback = mrkdwn(d.subject, 300)
    out = []
    for k, chunk in enumerate(chunks):
        if len(chunks) > 1:
            chunk = [*chunk, _context(f"partie {k + 1}/{len(chunks)}")]
        payload: dict[str, Any] = {"text": fallback, "blocks": chunk, "unfurl_links": False, "unfurl_media": False}
        if channel:
            payload["channel"] = channel
        out.append(payload)
    return out


# --- Transports ------------------------------------------------------------------------------------


def _post(call: Callable[[], Any]) -> None:
    """Run one post; a server's refusal becomes ``Rejected``, anything else propagates (maybe sent)."""
    try:
        call()
    except SlackApiError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        said = exc.response.get("error") if exc.response else exc
        raise Rejected(f"erreur de l'API Slack {status} : {said}") from None
    except URLError as exc:
        if isinstance(exc.reason, ConnectionRefusedError):
            raise Rejected(f"Slack injoignable : {exc.reason}") from None
        raise


class SlackTransport:
    channel = "slack"

    def __init__(self, token: str, base_url: str = WebClient.BASE_URL, timeout: int = 30) -> None:
        self.client = WebClient(token=token, base_url=base_url, timeout=timeout, retry_handlers=retry_handlers())

    def send(
        self, recipient: str, batch: str, parts: list[dict], start: int, handing_over: Callable[[int], None]
    ) -> None:
        for i in range(start, len(parts)):
            handing_over(i)
            _post(lambda p=parts[i]: self.client.chat_postMessage(**p))

    def confirm(self, batch: str, part: int) -> bool | None:
        return None


class WebhookTransport:
    channel = "webhook"

    def __init__(self, url: str, timeout: int = 30) -> None:
        # The URL is a secret: it is never put in an error message.
        self.client = WebhookClient(url, timeout=timeout, retry_handlers=retry_handlers())

    def send(
        self, recipient: str, batch: str, parts: list[dict], start: int, handing_over: Callable[[int], None]
    ) -> None:
        for i in range(start, len(parts)):
            handing_over(i)
            resp = _send_hook(self.client, parts[i])
            if resp.status_code != 200:  # 429/5xx after retries come back as a response, not an error
                raise Rejected(f"{recipient} a répondu {resp.status_code} : {clean(resp.body, 200)}")

    def confirm(self, batch: str, part: int) -> bool | None:
        return None


def _send_hook(client: WebhookClient, payload: dict) -> Any:
    try:
        return client.send_dict(payload)
    except URLError as exc:
        if isinstance(exc.reason, ConnectionRefusedError):
            raise Rejected(f"webhook injoignable : {exc.reason}") from None
        raise
