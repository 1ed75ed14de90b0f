"""The workbench over HTTP (TestClient): pages, access control, CSRF, escaping, accounts."""

from __future__ import annotations

import html
import json
import os
import re
from collections import Counter
from datetime import date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func
from sqlmodel import select
from typer.testing import CliRunner

from core.config import load_settings
from core.records import NoticeRecord
from nlp.phrase_pairs import rule_units
from storage.crosslang import lexicon
from storage.db import open_archive, session_scope
from storage.ingest import ingest
from storage.models import Delivery, Feedback, LabelScore, Notice, Sighting
from storage.search import Filters, search
from tests.web_helpers import (
    PASSWORD,
    XSS_TITLE,
    client,
    copy_archive,
    csrf_of,
    login,
    seed_small,
    seeded_archive_file,
)
from web.app import create_app, routers
from web.auth import authenticate, session_secret


@pytest.fixture(scope="module")
def seeded_file(tmp_path_factory):
    """Seed once per module; each test gets its own copy of the SQLite file."""
    return seeded_archive_file(tmp_path_factory.mktemp("seeded"))


@pytest.fixture
def archive(seeded_file, tmp_path):
    return copy_archive(seeded_file, tmp_path)


def n_feedback(engine) -> int:
    with session_scope(engine) as s:
        return s.exec(select(func.count()).select_from(Feedback)).one()


# --- login ---------------------------------------------------------------------------------------


def test_pages_need_login_and_wrong_password_is_refused(archive):
    engine, ids = archive
    c = client(engine)
    for path in ("/", f"/notice/{ids['impl']}", "/dashboard", "/rules"):
        r = c.get(path)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    page = c.get("/login")
    r = c.post("/login", data={"name": "alice", "password": "nope", "csrf_token": csrf_of(page.text)})
    assert r.status_code == 401 and "wrong password" in r.text
    r = c.post(
        "/login",
        data={"name": "alice", "password": PASSWORD, "csrf_token": csrf_of(r.text), "next": "//evil.example/x"},
    )
    assert r.status_code == 303 and r.headers["location"] == "/"  # no open redirect
    assert c.get("/").status_code == 200


# --- search --------------------------------------------------------------------------------------


def test_search_shows_marked_snippets_facets_and_pages(archive):
    engine, _ = archive
    c = login(client(engine), "rita")
    r = c.get("/", params={"q": "dispositifs médicaux"})
    assert r.status_code == 200
    lex = lexicon(engine, load_settings(), rule_units)  # the page searches in both languages
    want = search(engine, "dispositifs médicaux", Filters(), limit=20, facets=True, lexicon=lex)
    assert want.total > 0
    assert f"{want.total} notices" in r.text
    assert "<mark>" in r.text
    for h in want.hits:
        assert f'href="/notice/{h.notice_id}"' in r.text
    # Facet counts are the storage facets.
    label, count = want.facets["label"].most_common(1)[0]
    assert re.search(rf'data-value="{label}"[^>]*>[^<]+</a>\s*<span class="count">{count}</span>', r.text)
    # Following the label facet filters the results.
    r2 = c.get("/", params={"q": "dispositifs médicaux", "label": label})
    assert f"{count} notices" in r2.text
    # Date range, score threshold, sort.
    narrowed = search(engine, "", Filters(min_score=0.9, date_from=date(2023, 1, 1)), facets=True)
    r3 = c.get("/", params={"min_score": "0.9", "date_from": "2023-01-01", "sort": "date"})
    assert f"{narrowed.total} notices" in r3.text
    # Pagination: page 2 of a browse shows other notices.
    all_ = search(engine, "", Filters(), sort="date", limit=20, offset=20)
    r4 = c.get("/", params={"sort": "date", "page": "2"})
    assert f'href="/notice/{all_.hits[0].notice_id}"' in r4.text


def test_search_reports_bad_input_as_messages(archive):
    engine, _ = archive
    c = login(client(engine), "rita")
    r = c.get("/", params={"q": "-tobacco"})
    assert r.status_code == 200 and "only excludes words" in r.text
    r = c.get("/", params={"date_from": "yesterday", "min_score": "lots"})
    assert "not a date YYYY-MM-DD: yesterday" in r.text and "between 0 and 1, not lots" in r.text


# --- notice ----------------------------------------------------------------------------------------


