"""The workbench in real headless Chromium (Debian's, via Playwright) against a live uvicorn.

Set VEILLE_WEB_SCREENSHOTS=docs to (re)write docs/web-rules-words.png (the search, notice, rules and
dashboard screenshots come from the demo archive: tests/test_web_i18n.py).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from sqlmodel import select

from core.config import load_settings
from storage.db import session_scope
from storage.models import Feedback
from tests.web_helpers import PASSWORD, XSS_TITLE, copy_archive, live_server, seeded_archive_file
from web.app import create_app

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]  # fmt: skip
SHOTS = os.environ.get("VEILLE_WEB_SCREENSHOTS")

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium not installed (.ci/run does)")


@pytest.fixture(scope="module")
def seeded_file(tmp_path_factory):
    return seeded_archive_file(tmp_path_factory.mktemp("seeded"), limit=None)


@pytest.fixture
def site(seeded_file, tmp_path):
    """A live server over (a copy of) an archive seeded with the 441 dev-set notices."""
    engine, ids = copy_archive(seeded_file, tmp_path)
    settings = load_settings()
    with live_server(create_app(settings, engine)) as url:
        yield url, engine, ids, settings


@pytest.fixture
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        pg = context.new_page()
        dialogs: list[str] = []
        pg.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        pg.dialogs = dialogs
        yield pg
        browser.close()


def shot(page, name: str, full_page: bool = False) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / name), **({"full_page": True} if full_page else {}))  # or a locator


def log_in(page, url: str, name: str) -> None:
    page.goto(url + "/")
    assert "/login" in page.url
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("form[action='/login'] button[type=submit]")  # in whatever language the browser asks for
    page.wait_for_selector(".flash")
    assert f" {name} (" in page.inner_text(".flash")


def test_search_open_notice_and_give_feedback(site, page):
    url, engine, ids, _ = site
    log_in(page, url, "alice")
    page.fill("input[name=q]", "dispositifs médicaux")
    page.press("input[name=q]", "Enter")
    page.wait_for_selector("article.hit")
    total = page.inner_text(".summary .total")
    assert re.match(r"\d+ notices", total)
    assert page.locator("article.hit mark").count() > 0
    # Narrow with the label facet, then open the first result.
    page.click("[data-facet=label] a[data-value=deai]")
    page.wait_for_selector(".chip")
    assert "Label: DEAI — Évaluation et accès à l'innovation" in page.inner_text(".facets .chip")
    assert int(page.inner_text(".summary .total").split()[0]) <= int(total.split()[0])
    first = page.locator("article.hit h2 a").first
    title = first.inner_text()
    first.click()
    page.wait_for_selector("#labels")
    assert page.inner_text("h1") == title
    nid = int(page.url.rsplit("/", 1)[1])
    assert page.locator("#labels tr[data-label=deai]").count() == 1
    # Mark deai wrong, then add a label.
    page.click("#labels tr[data-label=deai] button:has-text('wrong')")
    page.wait_for_selector(".flash")
    assert "Recorded: “DEAI — Évaluation et accès à l'innovation” does not apply" in page.inner_text(".flash")
    page.select_option("form.addlabel select[name=label]", "numerique")
    page.fill("form.addlabel input[name=comment]", "EHDS angle")
    page.click("form.addlabel button")
    page.wait_for_selector(".flash")
    with session_scope(engine) as s:
        found = s.exec(select(Feedback).where(Feedback.notice_id == nid))
        rows = [(f.label, f.verdict, f.user, f.comment) for f in found]
    assert sorted(rows) == [("deai", False, "alice", None), ("numerique", True, "alice", "EHDS angle")]
    # Crawled markup renders as text, and runs nothing.
    page.goto(f"{url}/notice/{ids['xss']}")
    assert page.inner_text("h1") == XSS_TITLE
    page.goto(f"{url}/?q=%22alert%22")  # the hostile title's own word, as written
    assert XSS_TITLE in page.inner_text(".results")
    assert page.dialogs == []


def test_reader_sees_no_edit_controls(site, page):
    url, _engine, ids, _ = site
    log_in(page, url, "rita")
    page.goto(f"{url}/notice/{ids['impl']}")
    assert page.locator("form[action$='/feedback']").count() == 0
    assert "Read-only account" in page.inner_text("#feedback")
    page.goto(f"{url}/dashboard?weeks=104")
    assert page.locator("svg.chart rect.bar").count() >= 20
    assert "ema-news" in page.inner_text("#sources")


@pytest.fixture
def rules():
    from nlp import rules

    return rules


def test_edit_rule_with_an_error_then_fix_preview_and_save(rules, site, page):
    url, _engine, _ids, settings = site
    original = rules.rules_path(settings).read_text(encoding="utf-8")
    log_in(page, url, "alice")
    page.goto(f"{url}/rules")
    assert page.input_value("#rules-text") == original
    broken = original.rstrip("\n") + "\n  - [unclosed\n"
    page.fill("#rules-text", broken)
    page.click("#check")
    page.wait_for_selector("#rules-error")
    message = page.inner_text("#rules-error")
    line = int(page.get_attribute("#rules-text", "data-error-line"))
    assert f":{line}:" in message
    # The editor puts the cursor on the faulty line.
    start = page.evaluate("document.getElementById('rules-text').selectionStart")
    assert page.input_value("#rules-text")[:start].count("\n") == line - 1
    # A lower default threshold: the preview lists the notices that would gain labels.
    fixed = original.replace("defaults:\n  threshold: 0.5\n", "defaults:\n  threshold: 0.3\n", 1)
    assert fixed != original
    page.fill("#rules-text", fixed)
    page.click("#check")
    page.wait_for_selector("#preview")
    gains = [int(t.strip("+")) for t in page.locator("table.preview .gain").all_inner_texts()]
    assert len(gains) == 7 and sum(gains) > 0
    assert page.locator("table.preview a[href^='/notice/']").count() > 0
    page.click("#save")
    page.wait_for_selector(".flash")
    assert "Rules saved as version" in page.inner_text(".flash") and "re-scored" in page.inner_text(".flash")
    assert rules.rules_path(settings).read_text(encoding="utf-8") == fixed


def test_look_up_what_a_phrase_catches(site, page):
    from core.records import NoticeRecord
    from storage.ingest import ingest

    url, engine, _ids, _settings = site
    ingest(engine, [NoticeRecord(source="press", external_id="w1", title_fr="Aides d'État : un régime autorisé")])
    log_in(page, url, "alice")
    page.goto(f"{url}/rules")
    page.fill("#words-phrase", "aidants")
    page.select_option("#words-lang", "fr")
    page.click("#words-look")
    page.wait_for_selector("table.words")
    assert "fr: aid" in page.inner_text("#words-summary")
    forms = page.locator("table.words tbody td:first-child").all_inner_texts()
    assert "aides" in forms  # the stem of "aidants" (carers) is that of "aides" (aid)
    assert page.input_value("#words-phrase") == "aidants" and page.input_value("#words-lang") == "fr"
    shot(page.locator("#words"), "web-rules-words.png")
    page.locator("table.words a[href^='/notice/']").first.click()
    page.wait_for_url(re.compile(r"/notice/\d+$"))
