"""The workbench speaks French by default, English on request, with readable names for facets and types,
on an archive built by the real pipeline (``veille demo``: the replay bundle through crawl, ingest,
classify and alerts, built once per session by tests/test_search_archive.py's ``demo_home``).

The ids, titles, types and names asserted here were read by hand from the demo archive (2026-12-07).
Set VEILLE_WEB_SCREENSHOTS=docs to remake docs/web-search.png, web-notice.png, web-rules.png,
web-dashboard.png and web-review.png from it (and the English web-dashboard-en.png, web-review-en.png).
"""

from __future__ import annotations

import html
import os
import re
import shutil
import sys
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from sqlalchemy import text

from core.config import load_settings
from storage.db import open_archive
from tests.test_search_archive import demo_home  # noqa: F401 - fixture
from tests.test_web_browser import ARGS, CHROMIUM, log_in
from tests.web_helpers import PASSWORD, client, csrf_of, live_server
from web.app import create_app
from web.auth import add_user

ROOT = Path(__file__).resolve().parents[1]
LOCALE = ROOT / "core" / "locale"
SHOTS = os.environ.get("VEILLE_WEB_SCREENSHOTS")
DEAI_NAME = "DEAI — Évaluation et accès à l'innovation"  # profile.toml [labels.deai] name
# An instant in Paris time with its zone, its day in French (Babel's medium format): "7 déc. 2026 17:05 CET".
FR_MONTHS = r"(janv\.|févr\.|mars|avr\.|mai|juin|juil\.|août|sept\.|oct\.|nov\.|déc\.)"
STAMP = re.compile(rf"\b\d{{1,2}} {FR_MONTHS} 20\d\d \d\d:\d\d CES?T\b")
needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium not installed")


# --- the catalogues ---------------------------------------------------------------------------


def _source_messages() -> set[str | tuple[str, str]]:
    """Every message id the templates, routes and core/names.py use (what scripts/i18n.py extracts)."""
    with (ROOT / "web" / "babel.cfg").open() as fh:
        method_map, options_map = parse_mapping_cfg(fh)
    found = extract_from_dir(ROOT, method_map, options_map, keywords={"_": None, "N_": None, "gettext_": None,
                             "gettext": None, "ngettext": (1, 2), "ngettext_": (1, 2)})  # fmt: skip
    return {msg if isinstance(msg, str) else tuple(msg) for _file, _line, msg, _comments, _ctx in found}