def test_notice_page_shows_versions_labels_related_and_deliveries(archive, monkeypatch):
    engine, ids = archive
    c = login(client(engine), "rita")
    r = c.get(f"/notice/{ids['dev-0001']}")
    assert r.status_code == 200
    text = r.text
    assert "Règlement d&#39;exécution (UE) 2025/117" in text
    assert 'href="https://eur-lex.europa.eu/legal-content/EN/TXT/?uri=CELEX:32025R0117"' in text
    assert "Versions (2)" in text and "<ins>Corrected on publication in the Official Journal.</ins>" in text
    # The shipped rules' explanation, checked by hand: two deai rules fired on the French title, shown with
    # their descriptions and the words as written, each phrase one <mark> (no single-letter marks).
    why = re.search(r'<tr class="selected" data-label="deai">.*?<td class="why">(.*?)</td>', text, re.S).group(1)
    assert re.search(
        r'<span class="desc">Medical and in vitro diagnostic devices \(MDR, IVDR\)</span> : '
        r"<mark>dispositifs médicaux de diagnostic in vitro</mark>",
        why,
    )
    assert re.search(
        r'<span class="desc">Health technology assessment \(HTA Regulation, joint clinical assessments\)'
        r"</span> : <mark>2021/2282</mark>, <mark>consultations scientifiques communes</mark>",
        why,
    )
    assert all(len(m) > 2 for m in re.findall(r"<mark>(.*?)</mark>", why))
    assert "deai/medical-devices" not in text  # rule ids are for analysts
    assert "<code>deai/medical-devices</code>" in login(client(engine), "alice").get(f"/notice/{ids['dev-0001']}").text
    # Related notices of the same act: the implementing act cites the HTA Regulation.
    r = c.get(f"/notice/{ids['hta']}")
    assert f'href="/notice/{ids["impl"]}"' in r.text and "cites 32021R2282" in r.text
    r = c.get(f"/notice/{ids['impl']}")
    assert f'href="/notice/{ids["hta"]}"' in r.text
    # Deliveries made for a notice.
    with session_scope(engine) as s:
        d = s.exec(select(Delivery)).first()
    r = c.get(f"/notice/{d.notice_id}")
    assert d.recipient in r.text and "Not delivered" not in r.text
    assert c.get("/notice/999999").status_code == 404
    # Read-only: no feedback form for a reader.
    assert "/feedback" not in r.text
    # The archive was scored by the rules in force: nothing outdated.
    from nlp.classify import classify

    assert 'id="scores-outdated"' not in c.get(f"/notice/{ids['dev-0001']}").text
    # The notice changes (a new version crawled): its scores are outdated again, and the page says why.
    with session_scope(engine) as s:
        sighting = s.exec(select(Sighting).where(Sighting.notice_id == ids["dev-0001"])).first()
        n = s.get(Notice, ids["dev-0001"])
        record = NoticeRecord(
            source=sighting.source,
            external_id=sighting.external_id,
            title_fr=n.title_fr,
            title_en=n.title_en,
            summary_en=(n.summary_en or "") + " Corrigendum.",
            celex=n.celex,
        )
    ingest(engine, [record])
    page = c.get(f"/notice/{ids['dev-0001']}").text
    assert "These scores were made before the notice last changed" in page
    # Re-scored, then an upgrade reads text otherwise: outdated again, and the page says so.
    import nlp.classify

    classify(engine, load_settings(), [ids["dev-0001"]])
    assert 'id="scores-outdated"' not in c.get(f"/notice/{ids['dev-0001']}").text
    monkeypatch.setattr(nlp.classify, "TEXT_VERSION", nlp.classify.TEXT_VERSION + 1)
    page = c.get(f"/notice/{ids['dev-0001']}").text
    assert "These scores were made before this version of veille&#39;s text reading" in page


def test_notice_page_on_each_backend(engine):
    """The notice queries (JSON lists compared as text, date filters) on SQLite and PostgreSQL."""
    ids = seed_small(engine, limit=10)
    c = login(client(engine), "alice")
    r = c.get(f"/notice/{ids['hta']}")
    assert r.status_code == 200 and f'href="/notice/{ids["impl"]}"' in r.text
    assert c.get("/dashboard").status_code == 200
    assert c.get("/", params={"q": "health technology"}).status_code == 200


