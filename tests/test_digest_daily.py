"""Digests and daily use, on an archive built by the real pipeline: the shipped replay bundle through
crawl, ingest, classify and alerts (as ``veille demo`` does), built once for the module and copied per test.

Notice ids and titles below were read by hand from that archive (``veille demo`` on 2026-12-07)."""

from __future__ import annotations

import email
import email.policy
import json
import re
import shutil
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from core.config import load_settings
from storage.db import open_archive, session_scope
from storage.models import Delivery, Feedback
from veille.commands.base import state
from veille.main import app

# A Monday (not a French holiday), 16:00 in Paris: a scheduled digest day for the replayed items.
NOW = datetime(2025, 12, 22, 15, tzinfo=UTC)
PUBLIC = "https://veille.example.org"
DEAI = "veille-deai@has-sante.fr"
# In the deai digest (checked by hand; notice ids vary from one crawl to the next, titles and CELEX do not):
EN_ACT = ("32025D2371", "Commission Decision (EU) 2025/2371 of 26 November 2025")  # English title only
FR_ACT = ("32021R2078", "Règlement d'exécution (UE) 2021/2078 de la Commission du 26 novembre 2021")
# Within 14 days of NOW (15 Dec 2025) or later (2 Nov 2026):
RECENT = ["MDCG 2025-9 Guidance on Breakthrough Devices (BtX)", "Draft Commission Implementing Regulation laying"]
# Older: 25 Nov 2025 and 28 Nov 2025.
OLD = [EN_ACT[1], "Health Technology Assessment: 2026 Work Programme adopted"]


pytestmark = pytest.mark.slow  # builds the demo archive through the replay server


def notice_ids(engine, title: str) -> list[int]:
    """The ids of the notices whose title starts with ``title`` (French or English)."""
    from sqlalchemy import or_

    from storage.models import Notice

    with session_scope(engine) as s:
        q = select(Notice.id).where(or_(Notice.title_fr.startswith(title), Notice.title_en.startswith(title)))
        return sorted(s.exec(q).all())


def notice_id(engine, title: str) -> int:
    [nid] = notice_ids(engine, title)
    return nid


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> tuple[Path, str]:
    """The replay bundle through the whole pipeline except digests; returns the archive file and its config."""
    from crawlers.replay import serve
    from veille.commands.cycle import _demo_settings
    from veille.pipeline import run_cycle

    home = tmp_path_factory.mktemp("pipeline")
    mp = pytest.MonkeyPatch()
    mp.setenv("VEILLE_HOME", str(home))
    server, url = serve()
    try:
        settings = _demo_settings(url, home, "has")
        engine = open_archive(settings.database_url)
        run_cycle(engine, settings, sources=[s.name for s in settings.sources], digests=False)
    finally:
        server.close()
        mp.undo()
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return home / "veille.db", (home / "veille.toml").read_text(encoding="utf-8")


def archive(pipeline, folder: Path, extra: str = ""):
    """A copy of the pipeline's archive with its own outbox and config (``extra`` TOML appended)."""
    db, text = pipeline
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(db, folder / "veille.db")
    text = re.sub(r'(?m)^outbox_dir = ".*"$', f'outbox_dir = "{folder / "outbox"}"', text)
    text = re.sub(r'(?m)^url = "sqlite:///.*"$', f'url = "sqlite:///{folder / "veille.db"}"', text)
    cfg = folder / "veille.toml"
    cfg.write_text(text + "\n" + extra, encoding="utf-8")
    settings = load_settings(cfg)
    return open_archive(settings.database_url), settings, cfg


