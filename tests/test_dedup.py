"""One item is one notice with several sightings, whatever the source (docs/decisions.md, "Identity").

- The DG SANTE item that both the public-health and the medical-devices feeds carry (same URL): one
  notice, two sightings, through two real RSS spiders on the replay server. The feeds are the demo
  bundle's (crawlers/replay/README.md: constructed in the Drupal item shape from real development-set
  items, titles, URLs and dates).
- A listing page that is the link of several items (DG SANTE links MDCG 2019-16 and MDCG 2020-1 to the
  MDCG guidance page) keeps them apart: they have different titles.
- A news item the same publisher lists under two URLs the same day: one notice.
- A digest lists a notice once.
- ``veille demo``: no digest section lists a link twice, no publication day before the document date.
"""

from __future__ import annotations

import email
import email.policy
from collections import Counter
from datetime import date
from pathlib import Path

from sqlmodel import select
from typer.testing import CliRunner

from alerts.digest import Item, sections
from core.config import load_settings
from crawlers.replay import BUNDLE
from storage.db import open_archive, session_scope
from storage.models import Notice, Sighting
from storage.search import search
from tests.replay_server import ReplayServer, Route, write_config
from veille.crawl import crawl

RSS = {"Content-Type": "application/rss+xml"}


def _crawl_feeds(engine, tmp_path, feeds: dict[str, tuple[bytes, dict]]) -> dict:
    routes = [Route(path=f"/{name}.xml", body=body, headers=RSS) for name, (body, _) in feeds.items()]
    with ReplayServer(routes) as srv:
        sources = [
            {"name": name, "kind": "rss", "url": srv.url(f"/{name}.xml"), "languages": ["en"], **extra}
            for name, (_, extra) in feeds.items()
        ]
        results = {r.source: r for r in crawl(load_settings(write_config(tmp_path / "veille.toml", sources)), engine)}
    assert all(r.ok for r in results.values()), {r.source: r.error for r in results.values()}
    return results


def _by_title(engine) -> dict[str, list[tuple[Notice, list[str]]]]:
    out: dict[str, list] = {}
    with session_scope(engine) as s:
        for n in s.exec(select(Notice).order_by(Notice.id)):
            srcs = sorted(s.exec(select(Sighting.source).where(Sighting.notice_id == n.id)).all())
            out.setdefault(n.title, []).append((n, srcs))
    return out


def test_the_same_sante_item_in_two_feeds_is_one_notice_with_two_sightings(engine, tmp_path):
    bodies = Path(BUNDLE) / "bodies"
    _crawl_feeds(
        engine,
        tmp_path,
        {
            "sante-public-health": ((bodies / "sante-public-health.xml").read_bytes(), {}),
            "sante-medical-devices": (
                (bodies / "sante-medical-devices.xml").read_bytes(),
                {"options": {"doc_kind": "guidance"}},
            ),
        },
    )
    notices = _by_title(engine)
    both = ["sante-medical-devices", "sante-public-health"]
    (hta,) = notices["Health Technology Assessment: 2026 Work Programme adopted"]
    assert (
        hta[1] == both and hta[0].url == "https://eoc.org.cy/health-technology-assessment-2026-work-programme-adopted"
    )
    assert hta[0].published_at == date(2025, 11, 28) and hta[0].kind == "guidance"
    (mdcg_22,) = notices[
        "MDCG 2022-5 rev.1 - Guidance on borderline between medical devices and medicinal products under"
        " Regulation (EU) 2017/745 on medical devices - October 2024"
    ]
    assert mdcg_22[1] == both and mdcg_22[0].published_at == date(2024, 10, 29)
    assert mdcg_22[0].url == (
        "https://health.ec.europa.eu/latest-updates/mdcg-2022-5-rev1-guidance-borderline-between-medical-devices"
        "-and-medicinal-products-under-regulation-2024-10-29_sl"
    )
    # Two MDCG documents linked to the same guidance listing page stay two notices, each seen by both feeds.
    listing = (
        "https://health.ec.europa.eu/medical-devices-sector/new-regulations/"
        "guidance-mdcg-endorsed-documents-and-other-guidance_en"
    )
    (cyber,) = notices["MDCG 2019-16 Guidance on Cybersecurity for medical devices"]
    assert cyber[1] == both and cyber[0].url == listing and cyber[0].published_at == date(2020, 1, 7)
    (clinical,) = notices[
        "MDCG 2020-1 Guidance on Clinical Evaluation (MDR) / Performance Evaluation (IVDR) of Medical Device Software"
    ]
    assert clinical[1] == both and clinical[0].url == listing and clinical[0].published_at == date(2020, 3, 17)
    assert cyber[0].version == 2 and cyber[0].kind == "guidance"  # news, then guidance: the kind refined once
    assert all(len(v) == 1 for v in notices.values()), [t for t, v in notices.items() if len(v) > 1]
    hits = [h.title for h in search(engine, "MDCG").hits]
    assert len(hits) == len(set(hits)) and "MDCG 2019-16 Guidance on Cybersecurity for medical devices" in hits