def test_crawled_markup_is_escaped(archive):
    engine, ids = archive
    c = login(client(engine), "alice")
    for r in (c.get("/", params={"q": "medical devices"}), c.get(f"/notice/{ids['xss']}")):
        assert XSS_TITLE not in r.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text
        assert "<img src=x" not in r.text and 'onerror="alert' not in r.text
    r = c.get(f"/notice/{ids['xss']}")
    assert 'href="javascript:' not in r.text  # crawled URLs are linked only when http(s)
    assert "<mark>Medical devices</mark>" in r.text  # the words as written in the hostile summary
    # Explanations are escaped too: an analyst saves rules whose description holds markup, the notice is
    # re-scored by the real classifier, and the page shows the markup as text.
    from nlp.classify import classify
    from nlp.rules import rules_path, save_rules

    settings = load_settings()
    shipped = rules_path(settings).read_text(encoding="utf-8")
    desc = '{fr: "Dispositifs médicaux et de diagnostic in vitro (MDR, IVDR)", en:'
    assert desc in shipped
    save_rules(settings, shipped.replace(desc, '{fr: "<b>r</b> <img src=y onerror=alert(4)>", en:'), "alice")
    classify(engine, settings, [ids["xss"]])
    r = login(client(engine, lang="fr"), "alice").get(f"/notice/{ids['xss']}")  # the French description
    assert '<span class="desc">&lt;b&gt;r&lt;/b&gt; &lt;img src=y onerror=alert(4)&gt;</span>' in r.text
    assert "<b>r</b>" not in r.text and "<img src=y" not in r.text


# --- feedback and access control -----------------------------------------------------------------


def test_analyst_feedback_is_recorded(archive):
    engine, ids = archive
    c = login(client(engine), "alice")
    nid = ids["impl"]
    token = csrf_of(c.get(f"/notice/{nid}").text)
    r = c.post(
        f"/notice/{nid}/feedback", data={"csrf_token": token, "label": "deai", "verdict": "right", "comment": "HTA"}
    )
    assert r.status_code == 303
    r = c.post(f"/notice/{nid}/feedback", data={"csrf_token": token, "label": "numerique", "verdict": "wrong"})
    with session_scope(engine) as s:
        rows = list(s.exec(select(Feedback).where(Feedback.notice_id == nid).order_by(Feedback.id)))
    assert [(f.label, f.verdict, f.user, f.comment) for f in rows] == [
        ("deai", True, "alice", "HTA"),
        ("numerique", False, "alice", None),
    ]
    page = c.get(f"/notice/{nid}").text
    assert "Recorded: “Mission numérique en santé” does not apply to this notice." in page and "<q>HTA</q>" in page
    r = c.post(f"/notice/{nid}/feedback", data={"csrf_token": token, "label": "nope", "verdict": "right"})
    assert r.status_code == 400 and n_feedback(engine) == 2


def test_reader_cannot_post_feedback_or_rules(archive):
    engine, ids = archive
    c = login(client(engine), "rita")
    token = csrf_of(c.get("/").text)
    r = c.post(f"/notice/{ids['impl']}/feedback", data={"csrf_token": token, "label": "deai", "verdict": "right"})
    assert r.status_code == 403 and "read-only" in r.text
    for path in ("/rules/check", "/rules/save"):
        assert c.post(path, data={"csrf_token": token, "rules": "x", "previewed": "y"}).status_code == 403
    assert n_feedback(engine) == 0


def test_every_post_needs_the_session_csrf_token(archive):
    engine, ids = archive
    app = create_app(load_settings(), engine)
    c = login(TestClient(app, follow_redirects=False), "alice")
    posts = [r.path for router in routers() for r in router.routes if "POST" in r.methods]
    assert {"/login", "/logout", "/notice/{notice_id}/feedback", "/rules/check", "/rules/save"} <= set(posts)
    form = {"label": "deai", "verdict": "right", "rules": "x", "name": "alice", "password": PASSWORD}
    for path in posts:
        url = path.replace("{notice_id}", str(ids["impl"]))
        for bad in ({}, {"csrf_token": "forged"}):
            r = c.post(url, data={**form, **bad})
            assert r.status_code == 403, (path, bad)
            assert "CSRF" in r.text
    assert n_feedback(engine) == 0
    # A token from another session does not work either.
    other = login(client(engine), "alice")
    foreign = csrf_of(other.get("/").text)
    r = c.post(f"/notice/{ids['impl']}/feedback", data={**form, "csrf_token": foreign})
    assert r.status_code == 403 and n_feedback(engine) == 0


