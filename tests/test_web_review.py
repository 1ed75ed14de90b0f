"""The workbench's review page: the same decisions as `veille review`, in order, escaped, linked."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime

from sqlmodel import select

from core.config import load_settings
from core.records import NoticeRecord
from nlp.classify import classify
from nlp.review import review
from storage.db import open_archive, session_scope
from storage.ingest import ingest
from storage.models import Sighting
from tests.web_helpers import PASSWORD, client, login
from web.auth import add_user

BODY3 = "Products such as medical devices. Other medical devices. Medical devices again."  # deai 0.36


def _record(ext: str, day: str, title: str, body: str | None = None) -> NoticeRecord:
    when = datetime.fromisoformat(day + "T10:00:00+01:00").astimezone(UTC)
    return NoticeRecord(source="cellar", external_id=ext, lang="en", title_en=title, body=body, published_at=when)


def test_review_page_lists_uncertain_decisions_newest_first():
    settings = load_settings()
    engine = open_archive(settings.database_url)
    ingest(
        engine,
        [
            _record("old", "2025-03-03", "Annual report on the internal market", BODY3),
            _record("sure", "2025-04-01", "Joint clinical assessments of medicinal products"),
            _record("new", "2025-05-02", "Guidelines on <script>alert(1)</script> product safety", BODY3),
        ],
    )
    classify(engine, settings)
    with session_scope(engine) as s:
        ids = {r.external_id: r.notice_id for r in s.exec(select(Sighting))}
    add_user(engine, "rita", "reader", PASSWORD)
    c = login(client(engine, settings), "rita")
    page = c.get("/review?label=deai")
    assert page.status_code == 200
    rows = [(int(n), lb) for n, lb in re.findall(r'data-notice="(\d+)" data-label="(\w+)"', page.text)]
    assert rows == [(ids["new"], "deai"), (ids["old"], "deai")]
    assert rows == [(i.notice_id, i.label) for i in review(engine, settings, "deai")]
    assert "<script>alert(1)</script>" not in page.text
    assert html.escape("Guidelines on <script>alert(1)</script> product safety") in page.text
    assert f'href="/notice/{ids["new"]}"' in page.text and "0.36 / 0.50" in page.text
    # Through the catalogues: English here, French by default (the label by its profile name).
    assert "<h1>To review</h1>" in page.text and "<td>uncertain</td>" in page.text and "Score / threshold" in page.text
    assert '<td title="deai">DEAI — Évaluation et accès à l&#39;innovation</td>' in page.text
    fr = login(client(engine, settings, lang="fr"), "rita").get("/review?label=deai").text
    assert "<h1>À revoir</h1>" in fr and "<td>incertain</td>" in fr and "Score / seuil" in fr
    assert "(to review)" not in fr and "Filtrer" in fr
    # Days as on every page, in the reader's language: 2 May 2025, the newest notice.
    assert '<time datetime="2025-05-02">May 2, 2025</time>' in page.text
    assert '<time datetime="2025-05-02">2 mai 2025</time>' in fr
    assert c.get("/review?label=nope").status_code == 200  # an unknown label shows every label
    assert client(engine, settings).get("/review").status_code in (302, 303, 401)  # login required
