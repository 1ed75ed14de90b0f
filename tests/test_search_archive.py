"""Search on an archive built by the real pipeline: the shipped replay bundle through crawl, ingest,
classify and alerts (``veille demo``), once per test session. Identifiers, export, cross-language.

The ids, titles and fields asserted here were read by hand from the demo archive (2026-12-07)."""

from __future__ import annotations

import csv
import io
import json
import shutil

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from core.config import load_settings
from storage.db import open_archive
from tests.web_helpers import client, login
from veille.commands.base import state
from veille.main import app
from web.auth import add_user

JSC_TITLE = (
    "Règlement d'exécution (UE) 2025/117 de la Commission du 24 janvier 2025 établissant les modalités"
    " d'application du règlement (UE) 2021/2282"
)
EXCISE_TITLE = "Amending Directive (EU) 2020/262 as regards the general arrangements for excise duty"


def _invoke(args: list[str], env: dict[str, str]):  # click Result
    state._settings, state.config, state.profile = None, None, None
    try:
        return CliRunner().invoke(app, args, env={**env, "COLUMNS": "200"})
    finally:
        state._settings, state.config, state.profile = None, None, None


@pytest.fixture(scope="session")
def demo_home(tmp_path_factory):
    """``veille demo`` once: the recorded sources replayed through the whole pipeline."""
    base = tmp_path_factory.mktemp("search-demo")
    env = {"VEILLE_HOME": str(base / "home")}
    result = _invoke(["demo", "--home", str(base / "demo")], env)
    assert result.exit_code == 0, result.output
    return base / "demo"


@pytest.fixture
def demo_copy(demo_home, tmp_path):
    """A private copy of the demo archive (tests that write: users, the lexicon cache)."""
    engine = open_archive(f"sqlite:///{demo_home / 'veille.db'}")
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    home = tmp_path / "demo"
    shutil.copytree(demo_home, home)
    cfg = home / "veille.toml"
    cfg.write_text(cfg.read_text(encoding="utf-8").replace(str(demo_home), str(home)), encoding="utf-8")
    return home


@pytest.fixture
def veille(demo_copy, veille_home):
    cfg = demo_copy / "veille.toml"

    def run(*args: str):
        return _invoke(["--config", str(cfg), *args], {"VEILLE_HOME": str(veille_home)})

    return run


def _id_of(home, column: str, value: str) -> int:
    engine = open_archive(f"sqlite:///{home / 'veille.db'}")
    with engine.connect() as conn:
        row = conn.execute(text(f"SELECT id FROM notice WHERE {column} = :v"), {"v": value}).one()
    engine.dispose()
    return row.id


def _json(result) -> list[dict]:
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.mark.parametrize(
    "query",
    [
        "32025R0117",
        "CELEX:32025R0117",
        "celex:32025r0117",
        "2025/117",
        "Règlement (UE) 2025/117",
        "eli/reg_impl/2025/117",
        "http://data.europa.eu/eli/reg_impl/2025/117/oj",
    ],
)
def test_cli_search_finds_the_act_by_each_identifier_form(veille, demo_copy, query):
    jsc = _id_of(demo_copy, "celex", "32025R0117")
    rows = _json(veille("search", query, "--format", "json"))
    assert rows, f"{query!r} found nothing"
    assert rows[0]["id"] == jsc and rows[0]["celex"] == "32025R0117"
    assert rows[0]["title"].startswith(JSC_TITLE)


def test_cli_search_finds_a_procedure_by_its_reference(veille, demo_copy):
    proc = _id_of(demo_copy, "procedure", "2025/0581(CNS)")
    for query in ("2025/0581(CNS)", "2025/0581 (cns)", "CNS(2025)0581"):
        rows = _json(veille("search", query, "--format", "json"))
        assert [r["id"] for r in rows][:1] == [proc], query
        assert rows[0]["procedure"] == "2025/0581(CNS)" and rows[0]["title_en"].startswith(EXCISE_TITLE)


def test_an_unknown_identifier_finds_nothing_rather_than_everything(veille):
    rows = _json(veille("search", "32099R0117", "--format", "json"))
    assert rows == []