def test_trusted_header_names_the_user(archive, monkeypatch):
    engine, ids = archive
    settings = load_settings()
    settings.web.trusted_header = "X-Remote-User"
    c = client(engine, settings)
    assert c.get("/").status_code == 401  # no header: the proxy did not authenticate
    r = c.get("/", headers={"X-Remote-User": "alice"})
    assert r.status_code == 200 and "role-analyst" in r.text
    r = c.get("/", headers={"X-Remote-User": "newcomer"})  # unknown to the DB: read-only
    assert r.status_code == 200 and "role-reader" in r.text and "/feedback" not in r.text
    token = csrf_of(c.get(f"/notice/{ids['impl']}", headers={"X-Remote-User": "alice"}).text)
    r = c.post(
        f"/notice/{ids['impl']}/feedback",
        headers={"X-Remote-User": "newcomer"},
        data={"csrf_token": token, "label": "deai", "verdict": "right"},
    )
    assert r.status_code == 403 and n_feedback(engine) == 0


# --- dashboard ------------------------------------------------------------------------------------


def test_dashboard_chart_sources_outbox(archive):
    engine, _ = archive
    c = login(client(engine), "rita")
    r = c.get("/dashboard", params={"weeks": 104})
    assert r.status_code == 200
    assert r.text.count('<rect class="bar"') >= 10
    # The legend totals are the selected labels of the notices published in the window.
    # Days in the reader's language (this client's is English): "Jan 5, 2026".
    first, last = re.search(r"104 weeks from (\w{3} \d{1,2}, \d{4}) to (\w{3} \d{1,2}, \d{4}) ", r.text).groups()
    with session_scope(engine) as s:
        rows = s.exec(
            select(LabelScore.label, Notice.published_at)
            .join(Notice, Notice.id == LabelScore.notice_id)
            .where(LabelScore.selected)
        ).all()
    start, end = (datetime.strptime(d, "%b %d, %Y").date() for d in (first, last))  # the last is today
    end += timedelta(days=7 - end.weekday())  # the current week, whole
    from core.profiles import load_labels
    from web.routes.dashboard import short_name

    names = {k: v.name for k, v in load_labels(load_settings()).items()}
    want = Counter(short_name(names, label) for label, when in rows if when and start <= when < end)
    shown = {html.unescape(m[0]): int(m[1]) for m in re.findall(r'class="legend">([^<]+?) \((\d+)\)', r.text)}
    assert shown == dict(want) and sum(shown.values()) > 0
    assert "ema-news" in r.text and "HTTP 202 au corps vide (défi anti-robot) de www.ema.europa.eu" in r.text
    with session_scope(engine) as s:
        pending = s.exec(select(func.count()).select_from(Delivery).where(Delivery.status != "sent")).one()
    assert f"<strong>{pending}</strong> deliveries waiting" in r.text


def test_dashboard_shows_rules_model_cross_validation_and_outdated_scores(archive):
    from nlp.classify import classify
    from nlp.rules import active_rules, rules_path, save_rules
    from nlp.train import train
    from tests.nlp_support import make_tiny_model

    engine, _ = archive
    settings = load_settings()
    c = login(client(engine), "rita")
    with session_scope(engine) as s:
        n = s.exec(select(func.count()).select_from(Notice)).one()
    # As shipped, no model, and the archive was scored by these rules: none outdated.
    page = c.get("/dashboard").text
    assert f"version <code>{active_rules(settings).version}</code> (as shipped)" in page
    assert "No model yet" in page and f"{n} of {n} notices scored by the rules and model in force" in page
    assert "outdated" not in page.split('id="scores"')[1].split("</p>")[0]
    # A model directory with a minimal meta (made by hand, or by an older version) still renders.
    make_tiny_model(settings)
    r = c.get("/dashboard")
    assert r.status_code == 200 and "Model in force: <code>m-tiny</code>" in r.text
    # A model trained through spaCy's config (2 folds, to be quick): its cross-validation is shown.
    meta = json.loads((train(settings, k_folds=2, epochs=1) / "veille_meta.json").read_text(encoding="utf-8"))
    classify(engine, settings)
    page = c.get("/dashboard").text
    assert f"Model in force: <code>{meta['version']}</code>" in page and "2-fold cross-validation" in page
    combined = [f["combined"]["micro_f1"] for f in meta["cv"]]
    row = re.search(r'<tr data-mode="combined">(.*?)</tr>', page, re.S).group(1)
    assert f"{sum(combined) / 2:.3f} ± {abs(combined[0] - combined[1]) / 2:.3f}" in row
    assert f"{n} of {n} notices scored" in page and "outdated" not in page.split('id="scores"')[1].split("</p>")[0]
    # An analyst saves rules: who and when, the model's figures were made with other rules, all outdated again.
    text = rules_path(settings).read_text(encoding="utf-8")
    version = save_rules(settings, text + "\n# reviewed\n", "alice")
    page = c.get("/dashboard").text
    assert f"version <code>{version}</code>, saved by alice on " in page
    assert "not those in force" in page and f"<strong>{n}</strong> outdated" in page
    assert "held-out" in page  # and why its figures are not here


