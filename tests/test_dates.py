"""Dates are calendar days in Brussels (docs/decisions.md, "Dates").

- EUR-Lex RSS writes the day it means as ``00:00:00 +0200`` (winter too): that day, through the real RSS
  spider on the replay server into the archive, the search hits and the digest items. No capture of
  EUR-Lex RSS exists (crawlers/replay/README.md): the feeds below are CONSTRUCTED in the item shape of
  docs/research/sources.md §2, with real CELEX, titles and CELLAR ids.
- Cellar's OJ day wins over the EUR-Lex feed's load day: no new version.
- The real Comitology capture (tests/data/fixtures/comitology/): Brussels midnight sent as ``…T22:00:00Z``,
  deadline = the end of the written procedure.
- Drupal's ``28/07/2014 - 12:18`` form.
- Migration 0005 converts the rows the old code wrote.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import text
from sqlmodel import select

from alerts.config import load_routing
from alerts.digest import item_for
from alerts.routing import load_candidates
from core.config import load_settings
from core.dates import brussels_day, paris_time
from core.profiles import load_labels
from crawlers.parsers.feed import parse_feed
from crawlers.parsers.sparql import parse_details, parse_discovery
from storage.db import make_engine, open_archive, session_scope, upgrade
from storage.ingest import ingest
from storage.models import Notice, NoticeVersion, Sighting
from storage.search import search
from tests.replay_server import FIXTURES, ReplayServer, Route, write_config
from veille.crawl import crawl

# --- what a date text means ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("Mon, 27 Jan 2025 00:00:00 +0200", date(2025, 1, 27)),  # EUR-Lex: +0200 in winter too
        ("Tue, 30 Jun 2026 00:00:00 +0200", date(2026, 6, 30)),  # docs/research/sources.md §2's item
        ("Fri, 28 Nov 2025 10:00:00 +0200", date(2025, 11, 28)),  # Drupal feeds (DG SANTE)
        ("2026-07-27T22:00:00Z", date(2026, 7, 28)),  # Comitology: Brussels midnight in summer
        ("2026-01-14T23:00:00Z", date(2026, 1, 15)),  # ... and in winter
        ("Tue, 04 Dec 2023 23:00:00 GMT", date(2023, 12, 5)),
        ("2026-08-03T07:50:48.550580Z", date(2026, 8, 3)),
        ("28/07/2014 - 12:18", date(2014, 7, 28)),  # Drupal's own form, day first
        ("07/01/2020 - 09:05", date(2020, 1, 7)),
        ("2025-01-27", date(2025, 1, 27)),
        ("2025-01-27+02:00", date(2025, 1, 27)),  # xsd:date with a zone
        ("not a date", None),
    ],
)
def test_a_source_date_is_its_brussels_day(text, day):
    assert brussels_day(text) == day


def test_instants_are_shown_in_paris_with_the_zone():
    assert paris_time(datetime(2026, 12, 7, 16, 5, tzinfo=UTC)) == "7 décembre 2026 à 17:05 CET"
    assert paris_time(datetime(2026, 7, 1, 6, 0), short=True) == "2026-07-01 08:00 CEST"  # naive = UTC (SQLite)


# --- EUR-Lex RSS, through the spider ------------------------------------------------------------

AI_ACT = "Regulation (EU) 2024/1689 of the European Parliament and of the Council of 13 June 2024 laying down harmonised rules on artificial intelligence"  # noqa: E501
HTA_117 = (
    "Commission Implementing Regulation (EU) 2025/117 of 24 January 2025 laying down, pursuant to Regulation (EU)"
    " 2021/2282, procedural rules for joint scientific consultations on medical devices"
)


def eurlex_item(celex: str, cellar: str, title: str, pub: str) -> str:
    return (
        f"<item><title>CELEX:{celex}: {title}</title><description/>"
        f"<link>https://eur-lex.europa.eu/./legal-content/AUTO/?uri=CELEX:{celex}&amp;qid=1</link>"
        f"<guid>https://eur-lex.europa.eu/./legal-content/AUTO/?uri=CELLAR:{cellar}</guid>"
        f"<category>Lex Alerts</category><pubDate>{pub}</pubDate>"
        "<dc:creator>European Commission,</dc:creator></item>"
    )


def eurlex_feed(*items: str) -> bytes:
    head = (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel xmlns:dc="http://purl.org/dc/elements/1.1/">'
    )
    return (head + "<title>OJ L</title>" + "".join(items) + "</channel></rss>").encode()


def test_eurlex_midnight_plus0200_is_that_day_everywhere(engine, tmp_path):
    feed = eurlex_feed(
        eurlex_item("32025R0117", "constructed-32025R0117", HTA_117, "Mon, 27 Jan 2025 00:00:00 +0200"),
        eurlex_item("32024R1689", "dc8116a1-3fe6-11ef-865a-01aa75ed71a1", AI_ACT, "Fri, 12 Jul 2024 00:00:00 +0200"),
    )
    route = Route(path="/eur-lex/EN/feed.rss", body=feed, headers={"Content-Type": "application/rss+xml"})
    with ReplayServer([route]) as srv:
        cfg = write_config(
            tmp_path / "veille.toml",
            [{"name": "eurlex-rss-oj-l", "kind": "rss", "url": srv.url("/eur-lex/EN/feed.rss"), "languages": ["en"]}],
        )
        (result,) = crawl(load_settings(cfg), engine)
    assert result.ok and result.new == 2, result.error
    with session_scope(engine) as s:
        days = {n.celex: (n.published_at, n.kind) for n in s.exec(select(Notice))}
    assert days == {"32025R0117": (date(2025, 1, 27), "act"), "32024R1689": (date(2024, 7, 12), "act")}
    hits = {h.celex: h.published_at for h in search(engine, "regulation").hits}
    assert hits == {"32025R0117": date(2025, 1, 27), "32024R1689": date(2024, 7, 12)}
    settings = load_settings(cfg)
    routing, labels = load_routing(settings), load_labels(settings)
    items = {c.celex: item_for(c, "deai", routing, labels) for c in load_candidates(engine).values()}
    assert items["32025R0117"].date_text == "27 janvier 2025" and items["32024R1689"].date_text == "12 juillet 2024"


def test_drupal_date_form():
    feed = (
        b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>DG CONNECT</title>'
        b"<item><title>Commission announces Fast Track to Innovation</title>"
        b"<link>https://ec.europa.eu/digital-agenda/en/news/fast-track-innovation</link>"
        b"<pubDate>28/07/2014 - 12:18</pubDate><guid>12345 at https://ec.europa.eu</guid></item>"
        b"</channel></rss>"
    )
    (rec,) = parse_feed(feed, source="digital-strategy")  # CONSTRUCTED: the Drupal date form of issue 19
    assert rec.published_at == date(2014, 7, 28)


# --- Cellar beats the feed ----------------------------------------------------------------------

WORK = "http://publications.europa.eu/resource/cellar/constructed-32025R0117"


def _lit(v: str, typed: bool = False) -> dict:
    if typed:
        return {"type": "typed-literal", "datatype": "http://www.w3.org/2001/XMLSchema#date", "value": v}
    return {"type": "literal", "value": v}


def cellar_record():
    """Our SPARQL answer shape (crawlers/parsers/sparql.py), values of the HTA implementing act."""
    work, celex = {"type": "uri", "value": WORK}, _lit("32025R0117")
    found = {"ojDate": _lit("2025-01-27", True), "types": _lit("REG_IMPL"), "based_on": _lit("32021R2282")}
    discovery = {"results": {"bindings": [{"work": work, "celex": celex, **found}]}}
    details = {"docDate": _lit("2025-01-24", True), "title_en": _lit(HTA_117)}
    details = {"results": {"bindings": [{"work": work, "celex": celex, **details}]}}
    found = {d.work: d for d in parse_discovery(json.dumps(discovery).encode())}
    (rec,) = parse_details(json.dumps(details).encode(), source="cellar-acts", discovered=found, watched=["32021R2282"])
    return rec


def test_cellar_oj_day_wins_over_the_eurlex_load_day(engine):
    cellar = cellar_record()
    # EUR-Lex loaded the act the day after its OJ issue (docs/research/sources.md §2: "can be days after").
    (feed,) = parse_feed(
        eurlex_feed(eurlex_item("32025R0117", "constructed-32025R0117", HTA_117, "Tue, 28 Jan 2025 00:00:00 +0200")),
        source="eurlex-rss-oj-l",
    )
    ingest(engine, [cellar])
    stats = ingest(engine, [feed])
    assert (stats.new, stats.updated, stats.unchanged) == (0, 0, 1)
    with session_scope(engine) as s:
        n = s.exec(select(Notice).where(Notice.celex == "32025R0117")).one()
        versions = s.exec(select(NoticeVersion).where(NoticeVersion.notice_id == n.id)).all()
        sightings = s.exec(select(Sighting.source).where(Sighting.notice_id == n.id)).all()
        assert (n.published_at, n.document_date, n.version) == (date(2025, 1, 27), date(2025, 1, 24), 1)
    assert [v.reason for v in versions] == ["new"] and sorted(sightings) == ["cellar-acts", "eurlex-rss-oj-l"]
    assert (cellar.published_at, feed.published_at) == (date(2025, 1, 27), date(2025, 1, 28))

    # The other order: the feed first, then Cellar's day replaces the load day.
    ingest(engine, [feed.model_copy(update={"external_id": "cellar:other", "celex": "32025R0118"})])
    ingest(engine, [cellar.model_copy(update={"external_id": "32025R0118", "celex": "32025R0118"})])
    with session_scope(engine) as s:
        other = s.exec(select(Notice).where(Notice.celex == "32025R0118")).one()
        assert other.published_at == date(2025, 1, 27)


# --- Comitology: the real capture through the spider ---------------------------------------------


def test_comitology_real_capture_deadline_is_the_written_procedure_end(engine, tmp_path):
    docs = json.loads((FIXTURES / "comitology/cordisdata_documents_87890c7.json").read_bytes())
    committees = (FIXTURES / "comitology/CONSTRUCTED-committees_from_cordisdata.json").read_bytes()
    page = json.dumps({"content": docs, "last": True}).encode()  # PROVENANCE: the tool kept content[] only
    json_headers = {"Content-Type": "application/json"}
    routes = [
        Route(path="/comitology/core/api/front/committees", body=committees, headers=json_headers),
        Route(path="/comitology/core/api/front/documents/search", body=page, headers=json_headers),
    ]
    codes = sorted({d["committeeCode"] for d in docs})
    with ReplayServer(routes) as srv:
        cfg = write_config(
            tmp_path / "veille.toml",
            [
                {
                    "name": "comitology-register",
                    "kind": "comitology",
                    "url": srv.url("/comitology/core/api/front"),
                    "options": {"today": "2026-08-10", "committees": {c: "32021R0695" for c in codes}},
                }
            ],
        )
        (result,) = crawl(load_settings(cfg), engine)
    assert result.ok and result.new == 43, result.error
    with session_scope(engine) as s:
        drafts = {
            ext: n
            for ext, n in s.exec(select(Sighting.external_id, Notice).join(Notice, Notice.id == Sighting.notice_id))
        }
    # The deadline is the end of the written procedure (meetingEndDate), in Brussels.
    assert drafts["108662"].deadline == date(2026, 9, 4)  # meetingEndDate 2026-09-03T22:00:00Z
    assert drafts["115416"].deadline == date(2026, 9, 4)
    assert drafts["116205"].deadline == date(2026, 6, 11)  # 2026-06-10T22:00:00Z
    assert drafts["116362"].deadline == date(2026, 6, 18)  # a one-day meeting: start = end = 2026-06-17T22:00:00Z
    # Checked by hand: the attachment file names carry the Brussels day the procedure started on
    # ("HORIZON-CL3-2026-2027_07_28_2026.docx", "HORIZON-CL4-2026-2027_2026-07-28 final.docx",
    # "z20260609_C_2026_xxxx_on_6_STEP_w_ESM.docx"), one day after the UTC date of meetingStartDate.
    assert drafts["108662"].extra["meeting_start"] == "2026-07-28"  # meetingStartDate 2026-07-27T22:00:00Z
    assert drafts["115416"].extra["meeting_start"] == "2026-07-28"
    assert drafts["116205"].extra["meeting_start"] == "2026-06-09"  # 2026-06-08T22:00:00Z
    assert drafts["108662"].opens == date(2026, 8, 3) and drafts["108662"].title_en.startswith(
        "Commission Implementing Decision amending Implementing Decision C(2025)8493"
    )
    # Every draft: the capture sends each end as 22:00 UTC (summer Brussels midnight): the next UTC day.
    ends = {d["documentReference"]: d["meetingEndDate"] for d in docs if d["documentType"]["letter"] == "D"}
    assert len(ends) == 43 and all(e.endswith("T22:00:00Z") for e in ends.values())
    assert {r: drafts[r].deadline for r in ends} == {
        r: date.fromisoformat(e[:10]) + timedelta(days=1) for r, e in ends.items()
    }


# --- the migration converts what the old code stored ----------------------------------------------


def test_migration_0007_converts_stored_instants_to_days(db_url):
    """Rows in the shape ingest wrote before 0007: published_at a UTC instant (an EUR-Lex midnight at
    +0200 became 22:00 UTC the day before), search_key from that instant's UTC day."""
    upgrade(db_url, "0004")
    eng = make_engine(db_url)
    epoch = date(1970, 1, 1)
    rows = [  # id, published_at (UTC), the day it must become
        (1, datetime(2025, 1, 26, 22, 0), date(2025, 1, 27)),  # "Mon, 27 Jan 2025 00:00:00 +0200"
        (2, datetime(2025, 11, 28, 8, 0), date(2025, 11, 28)),  # "Fri, 28 Nov 2025 10:00:00 +0200"
        (3, datetime(2024, 7, 11, 22, 0), date(2024, 7, 12)),  # "Fri, 12 Jul 2024 00:00:00 +0200"
    ]
    sqlite = db_url.startswith("sqlite")
    old_notice = sa.table(  # the columns as revision 0004 typed them (published_at a timestamp)
        "notice",
        *(sa.column(c) for c in ("id", "source", "kind", "title_en", "version", "content_hash", "search_key")),
        *(sa.column(c, sa.JSON()) for c in ("related_acts", "legal_basis", "eurovoc", "extra")),
        *(sa.column(c, sa.DateTime(timezone=True)) for c in ("published_at", "first_seen", "updated_at")),
    )
    with eng.begin() as c:
        for i, when, _ in rows:
            key = (when.date() - epoch).days << 32 | i
            at = when.replace(tzinfo=UTC)
            c.execute(
                old_notice.insert().values(
                    id=i, source="s", kind="act", title_en=f"notice {i}", version=1, content_hash="h", search_key=key,
                    related_acts=[], legal_basis=[], eurovoc=[], extra={}, published_at=at, first_seen=at,
                    updated_at=at,
                )
            )  # fmt: skip
            if sqlite:
                c.execute(
                    text("INSERT INTO notice_fts(rowid, title, summary, body, meta) VALUES (:k, :t, '', '', '')"),
                    {"k": key, "t": "pharmacovigilance"},
                )
            else:
                c.execute(
                    text("INSERT INTO notice_search(notice_id, search_key, tsv) VALUES (:i, :k, to_tsvector('x'))"),
                    {"i": i, "k": key},
                )
    eng.dispose()
    engine = open_archive(db_url)  # upgrades to head
    with session_scope(engine) as s:
        got = {n.id: (n.published_at, n.search_key) for n in s.exec(select(Notice))}
    assert got == {i: (day, (day - epoch).days << 32 | i) for i, _, day in rows}
    if sqlite:
        with engine.connect() as c:
            fts = sorted(r[0] for r in c.execute(text("SELECT rowid FROM notice_fts")))
        assert fts == sorted(k for _, k in got.values())


