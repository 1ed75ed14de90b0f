"""Regenerate docs/digest.png: a unit's digest e-mail as the real pipeline sends it, in headless Chromium.

The shipped replay bundle goes through crawl, ingest, classify and alerts (as ``veille demo`` does), with
``[web] public_url`` set; then the scheduled digest of Monday 22 December 2025 is sent to the files outbox
(the items dated within the profile's 14-day window go out, the older ones are archived and counted), and the
HTML part of the recipient's .eml is screenshotted.

VEILLE_HOME=$(mktemp -d) .venv/bin/python docs/make_digest_png.py [RECIPIENT]
"""

import email
import email.policy
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alerts import send_digests  # noqa: E402
from core.config import load_settings  # noqa: E402
from crawlers.replay import serve  # noqa: E402
from storage.db import open_archive  # noqa: E402
from veille.commands.cycle import _demo_settings  # noqa: E402
from veille.pipeline import run_cycle  # noqa: E402

NOW = datetime(2025, 12, 22, 15, tzinfo=UTC)  # a Monday, 16:00 in Paris
recipient = sys.argv[1] if len(sys.argv) > 1 else "veille-sante-publique@has-sante.fr"

with tempfile.TemporaryDirectory() as tmp:
    home = Path(tmp)
    server, url = serve()
    try:
        settings = _demo_settings(url, home, "has")
        cfg = home / "veille.toml"
        cfg.write_text(cfg.read_text() + '\n[web]\npublic_url = "https://veille.has-sante.fr"\n', encoding="utf-8")
        settings = load_settings(cfg)
        engine = open_archive(settings.database_url)
        run_cycle(engine, settings, sources=[s.name for s in settings.sources], digests=False)
    finally:
        server.close()
    send_digests(engine, settings, now=NOW)
    [eml] = (settings.outbox / "email").glob(f"digest_*_{recipient.replace('@', '_')}-*.eml")
    msg = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    page_file = home / "digest.html"
    page_file.write_text(msg.get_body(("html",)).get_content(), encoding="utf-8")
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--headless=new", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 900, "height": 900})
        page.goto(page_file.as_uri())
        page.screenshot(path=str(ROOT / "docs" / "digest.png"), full_page=True)
        browser.close()
print(ROOT / "docs" / "digest.png")