# --- accounts -------------------------------------------------------------------------------------


def test_users_cli_and_hashed_passwords(sqlite_url, monkeypatch):
    from veille.commands.base import state
    from veille.main import app

    monkeypatch.setenv("VEILLE_DATABASE_URL", sqlite_url)
    monkeypatch.setattr(state, "_settings", None)
    runner = CliRunner()
    r = runner.invoke(app, ["users", "add", "bob", "--role", "analyst", "--password-stdin"], input="s3cret-pass\n")
    assert r.exit_code == 0, r.output
    assert "utilisateur bob : analyst" in r.output
    engine = open_archive(sqlite_url)
    assert authenticate(engine, "bob", "s3cret-pass").role == "analyst"
    assert authenticate(engine, "bob", "wrong") is None
    with engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT password_hash FROM web_user WHERE name='bob'").scalar()
    assert stored.startswith("scrypt$") and "s3cret" not in stored
    r = runner.invoke(app, ["users", "add", "eve", "--role", "admin", "--password-stdin"], input="whatever1\n")
    assert r.exit_code == 2 and "--role : reader ou analyst" in r.output
    r = runner.invoke(app, ["users", "add", "eve", "--role", "reader", "--password-stdin"], input="short\n")
    assert r.exit_code == 2 and "au moins 8 caractères" in r.output
    r = runner.invoke(app, ["users", "list"])
    assert re.search(r"bob\s+analyst", r.output) and "eve" not in r.output


def test_session_secret_is_generated_once_or_taken_from_env(monkeypatch):
    settings = load_settings()
    first = session_secret(settings)
    assert len(first) > 40 and session_secret(settings) == first
    assert oct(os.stat(settings.home / "web_secret").st_mode & 0o777) == "0o600"
    monkeypatch.setenv("VEILLE_WEB_SECRET", "from-the-environment")
    assert session_secret(load_settings()) == "from-the-environment"


# --- rules -----------------------------------------------------------------------------------------


def test_rules_page_shows_a_file_saved_in_another_encoding_and_why(archive):
    from nlp import rules

    engine, _ = archive
    settings = load_settings()
    shipped = rules.rules_path(settings).read_text(encoding="utf-8")
    edited = settings.home / "profiles" / settings.profile / "rules.yaml"
    edited.parent.mkdir(parents=True, exist_ok=True)
    assert shipped.startswith("# Règles")  # a non-ASCII letter on line 1, which Latin-1 writes as one byte
    edited.write_bytes(shipped.encode("latin-1", "replace"))
    page = login(client(engine, settings), "alice").get("/rules")
    assert page.status_code == 200 and "rules.yaml:1: pas en UTF-8 (octet 0xe8)" in page.text


def test_notice_page_says_when_the_models_score_alone_does_not_count(archive):
    from nlp.classify import classify
    from tests.nlp_support import make_tiny_model

    engine, ids = archive
    settings = load_settings()
    make_tiny_model(settings)
    classify(engine, settings, [ids["dev-0001"]])
    page = login(client(engine, settings, lang="fr"), "rita").get(f"/notice/{ids['dev-0001']}").text
    row = re.search(r'<tr class="below" data-label="diqasm">(.*?)</tr>', page, re.S).group(1)
    assert "aucune règle déclenchée : le score du modèle ne compte seul qu'à partir de 0.95" in row


