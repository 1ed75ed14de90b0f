"""Regenerate docs/digest.png: the DEAI digest for the development-set notices, in headless Chromium.

VEILLE_HOME=$(mktemp -d) .venv/bin/python docs/make_digest_png.py
"""

import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from storage.db import open_archive  # noqa: E402
from tests.alerts_support import dev_digest_html  # noqa: E402
from veille.config import load_settings  # noqa: E402

with tempfile.TemporaryDirectory() as tmp:
    engine = open_archive(f"sqlite:///{tmp}/demo.db")
    page_file = Path(tmp) / "digest.html"
    page_file.write_text(dev_digest_html(engine, load_settings()), encoding="utf-8")
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--headless=new", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 900, "height": 1200})
        page.goto(page_file.as_uri())
        page.screenshot(path=str(ROOT / "docs" / "digest.png"), full_page=True)
        browser.close()
print(ROOT / "docs" / "digest.png")
