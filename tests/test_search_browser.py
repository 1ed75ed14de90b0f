"""Search by CELEX, cross-language search and the CSV download in headless Chromium, on the archive
``veille demo`` builds (the replay bundle through the whole pipeline)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from core.config import load_settings
from storage.db import open_archive
from tests.test_search_archive import JSC_TITLE, MDCG_CYBER, _id_of, demo_copy, demo_home  # noqa: F401 - fixtures
from tests.test_web_browser import CHROMIUM, log_in, page, pytestmark  # noqa: F401 - fixtures, skip marker
from tests.web_helpers import PASSWORD, live_server
from web.app import create_app
from web.auth import add_user


def test_search_by_celex_then_csv_download(demo_copy, page):  # noqa: F811
    settings = load_settings(demo_copy / "veille.toml")
    engine = open_archive(settings.database_url)
    add_user(engine, "alice", "analyst", PASSWORD)
    jsc = _id_of(demo_copy, "celex", "32025R0117")
    with live_server(create_app(settings, engine)) as url:
        log_in(page, url, "alice")
        page.fill("input[name=q]", "CELEX:32025R0117")
        page.press("input[name=q]", "Enter")
        page.wait_for_selector("article.hit")
        first = page.locator("article.hit h2 a").first
        assert first.get_attribute("href") == f"/notice/{jsc}" and first.inner_text().startswith(JSC_TITLE)
        with page.expect_download() as got:
            page.click("a.export")
        rows = list(csv.DictReader(io.StringIO(Path(got.value.path()).read_text(encoding="utf-8-sig"))))
        assert rows[0]["id"] == str(jsc) and rows[0]["celex"] == "32025R0117" and rows[0]["labels"] == "deai"
        assert rows[0]["notice_url"] == f"{url}/notice/{jsc}"

        page.goto(f"{url}/notice/32025R0117")  # redirected to the notice's page
        assert page.url == f"{url}/notice/{jsc}" and JSC_TITLE in page.inner_text("body")

        page.goto(f"{url}/?q=dispositifs+m%C3%A9dicaux")
        titles = page.locator("article.hit h2 a").all_inner_texts()
        assert MDCG_CYBER in titles  # an English notice for a French query