def test_rules_preview_says_when_the_models_thresholds_apply(archive, tmp_path):
    from nlp import rules
    from tests.nlp_support import make_tiny_model
    from web import rules_worker

    engine, _ = archive
    # The check worker outlives requests: started (with its fork server) under another home, it must still read
    # the profile and the model in force of the server's home.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VEILLE_HOME", str(tmp_path / "elsewhere"))
        rules_worker.warm()
    settings = load_settings()
    make_tiny_model(settings)
    c = login(client(engine, settings), "alice")
    page = c.get("/rules")
    original = rules.rules_path(settings).read_text(encoding="utf-8")
    lowered = original.replace("defaults:\n  threshold: 0.5\n", "defaults:\n  threshold: 0.3\n", 1)
    assert lowered != original
    r = c.post("/rules/check", data={"csrf_token": csrf_of(page.text), "rules": lowered})
    assert r.status_code == 200 and 'id="preview-note"' in r.text and "m-tiny" in r.text
    r = c.post("/rules/check", data={"csrf_token": csrf_of(page.text), "rules": original + "\n# a comment\n"})
    assert r.status_code == 200 and 'id="preview"' in r.text and 'id="preview-note"' not in r.text


def test_rules_check_preview_and_save(archive):
    from nlp import rules

    engine, _ = archive
    settings = load_settings()
    c = login(client(engine, settings), "alice")
    page = c.get("/rules")
    assert page.status_code == 200
    original = rules.rules_path(settings).read_text(encoding="utf-8")
    token = csrf_of(page.text)
    broken = original.rstrip("\n") + "\n  - [unclosed\n"
    bad_line = len(broken.splitlines())
    r = c.post("/rules/check", data={"csrf_token": token, "rules": broken})
    assert r.status_code == 422 and "Not valid:" in r.text
    line = int(re.search(r'data-error-line="(\d+)"', r.text).group(1))
    assert abs(line - bad_line) <= 1  # the parser names the line of the mistake
    assert rules.rules_path(settings).read_text(encoding="utf-8") == original  # nothing saved
    fixed = original.rstrip("\n") + "\n# reviewed in the workbench\n"
    # Saving without (or with a stale) preview shows the preview instead of saving.
    r = c.post("/rules/save", data={"csrf_token": token, "rules": fixed, "previewed": "stale"})
    assert r.status_code == 409 and 'id="preview"' in r.text
    assert rules.rules_path(settings).read_text(encoding="utf-8") == original
    r = c.post("/rules/check", data={"csrf_token": token, "rules": fixed})
    assert r.status_code == 200 and 'id="preview"' in r.text
    previewed = re.search(r'name="previewed" value="([0-9a-f]+)"', r.text).group(1)
    r = c.post("/rules/save", data={"csrf_token": token, "rules": fixed.replace("\n", "\r\n"), "previewed": previewed})
    assert r.status_code == 303
    assert rules.rules_path(settings).read_text(encoding="utf-8") == fixed
    assert "Rules saved as version" in c.get("/rules").text


def test_rules_words_lists_what_a_phrase_catches_for_every_user(archive):
    engine, _ = archive
    settings = load_settings()
    ingest(
        engine,
        [
            NoticeRecord(source="press", external_id="w1", title_fr="Aide humanitaire de l'Union au Soudan"),
            NoticeRecord(source="press", external_id="w2", title_fr="Aides d'État : un régime autorisé"),
            NoticeRecord(source="press", external_id="w3", title_fr="Soutien aux proches aidants"),
        ],
    )
    c = login(client(engine, settings), "rita")  # a reader may look too: nothing is changed
    r = c.get("/rules/words", params={"phrase": "aidants", "lang": "fr"})
    assert r.status_code == 200, r.text
    rows = re.findall(r"<tr><td>([^<]+)</td><td>(\d+)</td><td>(.*?)</td></tr>", r.text)
    assert {form: int(n) for form, n, _ in rows} == {"aide": 1, "aides": 1, "aidants": 1}
    assert all(re.fullmatch(r'<a href="/notice/\d+">\d+</a>', links) for _, _, links in rows)
    assert "<code>fr: aid</code>: 3 notices hold it" in r.text
    # The phrase typed is escaped back into the page; a bad language or a phrase of no word is a 422.
    r = c.get("/rules/words", params={"phrase": XSS_TITLE, "lang": "en"})
    assert r.status_code == 200 and XSS_TITLE not in r.text and "&lt;script&gt;" in r.text
    r = c.get("/rules/words", params={"phrase": "aidants", "lang": "de"})
    assert r.status_code == 422 and "en, fr ou any" in r.text
    r = c.get("/rules/words", params={"phrase": "--", "lang": "fr"})
    assert r.status_code == 422 and "aucun mot à chercher" in r.text