class Links(HTMLParser):
    """(href, text) of every <a> of an HTML body."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self._href: str | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self._href, self._text = dict(attrs).get("href"), ""

    def handle_data(self, data):
        if self._href is not None:
            self._text += data

    def handle_endtag(self, tag):
        if tag == "a" and self._href is not None:
            self.links.append((self._href, self._text.strip()))
            self._href = None


def eml(outbox: Path, address: str) -> list[tuple[str, str, str]]:
    """(subject, text, html) of each digest e-mail to ``address`` in the files outbox."""
    out = []
    for path in sorted((outbox / "email").glob(f"digest_*_email_{address.replace('@', '_')}-*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        text = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
        html = msg.get_body(("html",)).get_content()
        out.append((str(msg["Subject"]), text, html))
    return out


def rows(engine, recipient: str) -> dict[int, str]:
    with session_scope(engine) as s:
        q = select(Delivery).where(Delivery.recipient == recipient, Delivery.purpose == "digest")
        return {r.notice_id: r.status for r in s.exec(q)}


def eurlex(celex: str, lang: str) -> str:
    return f"https://eur-lex.europa.eu/legal-content/{lang}/TXT/?uri=CELEX:{celex}"


# --- 1. links ----------------------------------------------------------------------------------------


def test_digest_items_link_to_the_workbench_and_to_eurlex_in_the_titles_language(pipeline, tmp_path):
    engine, settings, _ = archive(pipeline, tmp_path / "a", f'[web]\npublic_url = "{PUBLIC}/"\n')
    from alerts import send_digests

    stats = send_digests(engine, settings, now=NOW, since=date(2000, 1, 1))  # as the demo does
    assert stats.messages >= 7 and not stats.errors
    [(_subject, text, html)] = eml(settings.outbox, DEAI)
    # The asked start: Paris midnight of that day, written the French way with its zone.
    assert "nouveautés depuis le 1er janvier 2000 à 00:00 CET\n" in text
    links = Links()
    links.feed(html)
    ids = {title: notice_id(engine, title) for title in (EN_ACT[1], FR_ACT[1], RECENT[0])}
    for _celex, title in (EN_ACT, FR_ACT):
        assert title in text and title in html
        assert (f"{PUBLIC}/notice/{ids[title]}", "Fiche veille") in links.links
        assert f"  Fiche veille : {PUBLIC}/notice/{ids[title]}\n" in text
    assert re.search(r"· score 0,\d\d", text) and not re.search(r"score \d\.\d", text + html)  # French decimals
    # French title: the French EUR-Lex page; English-only title: the English one.
    assert (eurlex(FR_ACT[0], "FR"), "EUR-Lex (FR)") in links.links
    assert f"  EUR-Lex (FR) : {eurlex(FR_ACT[0], 'FR')}\n" in text
    assert (eurlex(EN_ACT[0], "EN"), "EUR-Lex (EN)") in links.links
    assert eurlex(EN_ACT[0], "FR") not in html
    # A news item without CELEX: its workbench page, no EUR-Lex link.
    news = text.split(RECENT[0])[1].split("\n* ")[0]
    assert f"  Fiche veille : {PUBLIC}/notice/{ids[RECENT[0]]}\n" in news and "EUR-Lex" not in news

    [post] = [json.loads(p.read_text()) for p in (settings.outbox / "slack").glob("digest_*_slack_veille-deai-*.json")]
    blocks = json.dumps(post, ensure_ascii=False)
    assert f"<{PUBLIC}/notice/{ids[FR_ACT[1]]}|Fiche veille>" in blocks
    assert f"<{eurlex(FR_ACT[0], 'FR')}|EUR-Lex (FR)>" in blocks
    assert f"<{eurlex(EN_ACT[0], 'EN')}|EUR-Lex (EN)>" in blocks


def test_without_a_public_url_there_is_no_workbench_link_and_a_bad_one_is_refused(pipeline, tmp_path):
    from alerts import send_digests

    engine, settings, _ = archive(pipeline, tmp_path / "a")
    stats = send_digests(engine, settings, now=NOW, since=date(2000, 1, 1), dry_run=True)
    [deai] = [p for p in stats.previews if p.recipient == DEAI]
    assert "Fiche veille" not in deai.text and "/notice/" not in deai.text
    assert f"EUR-Lex (FR) : {eurlex(FR_ACT[0], 'FR')}" in deai.text

    cfg = tmp_path / "bad.toml"
    cfg.write_text('[web]\npublic_url = "javascript:alert(1)"\n', encoding="utf-8")
    state._settings, state.config, state.profile = None, None, None  # the CLI's state of an earlier test
    res = CliRunner().invoke(app, ["--config", str(cfg), "config"])
    state._settings = None
    assert res.exit_code == 2 and f"{cfg}:2: web.public_url: doit être une adresse http(s)" in res.output


# --- 2. backlog --------------------------------------------------------------------------------------


def test_first_run_archives_the_backlog_unsent_and_says_so_in_one_line(pipeline, tmp_path):
    from alerts import send_digests

    engine, settings, _ = archive(pipeline, tmp_path / "a", f'[web]\npublic_url = "{PUBLIC}"\n')
    stats = send_digests(engine, settings, now=NOW)  # the scheduled digest, on an archive never digested
    assert not stats.errors
    [(subject, text, html)] = eml(settings.outbox, DEAI)
    for title in RECENT:
        assert title in text and title in html
    for title in OLD:
        assert title not in text and title not in html
    status = rows(engine, DEAI)
    # (The HTA work programme, carried by two Commission feeds, is one notice.)
    assert [[status[i] for i in notice_ids(engine, t)] for t in RECENT + OLD] == [
        ["sent"],
        ["sent"],
        ["skipped"],
        ["skipped"],
    ]
    # The first pipeline run alerted none of the bundle's critical acts, all older than the window: the HTA
    # implementing act 2025/117 (January 2025) is archived and counted with the rest.
    with session_scope(engine) as s:
        assert s.exec(select(Delivery).where(Delivery.purpose == "alert")).all() == []
    assert status[notice_id(engine, "Règlement d'exécution (UE) 2025/117 de la Commission")] == "skipped"
    n_old = sum(st == "skipped" for st in status.values())
    assert n_old == 32  # the deai notices of the bundle dated before 8 Dec 2025 (one per item)
    line = f"{n_old} notices plus anciennes que 14 jours ont été archivées sans envoi."
    assert text.count(line) == 1 and html.count(line) == 1
    assert subject == "Veille UE du 22 décembre 2025 — 2 nouveautés (DEAI)"
    [post] = [json.loads(p.read_text()) for p in (settings.outbox / "slack").glob("digest_*_slack_veille-deai-*.json")]
    assert json.dumps(post, ensure_ascii=False).count(line) == 1

    # Déontologie has only old items: one short message says so, and nothing else goes out.
    [(subject, text, _)] = eml(settings.outbox, "deontologie@has-sante.fr")
    assert (
        subject == "Veille UE du 22 décembre 2025 — sources vérifiées, rien de nouveau ; 2 notices anciennes archivées"
    )
    assert "2 notices plus anciennes que 14 jours ont été archivées sans envoi." in text
    assert set(rows(engine, "deontologie@has-sante.fr").values()) == {"skipped"}

    # The archived items are never sent later, even by the next day's digest.
    send_digests(engine, settings, now=NOW + timedelta(days=1))
    assert len(eml(settings.outbox, DEAI)) == 1
    assert rows(engine, DEAI) == status


def test_the_window_is_read_from_the_profile_with_file_and_line_on_a_mistake(pipeline, tmp_path, veille_home):
    from alerts import send_digests
    from core.config import ConfigError

    engine, settings, _ = archive(pipeline, tmp_path / "a")
    profile = veille_home / "profiles" / "has" / "profile.toml"
    profile.parent.mkdir(parents=True)
    shipped = (Path(__file__).parent.parent / "core/profiles/has/profile.toml").read_text(encoding="utf-8")
    profile.write_text(shipped.replace("digest_window_days = 14", "digest_window_days = 30"), encoding="utf-8")
    stats = send_digests(engine, settings, now=NOW, dry_run=True)
    [deai] = [p for p in stats.previews if p.recipient == DEAI]
    # 30 days back from 22 Dec 2025 reaches 91 (28 Nov) and 30 (25 Nov).
    assert OLD[0] in deai.text and OLD[1] in deai.text
    assert "notices plus anciennes que 30 jours ont été archivées sans envoi." in deai.text

    profile.write_text(shipped.replace("digest_window_days = 14", "digest_window_days = 0"), encoding="utf-8")
    line = shipped.splitlines().index("digest_window_days = 14") + 1
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(profile))}:{line}: digest_window_days: "):
        send_digests(engine, settings, now=NOW, dry_run=True)


# --- 3. preview -------------------------------------------------------------------------------------


def test_preview_of_a_sent_day_shows_what_was_sent_and_sends_nothing(pipeline, tmp_path, monkeypatch):
    from alerts import send_digests
    from alerts.jobs import preview_digests
    from veille.commands.base import console

    engine, settings, cfg = archive(pipeline, tmp_path / "a", f'[web]\npublic_url = "{PUBLIC}"\n')
    send_digests(engine, settings, now=NOW)
    [(subject, text, _)] = eml(settings.outbox, DEAI)
    sent_files = sorted(p.name for p in settings.outbox.rglob("*") if p.is_file())
    before = rows(engine, DEAI)

    stats = preview_digests(engine, settings, NOW.date(), now=NOW + timedelta(days=3))
    [p] = [p for p in stats.previews if p.recipient == DEAI and p.channel == "email"]
    assert (p.subject, p.text) == (subject, text)
    assert p.items == 2 and stats.sent == sum(pv.items for pv in stats.previews)

    monkeypatch.setattr(console, "width", 400)  # no wrapping of long lines
    res = CliRunner().invoke(app, ["--config", str(cfg), "digest", "--preview", NOW.date().isoformat()])
    state._settings = None
    assert res.exit_code == 0, res.output
    assert f"email → {DEAI} (2 éléments)" in res.output and subject in res.output
    assert "32 notices plus anciennes que 14 jours ont été archivées sans envoi." in res.output
    # The backlog-only message of that day too.
    assert "Veille UE du 22 décembre 2025 — sources vérifiées, rien de nouveau ; 2 notices anciennes" in res.output
    assert sorted(p.name for p in settings.outbox.rglob("*") if p.is_file()) == sent_files
    assert rows(engine, DEAI) == before

    res = CliRunner().invoke(app, ["--config", str(cfg), "digest", "--preview", "2025-12-19"])
    state._settings = None
    assert res.exit_code == 0 and "aucun digest du 19 décembre 2025 dans la boîte d'envoi" in res.output
    res = CliRunner().invoke(app, ["--config", str(cfg), "digest", "--preview", "2025-12-22", "--send"])
    state._settings = None
    assert res.exit_code == 2 and "--preview" in res.output
    res = CliRunner().invoke(app, ["digest", "--help"], env={"COLUMNS": "200"})
    assert "vus pour la première fois" in res.output


# --- 4, 5. dashboard and feedback ------------------------------------------------------------------------


def web_client(engine, settings):
    from tests.web_helpers import client, login
    from web.auth import add_user

    add_user(engine, "alice", "analyst", "correct horse battery")
    return login(client(engine, settings), "alice")


def test_digest_notes_are_in_french(pipeline, tmp_path):
    """The lines `veille digest` prints when it sends nothing speak French, with the day written out."""
    from alerts.jobs import send_digests

    engine, settings, cfg = archive(pipeline, tmp_path / "a")
    saturday = send_digests(engine, settings, now=datetime(2025, 12, 20, 15, tzinfo=UTC))
    assert saturday.notes == ["le 20 décembre 2025 n'est pas un jour ouvré : pas de digest (--since DATE en fait un)"]
    assert saturday.messages == 0
    send_digests(engine, settings, now=NOW)
    again = send_digests(engine, settings, now=NOW + timedelta(hours=1))
    assert f"email {DEAI} : le digest du jour est déjà parti" in again.notes and again.messages == 0
    res = CliRunner().invoke(app, ["--config", str(cfg), "digest", "--preview", "2025-12-20"], env={"COLUMNS": "80"})
    state._settings = None
    assert res.exit_code == 0 and "aucun digest du 20 décembre 2025 dans la boîte d'envoi" in res.output


def test_dashboard_chart_ends_at_the_current_week(pipeline, tmp_path):
    engine, settings, _ = archive(pipeline, tmp_path / "a")
    c = web_client(engine, settings)
    page = c.get("/dashboard")
    assert page.status_code == 200
    today = datetime.now(ZoneInfo("Europe/Paris")).date()
    this_week = today - timedelta(days=today.weekday())
    first = this_week - timedelta(weeks=51)

    # This client reads English: days in Babel's English medium format ("Dec 15, 2025").
    def shown(d):
        return f"{d:%b} {d.day}, {d.year}"

    assert f"52 weeks from {shown(first)} to {shown(today)}" in page.text  # the current week, up to today
    assert "177 notices in the archive" in page.text and "177 of 177 notices scored" in page.text
    # One delivery waiting (an alert planned, not sent yet): singular.
    from alerts.delivery import Planned
    from alerts.outbox import plan

    nid = notice_id(engine, FR_ACT[1])
    plan(engine, [Planned(nid, DEAI, "email", "alert", f"alert:{nid}:email:{DEAI}")], NOW)  # as send_alerts plans
    assert "<strong>1</strong> delivery waiting" in c.get("/dashboard").text


def test_a_double_click_on_feedback_stores_one_verdict_per_analyst(pipeline, tmp_path):
    from tests.web_helpers import csrf_of

    engine, settings, _ = archive(pipeline, tmp_path / "a")
    c = web_client(engine, settings)
    nid = notice_id(engine, FR_ACT[1])
    token = csrf_of(c.get(f"/notice/{nid}").text)
    form = {"csrf_token": token, "label": "deai", "verdict": "right", "comment": "Eudamed"}
    assert c.post(f"/notice/{nid}/feedback", data=form).status_code == 303
    assert c.post(f"/notice/{nid}/feedback", data=form).status_code == 303
    with session_scope(engine) as s:
        got = [(f.notice_id, f.label, f.verdict, f.user, f.comment) for f in s.exec(select(Feedback))]
    assert got == [(nid, "deai", True, "alice", "Eudamed")]
    # Changing one's mind replaces the verdict.
    c.post(f"/notice/{nid}/feedback", data={**form, "verdict": "wrong", "comment": ""})
    with session_scope(engine) as s:
        got = [(f.notice_id, f.label, f.verdict, f.comment) for f in s.exec(select(Feedback))]
    assert got == [(nid, "deai", False, None)]


def test_migration_0008_keeps_the_newest_of_duplicate_verdicts(pipeline, tmp_path):
    """Rows as the old route stored them on a double click (two identical inserts), then the upgrade."""
    from alembic import command
    from sqlalchemy import create_engine, text

    from storage.db import alembic_config, upgrade

    folder = tmp_path / "a"
    folder.mkdir()
    shutil.copyfile(pipeline[0], folder / "veille.db")
    url = f"sqlite:///{folder / 'veille.db'}"
    command.downgrade(alembic_config(url), "0007")  # the archive as it was before this migration
    raw = create_engine(url)
    with raw.begin() as conn:
        for verdict, at in ((1, "2026-12-01 10:00:00"), (1, "2026-12-01 10:00:01"), (0, "2026-12-02 09:00:00")):
            conn.execute(
                text('INSERT INTO feedback (notice_id, label, verdict, "user", created_at) VALUES (1, :l, :v, :u, :t)'),
                {"l": "deai", "v": verdict, "u": "alice", "t": at},
            )
        conn.execute(
            text(
                'INSERT INTO feedback (notice_id, label, verdict, "user", created_at) VALUES (1, "deai", 1, "bob", :t)'
            ),
            {"t": "2026-12-01 11:00:00"},
        )
    raw.dispose()
    upgrade(url)
    engine = open_archive(url)
    with session_scope(engine) as s:
        got = sorted((f.user, f.verdict) for f in s.exec(select(Feedback)))
    assert got == [("alice", False), ("bob", True)]


# --- 6. plurals and facet values ------------------------------------------------------------------------


def test_search_counts_agree_and_unknown_facets_name_the_known_values(pipeline, tmp_path, monkeypatch):
    from veille.commands.base import console

    _, settings, cfg = archive(pipeline, tmp_path / "a")
    monkeypatch.setattr(console, "width", 200)

    def veille(*args: str):
        state._settings = None
        res = CliRunner().invoke(app, ["--config", str(cfg), *args])
        state._settings = None
        return res

    res = veille("search", "survivor")  # only the funding call for young cancer survivors
    assert res.exit_code == 0 and "1 notice trouvée ; 1 affichée(s)." in res.output
    assert "Support a Young Cancer Survivor" in res.output
    assert veille("search", "zzqqxx").output == "aucune notice trouvée.\n"  # no empty table
    res = veille("search", "santé", "--type", "acte")
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1
    assert "--type : valeur inconnue 'acte' (connues : CALL_FOR_EVIDENCE, CNS, COD," in res.output
    assert "REG_IMPL" in res.output
    res = veille("search", "santé", "--source", "press")
    assert res.exit_code == 2 and "--source : valeur inconnue 'press' (connues : cellar-acts," in res.output
    assert "press-corner" in res.output
    assert veille("search", "santé", "--source", "press-corner", "--type", "REG_IMPL").exit_code == 0

    engine = open_archive(settings.database_url)
    c = web_client(engine, settings)
    assert '<span class="total">1 notice</span>' in c.get("/", params={"q": "survivor"}).text


def test_one_verdict_per_analyst_on_each_backend(engine):
    """The upsert and migration 0008 on SQLite and PostgreSQL (a fresh archive: every migration ran)."""
    from core.records import NoticeRecord
    from storage.ingest import ingest
    from tests.web_helpers import csrf_of

    rec = NoticeRecord(source="cellar-acts", external_id="32021R2078", celex=FR_ACT[0], kind="act", title_fr=FR_ACT[1])
    [nid] = ingest(engine, [rec]).changed_ids
    c = web_client(engine, load_settings())
    token = csrf_of(c.get(f"/notice/{nid}").text)
    for verdict in ("right", "right", "wrong"):
        form = {"csrf_token": token, "label": "deai", "verdict": verdict}
        assert c.post(f"/notice/{nid}/feedback", data=form).status_code == 303
    with session_scope(engine) as s:
        assert [(f.notice_id, f.label, f.verdict, f.user) for f in s.exec(select(Feedback))] == [
            (nid, "deai", False, "alice")
        ]