def _po(lang: str):
    with (LOCALE / lang / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        return read_po(fh, locale=lang)


def _hashable(value: object) -> object:
    return tuple(value) if isinstance(value, list | tuple) else value


def _placeholders(s: str) -> set[str]:
    return set(re.findall(r"%\(\w+\)s", s))


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_every_message_used_is_translated_in_both_catalogues(lang):
    used = _source_messages()
    assert len(used) > 200 and "Why (rules that fired)" in used and "Implementing regulation" in used
    catalog = _po(lang)
    missing, bad = [], []
    for msgid in used:
        message = catalog.get(msgid if isinstance(msgid, str) else msgid[0])
        strings = [] if message is None else [message.string] if isinstance(msgid, str) else list(message.string)
        if not strings or not all(strings) or (message and message.fuzzy):
            missing.append(msgid)
            continue
        wanted = _placeholders(msgid if isinstance(msgid, str) else msgid[1])
        bad += [(msgid, s) for s in strings if _placeholders(s) - wanted]  # a placeholder the code never fills
    assert not missing, f"{lang}: untranslated: {missing[:10]}"
    assert not bad, f"{lang}: placeholders that differ from the message id: {bad[:5]}"
    if lang == "en":  # the English catalogue holds the message ids themselves
        assert all(m.string == m.id for m in catalog if m.id)


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_the_compiled_catalogue_is_the_po_file(lang):
    """A .mo older than its .po (a translation edited, not compiled) fails here: scripts/i18n.py compile."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import i18n
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    mo = LOCALE / lang / "LC_MESSAGES" / "messages.mo"

    def pairs(messages) -> dict:
        return {_hashable(m.id): _hashable(m.string) for m in messages if m.id and not m.fuzzy}

    with mo.open("rb") as fh:
        shipped = pairs(read_mo(fh))
    po = pairs(_po(lang))
    assert shipped == po, f"{mo} is stale: run .venv/bin/python scripts/i18n.py compile"
    assert mo.read_bytes() == i18n.compiled(lang)


# --- the demo archive -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(demo_home, tmp_path_factory):  # noqa: F811
    """A private copy of the demo archive with an analyst, for this module."""
    engine = open_archive(f"sqlite:///{demo_home / 'veille.db'}")
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    home = tmp_path_factory.mktemp("i18n") / "demo"
    shutil.copytree(demo_home, home)
    cfg = home / "veille.toml"
    cfg.write_text(cfg.read_text(encoding="utf-8").replace(str(demo_home), str(home)), encoding="utf-8")
    settings = load_settings(cfg)
    engine = open_archive(settings.database_url)
    add_user(engine, "alice", "analyst", PASSWORD)
    return settings, engine


def _id(engine, where: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT id FROM notice WHERE {where} ORDER BY id LIMIT 1")).scalar_one()


def _logged_in(engine, settings, lang: str | None):
    c = client(engine, settings, lang=lang or "")
    page = c.get("/login")
    r = c.post("/login", data={"name": "alice", "password": PASSWORD, "csrf_token": csrf_of(page.text), "next": "/"})
    assert r.status_code == 303
    return c


def test_language_from_cookie_then_accept_language_then_french(demo):
    settings, engine = demo
    for header, lang in [
        ("", "fr"),
        ("en-GB,en;q=0.9", "en"),
        ("de-DE, en;q=0.5, fr;q=0.4", "en"),
        ("fr-FR,fr;q=0.9,en;q=0.8", "fr"),
        ("de", "fr"),
        ("en;q=0", "fr"),
    ]:
        page = client(engine, settings, lang=header).get("/login")
        assert f'<html lang="{lang}">' in page.text, header
        assert ("Se connecter" if lang == "fr" else "Log in") in page.text
    c = client(engine, settings, lang="fr")
    r = c.get("/lang/en", params={"next": "/login?next=%2Fdashboard"})
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Fdashboard"
    assert "veille_lang=en" in r.headers["set-cookie"]
    assert '<html lang="en">' in c.get("/login").text  # the cookie wins over Accept-Language
    assert c.get("/lang/en", params={"next": "//evil.example/"}).headers["location"] == "/"
    assert "set-cookie" not in c.get("/lang/xx").headers  # an unknown language changes nothing


def test_route_messages_speak_the_request_language(demo):
    settings, engine = demo
    fr, en = _logged_in(engine, settings, None), _logged_in(engine, settings, "en")
    assert "Aucune notice « 999999 »." in fr.get("/notice/999999").text
    assert "No notice « 999999 »." in en.get("/notice/999999").text
    assert "année : une année AAAA de 0001 à 9999, pas 20x5" in fr.get("/", params={"year": "20x5"}).text
    assert "la requête ne fait qu&#39;exclure des mots" in fr.get("/", params={"q": "-santé"}).text
    assert "the query only excludes words" in en.get("/", params={"q": "-santé"}).text
    too_long = "santé " + " ".join(f"-zz{i}" for i in range(310))
    assert "requête trop longue : 311 mots, 300 au plus" in fr.get("/", params={"q": too_long}).text
    assert "query too long: 311 words, at most 300; keep the" in en.get("/", params={"q": too_long}).text
    nid = _id(engine, "celex = '32025R0117'")
    token = csrf_of(fr.get(f"/notice/{nid}").text)
    fr.post(f"/notice/{nid}/feedback", data={"csrf_token": token, "label": "deai", "verdict": "right"})
    flash = re.search(r'class="flash flash-ok" role="status">([^<]+)<', fr.get(f"/notice/{nid}").text).group(1)
    assert html.unescape(flash) == f"Enregistré : « {DEAI_NAME} » s'applique à cette notice."


def test_types_and_facets_have_readable_names(demo):
    settings, engine = demo
    c = _logged_in(engine, settings, None)
    page = c.get("/", params={"q": ""}).text
    facets = re.findall(r'<a href="[^"]*" data-value="([^"]+)"[^>]*>([^<]+)</a>', page)
    names = {code: html.unescape(name) for code, name in facets}
    assert names["deai"] == DEAI_NAME
    assert names["news"] == "Actualité" and names["act"] == "Acte adopté"
    assert names["REG_IMPL"] == "Règlement d'exécution" and names["CNS"] == "Procédure de consultation"
    assert all(code != name for code, name in facets if not code.isdigit() and "-" not in code), facets
    assert "<span>—</span>" not in page

    # What each hit is: from the source's type, else from its CELEX number, else its kind.
    def type_of(query: str, **filters: str) -> str:
        found = c.get("/", params={"q": query, **filters}).text
        return html.unescape(re.search(r'<span class="type"[^>]*>([^<]+)</span>', found).group(1))

    assert type_of("CELEX:32025R0117") == "Règlement d'exécution"
    assert type_of("CELEX:32024R1392") == "Règlement"  # EUR-Lex RSS: no type, a CELEX
    assert type_of("CELEX:52023PC0203") == "Proposition de la Commission"
    assert type_of("Health-EU newsletter 240") == "Actualité"  # no type, no CELEX: its kind
    assert type_of("", source="comitology-register") == "Projet d'acte d'exécution"  # not "Projet d'acte · Projet…"
    hit_types = re.findall(r'<span class="type"[^>]*>([^<]+)</span>', page)
    assert len(hit_types) == 20 and "—" not in hit_types


# --- in the browser ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def site(demo):
    settings, engine = demo
    with live_server(create_app(settings, engine)) as url:
        yield url, engine


@pytest.fixture
def page_fr():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="fr-FR")
        yield context.new_page()
        browser.close()


def _shot(page, name: str, full_page: bool = True) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / name), full_page=full_page)


@needs_chromium
def test_the_workbench_is_french_in_a_french_browser(site, page_fr):
    url, engine = site
    page = page_fr
    page.goto(url + "/")
    assert page.locator("html").get_attribute("lang") == "fr"
    assert page.inner_text("h1") == "Se connecter" and "Mot de passe" in page.inner_text("form")
    log_in(page, url, "alice")
    assert page.inner_text(".flash") == "Connecté en tant que alice (analyste)."
    assert page.locator("header nav a").all_inner_texts() == ["Recherche", "Tableau de bord", "Règles", "À revoir"]

    page.goto(url + "/?q=dispositifs+m%C3%A9dicaux")
    assert page.locator(".facet h3").all_text_contents()[:3] == ["Thématique", "Nature", "Source"]
    assert page.inner_text("[data-facet=label] a[data-value=deai]") == DEAI_NAME
    page.click("[data-facet=label] a[data-value=deai]")
    page.wait_for_selector(".chip")
    assert page.inner_text(".facets .chip").startswith(f"Thématique : {DEAI_NAME}")
    assert re.fullmatch(r"\d+ notices", page.inner_text(".summary .total"))
    assert page.inner_text(".summary .sort").startswith("Tri :")
    hit_labels = page.locator("article.hit .label").all_inner_texts()
    assert hit_labels and all(not re.match(r"[a-z_]+ \d", t) for t in hit_labels)  # names, not codes
    _shot(page, "web-search.png", full_page=False)  # the first results are enough

    nid = _id(engine, "celex = '32025R0117'")
    page.goto(f"{url}/notice/{nid}")
    terms, values = page.locator("dl.facts dt").all_inner_texts(), page.locator("dl.facts dd").all_inner_texts()
    facts = dict(zip(terms, values, strict=True))
    assert facts["Nature"] == "Règlement d'exécution" and facts["Publiée le"] == "24 janv. 2025"
    assert STAMP.fullmatch(facts["Premier repérage"])
    assert page.locator("#labels th").all_inner_texts()[:4] == ["Thématique", "Score", "Règles / modèle",
                                                                "Pourquoi (règles déclenchées)"]  # fmt: skip
    assert page.inner_text("#labels tr[data-label=deai] td strong") == DEAI_NAME
    assert page.locator("#labels tr[data-label=deai] td.fb button").all_inner_texts() == ["✓ juste", "✗ faux"]
    assert page.locator("#versions details[open] th").all_inner_texts() == ["Base juridique", "Actes liés"]
    assert page.locator("#versions details[open] td").all_inner_texts() == ["∅", "32021R2282"] * 2
    _shot(page, "web-notice.png")

    with engine.connect() as conn:
        delivered = conn.execute(text("SELECT notice_id FROM delivery ORDER BY id LIMIT 1")).scalar_one()
    page.goto(f"{url}/notice/{delivered}")
    created = page.locator("#deliveries tbody td:nth-child(5)").all_inner_texts()
    assert created and all(STAMP.fullmatch(t) for t in created)
    assert page.locator("#deliveries th").all_inner_texts()[:3] == ["Destinataire", "Canal", "Objet"]

    page.goto(url + "/rules")
    assert page.inner_text("h1") == "Règles de pertinence"
    assert page.inner_text("#check") == "Vérifier et prévisualiser" and page.inner_text("#words h2").endswith("?")
    _shot(page, "web-rules.png")

    page.goto(url + "/dashboard")
    assert page.inner_text("h1") == "Tableau de bord"
    body = page.inner_text("main")
    assert "Notices par semaine et par thématique" in body and "UTC" not in body
    assert page.inner_text("#sources tr[data-health=quiet] td.health strong") == "silencieuse"
    kinds = page.locator("#sources tbody td:nth-child(2)").all_inner_texts()
    assert "Flux RSS" in kinds and "Cellar (SPARQL)" in kinds and "rss" not in kinds
    success = page.locator("#sources tbody td:nth-child(4)").all_inner_texts()
    assert success and all(STAMP.fullmatch(t) for t in success)
    chart = page.text_content("svg.chart")
    assert "DEAI (" in chart and "deai" not in chart and "semaine du " in chart
    assert "Mission numérique… (" in chart  # a long name is cut to fit the legend
    reason = page.inner_text("#sources tr[data-health=quiet] td.health small")  # storage.health, via the catalogue
    assert reason.startswith("aucun élément daté des 3 derniers jours ouvrés (dernier : "), reason
    _shot(page, "web-dashboard.png")

    page.goto(url + "/review")
    assert page.inner_text("h1") == "À revoir" and "(to review)" not in page.inner_text("main")
    assert page.locator("#review th").all_inner_texts() == [
        "Date", "Notice", "Thématique", "Score / seuil", "Règles", "Modèle", "Pourquoi"
    ]  # fmt: skip
    reasons = set(page.locator("#review tbody td:nth-child(7)").all_inner_texts())
    assert reasons and reasons <= {"incertain", "règles ≠ modèle", "incertain, règles ≠ modèle"}, reasons
    assert DEAI_NAME in page.locator("#review tbody td:nth-child(3)").all_inner_texts()
    _shot(page, "web-review.png", full_page=False)


@needs_chromium
def test_the_header_switch_turns_the_workbench_english_and_back(site, page_fr):
    url, engine = site
    page = page_fr
    log_in(page, url, "alice")
    page.goto(url + "/dashboard")
    page.click("#langs a[hreflang=en]")
    page.wait_for_url(url + "/dashboard")
    assert page.locator("html").get_attribute("lang") == "en" and page.inner_text("h1") == "Dashboard"
    assert page.inner_text("#sources tr[data-health=quiet] td.health strong") == "quiet"
    reason = page.inner_text("#sources tr[data-health=quiet] td.health small")
    assert reason.startswith("no item dated in the last 3 working days (latest: "), reason
    _shot(page, "web-dashboard-en.png")
    page.goto(url + "/review")
    assert page.inner_text("h1") == "To review" and page.inner_text("#review th >> nth=3") == "Score / threshold"
    assert set(page.locator("#review tbody td:nth-child(7)").all_inner_texts()) <= {
        "uncertain", "rules ≠ model", "uncertain, rules ≠ model"
    }  # fmt: skip
    _shot(page, "web-review-en.png", full_page=False)
    nid = _id(engine, "celex = '32025R0117'")
    page.goto(f"{url}/notice/{nid}")  # the choice sticks
    assert page.inner_text("#labels h2") == "Labels"
    assert page.inner_text("dl.facts dd >> nth=0") == "Implementing regulation"
    terms, values = page.locator("dl.facts dt").all_inner_texts(), page.locator("dl.facts dd").all_inner_texts()
    facts = dict(zip(terms, values, strict=True))
    assert facts["Published"] == "Jan 24, 2025"
    descriptions = page.locator("#labels tr[data-label=deai] .desc").all_inner_texts()
    assert "Health technology assessment (HTA Regulation, joint clinical assessments)" in descriptions
    assert "(title)" in page.inner_text("#labels tr[data-label=deai] td.why")
    page.goto(url + "/?q=")
    assert page.inner_text("[data-facet=kind] a[data-value=news]") == "News"
    page.click("#langs a[hreflang=fr]")
    page.wait_for_selector("html[lang=fr]")
    assert page.inner_text("[data-facet=kind] a[data-value=news]") == "Actualité"


def test_dashboard_times_are_paris_times_with_their_zone(demo):
    """Who saved the rules in force, and when: a Paris time with its zone (it read ``… UTC`` before)."""
    from nlp.rules import rules_path, save_rules

    settings, engine = demo
    save_rules(settings, rules_path(settings).read_text(encoding="utf-8"), "alice")
    page = _logged_in(engine, settings, None).get("/dashboard").text
    saved = re.search(r'<p id="rules-in-force">(.*?)</p>', page, re.S).group(1)
    assert re.search(r", enregistrée par alice le " + STAMP.pattern + r"\.$", saved), saved
    assert "UTC" not in re.sub(r"<[^>]+>", "", page)
