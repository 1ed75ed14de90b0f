"""A rendered digest opened in headless Chromium (Debian's, through Playwright): it lays out and reads right."""

import shutil

import pytest

from tests.alerts_support import dev_digest_html

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--headless=new", "--disable-gpu", "--disable-background-networking"]


@pytest.mark.skipif(not shutil.which(CHROMIUM), reason="no /usr/bin/chromium (apt-get install chromium)")
def test_digest_renders_in_chromium(sqlite_url, tmp_path):
    from playwright.sync_api import sync_playwright

    from core.config import load_settings
    from storage.db import open_archive

    settings = load_settings()
    engine = open_archive(sqlite_url)
    html = dev_digest_html(engine, settings)
    page_file = tmp_path / "digest.html"
    page_file.write_text(html, encoding="utf-8")
    shot = tmp_path / "digest.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 900, "height": 1200})
        page.goto(page_file.as_uri())
        headings = page.locator("h2").all_inner_texts()
        groups = page.locator("h3").all_inner_texts()
        links = page.locator("a.title").count()
        color = page.eval_on_selector("h2", "e => getComputedStyle(e).color")
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert headings[0].startswith("DEAI")
    assert "ACTES ADOPTÉS" in groups  # text-transform from the inlined CSS
    assert links >= 5
    assert color == "rgb(30, 58, 95)"  # inlined CSS applied
    assert shot.stat().st_size > 20_000