def test_explain_accepts_a_celex_and_the_internal_id(veille, demo_copy):
    jsc = _id_of(demo_copy, "celex", "32025R0117")
    by_celex = veille("explain", "32025R0117")
    by_id = veille("explain", str(jsc))
    assert by_celex.exit_code == 0, by_celex.output
    assert "2025/117 de la Commission du 24 janvier 2025" in by_celex.output
    assert by_celex.output == by_id.output
    missing = veille("explain", "32099R0117")
    assert missing.exit_code == 2 and "aucune notice '32099R0117'" in missing.output
    assert len(missing.output.strip().splitlines()) == 1


@pytest.fixture
def web(demo_copy):
    settings = load_settings(demo_copy / "veille.toml")
    engine = open_archive(settings.database_url)
    add_user(engine, "alice", "analyst", "correct horse battery")
    return login(client(engine, settings), "alice")


def test_web_search_and_notice_page_by_celex(web, demo_copy):
    jsc = _id_of(demo_copy, "celex", "32025R0117")
    page = web.get("/", params={"q": "CELEX:32025R0117"})
    assert page.status_code == 200
    first = page.text.index('<article class="hit">')
    assert f'href="/notice/{jsc}"' in page.text[first : first + 300]
    moved = web.get("/notice/32025R0117")
    assert moved.status_code == 307 and moved.headers["location"] == f"/notice/{jsc}"
    assert web.get("/notice/eli/reg_impl/2025/117").status_code == 404  # a path, not an id: use the search box
    shown = web.get(f"/notice/{jsc}")
    assert shown.status_code == 200 and "2025/117 de la Commission du 24 janvier 2025" in shown.text
    assert web.get("/notice/32099R0117").status_code == 404


def test_cli_export_fields_checked_by_hand(veille, demo_copy):
    jsc = _id_of(demo_copy, "celex", "32025R0117")
    proc = _id_of(demo_copy, "procedure", "2025/0581(CNS)")
    (row,) = _json(veille("search", "32025R0117", "--format", "json"))
    assert row["id"] == jsc and row["kind"] == "act" and row["doc_type"] == "REG_IMPL"
    assert row["source"] == "cellar-acts" and row["title_fr"].startswith(JSC_TITLE) and row["title_en"] == ""
    assert row["document_date"] == "2025-01-24"  # "du 24 janvier 2025"
    assert row["labels"] == "deai" and row["scores"].startswith("deai=0.9")
    assert row["url"] == "https://eur-lex.europa.eu/legal-content/AUTO/?uri=CELEX:32025R0117"
    assert row["eurlex_url"] == "https://eur-lex.europa.eu/legal-content/FR/TXT/?uri=CELEX:32025R0117"
    assert row["notice_url"] == f"/notice/{jsc}"
    assert row["first_seen"].endswith(("+01:00", "+02:00"))  # Paris time with its offset

    out = veille("search", "2025/0581(CNS)", "--format", "csv")
    assert out.exit_code == 0, out.output
    rows = list(csv.DictReader(io.StringIO(out.output)))
    assert rows[0]["id"] == str(proc) and rows[0]["procedure"] == "2025/0581(CNS)"
    assert rows[0]["title_fr"].startswith("Modification de la directive (UE) 2020/262")
    assert rows[0]["source"] == "ep-procedures" and rows[0]["celex"] == ""
    assert rows[0]["url"] == "https://oeil.secure.europarl.europa.eu/oeil/en/procedure-file?reference=2025/0581(CNS)"


def test_web_csv_download_of_a_search(web, demo_copy):
    jsc = _id_of(demo_copy, "celex", "32025R0117")
    page = web.get("/", params={"q": "2025/117"})
    assert 'href="/search.csv?q=2025%2F117' in page.text
    got = web.get("/search.csv", params={"q": "2025/117"})
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
    assert "attachment" in got.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(got.content.decode("utf-8-sig"))))
    assert rows[0]["id"] == str(jsc) and rows[0]["celex"] == "32025R0117"
    assert rows[0]["notice_url"] == f"http://testserver/notice/{jsc}"
    assert rows[0]["labels"] == "deai" and rows[0]["title"].startswith(JSC_TITLE)
    bad = web.get("/search.csv", params={"q": "-santé"})
    assert bad.status_code == 400