def test_funding_epoch_milliseconds_are_brussels_days():
    from crawlers.parsers.funding import ms_date

    assert ms_date(1769900400000) == date(2026, 2, 1)  # 2026-01-31T23:00:00Z: Brussels midnight
    assert ms_date(1727560740000) == date(2024, 9, 28)  # real F&T sample: 23:59 in Brussels
    assert ms_date("2026-10-01T00:00:00.000+0000") == date(2026, 10, 1)


def test_today_is_the_brussels_day():
    from core.dates import today_brussels

    assert today_brussels(datetime(2026, 12, 7, 23, 30, tzinfo=UTC)) == date(2026, 12, 8)  # 00:30 in Brussels
    assert today_brussels(datetime(2026, 7, 1, 21, 59, tzinfo=UTC)) == date(2026, 7, 1)


def test_digest_footer_and_web_show_paris_time():
    from alerts.digest import FailedSource
    from web.app import _day, _stamp

    failed = FailedSource("ema-news", 2, "HTTP 503", datetime(2026, 12, 7, 16, 5, tzinfo=UTC))
    assert failed.last_at_text == "7 décembre 2026 à 17:05 CET"
    # Outside a request the workbench speaks French; SQLite gives stored instants naive (UTC).
    assert _stamp(datetime(2026, 7, 1, 6, 0)) == "1 juil. 2026 08:00 CEST"
    assert _day(date(2023, 12, 5)) == "5 déc. 2023" and _day("2023-12-05") == "5 déc. 2023"
    # An instant's day is its Brussels day: 23:30 UTC on 31 December is 1 January there.
    assert _day(datetime(2025, 12, 31, 23, 30, tzinfo=UTC)) == "1 janv. 2026"