def _drupal_feed(*items: tuple[str, str, str, str]) -> bytes:
    body = "".join(
        f"<item><title>{title}</title><link>{link}</link><description>&lt;p&gt;{title}.&lt;/p&gt;</description>"
        f'<pubDate>{pub}</pubDate><guid isPermaLink="false">{guid}</guid></item>'
        for title, link, pub, guid in items
    )
    head = '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>f</title>'
    return f"{head}{body}</channel></rss>".encode()


EU4H = "Commission adopts EU4Health 2024 Work Programme with a €752.4 million funding to strengthen the European Health Union"  # noqa: E501
EU4H_URL = "https://health.ec.europa.eu/latest-updates/commission-adopts-eu4health-2024-work-programme-eu7524-million-funding-strengthen-european-health-2023-12-05_en"


def test_same_title_same_day_same_publisher_is_one_notice(engine, tmp_path):
    """CONSTRUCTED feeds: a development-set news item (dev-0189) listed by a second DG SANTE feed under its
    news-page URL, a third time by another publisher, and a fourth time by DG SANTE another day."""
    first = _drupal_feed((EU4H, EU4H_URL, "Tue, 05 Dec 2023 10:00:00 +0100", "n-1"))
    second = _drupal_feed(
        (
            EU4H,
            "https://health.ec.europa.eu/news/eu4health-2024-work-programme_en",
            "Tue, 05 Dec 2023 15:30:00 GMT",
            "x",
        ),
        (
            EU4H,
            "https://ec.europa.eu/commission/presscorner/detail/en/ip_23_6250",
            "Tue, 05 Dec 2023 12:00:00 +0100",
            "y",
        ),
        (
            EU4H,
            "https://health.ec.europa.eu/news/eu4health-2024-programme-recap_en",
            "Fri, 08 Dec 2023 09:00:00 +0100",
            "z",
        ),
    )
    _crawl_feeds(engine, tmp_path, {"sante-public-health": (first, {}), "sante-funding": (second, {})})
    with session_scope(engine) as s:
        rows = s.exec(select(Sighting.notice_id, Sighting.source, Sighting.url).order_by(Sighting.source)).all()
    by_notice: dict[int, list[tuple[str, str]]] = {}
    for notice_id, source, url in rows:
        by_notice.setdefault(notice_id, []).append((source, url))
    assert sorted(by_notice.values()) == [
        # another publisher (the Press Corner), the same day: its own notice
        [("sante-funding", "https://ec.europa.eu/commission/presscorner/detail/en/ip_23_6250")],
        # DG SANTE, three days later: its own notice
        [("sante-funding", "https://health.ec.europa.eu/news/eu4health-2024-programme-recap_en")],
        # DG SANTE, the same day, two URLs: one notice with two sightings
        [
            ("sante-funding", "https://health.ec.europa.eu/news/eu4health-2024-work-programme_en"),
            ("sante-public-health", EU4H_URL),
        ],
    ]
    assert {n.published_at for n, _ in _by_title(engine)[EU4H]} == {date(2023, 12, 5), date(2023, 12, 8)}