def test_web_and_cli_answer_an_overlong_query_in_one_line(web, veille):
    many_or = "santé OR " + " OR ".join(f"zz{i}" for i in range(150))
    assert web.get("/", params={"q": many_or}).status_code == 200  # was a 500: FTS5 parser stack overflow
    too_long = "santé " + " ".join(f"-zz{i}" for i in range(310))
    page = web.get("/", params={"q": too_long})
    assert page.status_code == 200 and "query too long: 311 words, at most 300" in page.text  # an English client
    out = veille("search", too_long)
    assert out.exit_code == 2 and out.output.startswith("erreur : requête trop longue")
    assert len(out.output.strip().splitlines()) == 1


# --- cross-language: French queries find English notices and the reverse ---------------------

MDCG_CYBER = "MDCG 2019-16 Guidance on Cybersecurity for medical devices"  # sante-medical-devices, English only
EHDS_PRESS = "La Commission européenne se félicite de l’adoption par le Parlement européen de l’espace européen"
EXPERT_PANEL = "Independent Expert Panel on effective ways of investing in health publishes opinion"


def _titles(rows: list[dict]) -> list[str]:
    return [r["title"] for r in rows]


def test_a_french_query_finds_english_notices(veille):
    rows = _json(veille("search", "dispositifs médicaux", "--format", "json", "-n", "50"))
    assert MDCG_CYBER in _titles(rows)
    assert len([r for r in rows if r["title_en"] and not r["title_fr"]]) >= 10  # of the 15 English ones
    exact = _json(veille("search", "dispositifs médicaux", "--exact", "--format", "json", "-n", "50"))
    assert MDCG_CYBER not in _titles(exact) and all(r["title_fr"] for r in exact)
    sante = _json(veille("search", "santé", "--format", "json", "-n", "50"))
    assert any(t.startswith(EXPERT_PANEL) for t in _titles(sante)) and len(sante) >= 19
    quoted = _json(veille("search", '"santé"', "--format", "json", "-n", "50"))  # quoted: as written
    assert [r["title"] for r in quoted] == [r["title"] for r in sante if r["title_fr"]]


def test_an_english_query_finds_french_notices(veille):
    rows = _json(veille("search", "health data", "--format", "json"))
    assert any(t.startswith(EHDS_PRESS) for t in _titles(rows))
    exact = _json(veille("search", "health data", "--exact", "--format", "json"))
    assert not any(t.startswith(EHDS_PRESS) for t in _titles(exact))


def test_web_search_is_cross_language_and_marks_the_translated_words(web):
    page = web.get("/", params={"q": "dispositifs médicaux"})
    assert page.status_code == 200 and MDCG_CYBER in page.text
    assert "<mark>medical</mark> <mark>devices</mark>" in page.text


def test_the_run_stores_the_lexicon_learned_from_titles_and_rules(demo_copy):
    from nlp.phrase_pairs import rule_units
    from storage.crosslang import KEY, _fingerprint, archive_units, learn, lexicon

    settings = load_settings(demo_copy / "veille.toml")
    engine = open_archive(settings.database_url)
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT value FROM kv WHERE key = :k"), {"k": KEY}).scalar_one()
    stored = json.loads(stored) if isinstance(stored, str) else stored
    assert stored["fingerprint"] == _fingerprint(engine, settings)  # the demo's run left it current
    assert stored["fr_en"]["sant"] == ["health"] and stored["en_fr"]["devic"] == ["disposit"]
    assert learn([*archive_units(engine), *rule_units(settings)]) == lexicon(engine, settings, rule_units)


def test_learning_links_each_term_to_its_strongest_partner():
    from storage.crosslang import learn

    lex = learn(
        [
            ("dispositifs médicaux implantables", "implantable medical devices"),
            ("sécurité des dispositifs", "safety of devices"),
            ("santé publique", "public health"),
            ("données de santé", "health data"),
            ("sécurité des données", "data security"),
        ]
    )
    assert lex.fr_en["disposit"] == ["devic"] and lex.en_fr["health"] == ["sant"]
    assert lex.fr_en["don"] == ["data"] and lex.fr_en["medical"] == ["medic"]  # a cognate
    assert "de|de" in lex.function_words and "the|the" in lex.function_words