def _item(notice_id: int, label: str, url: str) -> Item:
    return Item(notice_id, f"t{notice_id}", "", date(2026, 1, 5), "s", url, "", "news", label, 0.9, [], [])


def test_a_digest_lists_a_notice_once():
    items = [
        _item(1, "deai", "https://a.eu/1"),
        _item(2, "deai", "https://a.eu/2"),
        _item(1, "numerique", "https://a.eu/1"),
    ]
    out = sections(items, {}, ("deai", "numerique"))
    listed = [i.notice_id for s in out for g in s.groups for i in g.items]
    assert sorted(listed) == [1, 2] and [s.label for s in out] == ["deai"]


# --- veille demo -----------------------------------------------------------------------------------


def _sections_of(text: str) -> dict[str, list[tuple[str, str]]]:
    """(title, link) of the items (``* title`` then an indented link) of each section (``== name ==``)
    of a digest's plain-text part."""
    out: dict[str, list[tuple[str, str]]] = {}
    current, title = "?", ""
    for line in text.splitlines():
        if line.startswith("== "):
            current = line.strip("= ")
        elif line.startswith("* "):
            title = line[2:]
        elif (link := line.strip()).startswith(("http://", "https://")) and title:
            out.setdefault(current, []).append((title, link))
            title = ""
    return out


def test_demo_digests_list_each_link_once_and_no_day_before_its_document(tmp_path, monkeypatch):
    from veille.main import app

    monkeypatch.setenv("VEILLE_HOME", str(tmp_path / "home"))
    result = CliRunner().invoke(app, ["demo"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    demo = tmp_path / "home" / "demo"
    digests = sorted((demo / "outbox" / "email").glob("digest_*.eml"))
    assert len(digests) >= 5
    shared = []
    for path in digests:
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        text = next(p.get_content() for p in msg.walk() if p.get_content_type() == "text/plain")
        sections_ = _sections_of(text)
        assert sections_, path.name
        for name, items in sections_.items():
            # No link twice, not even under two titles: two items whose only link is one listing page (DG SANTE
            # links MDCG 2019-16 and MDCG 2020-1 to its MDCG guidance page) each point to their own entry on it.
            twice = [u for u, k in Counter(link for _, link in items).items() if k > 1]
            assert not twice, (path.name, name, twice)
            shared += [link for _, link in items if "guidance-mdcg-endorsed-documents" in link]
    assert len(shared) >= 2 and all("#:~:text=MDCG%20" in link for link in shared), shared
    engine = open_archive(f"sqlite:///{demo / 'veille.db'}")
    with session_scope(engine) as s:
        early = s.exec(select(Notice.title_en, Notice.published_at, Notice.document_date).where(
            Notice.published_at < Notice.document_date)).all()  # fmt: skip
        notices = s.exec(select(Notice)).all()
    titles = Counter(n.title for n in notices)
    # One Have Your Say page carries a consultation and its draft-act window (two notices, by design).
    pages = Counter((n.title, n.url, n.kind in ("news", "guidance", "other") or n.kind) for n in notices)
    assert early == []
    assert [t for t, k in pages.items() if k > 1] == []
    for title in (  # issue 19's duplicates: each carried by both DG SANTE feeds
        "Health Technology Assessment: 2026 Work Programme adopted",
        "MDCG 2019-16 Guidance on Cybersecurity for medical devices",
        "MDCG 2022-5 rev.1 - Guidance on borderline between medical devices and medicinal products under"
        " Regulation (EU) 2017/745 on medical devices - October 2024",
    ):
        assert titles[title] == 1, title
