"""Source kinds declared once (crawlers/kinds/), their options typed and checked by `veille config`.

The toy kind (tests/toy_kind.py) follows docs/extending.md "Ajouter une source" from a test: it is fed
by the replay server from a CONSTRUCTED payload and runs through the real crawl (child process) and the
pipeline to notices in a SQLite archive.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import date

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from core.config import ConfigError, Expectation, default_config_text, load_settings, parse_toml, validate_toml
from core.config import Settings as SettingsModel
from crawlers.kinds import KINDS
from crawlers.kinds.sparql import SparqlOptions
from crawlers.replay import config_text
from storage.db import open_archive, session_scope
from storage.models import CrawlRun, Notice, Sighting, Source
from tests.conftest import ROOT
from tests.replay_server import ReplayServer, Route, fixture, write_config
from tests.toy_kind import TOY, ToyOptions

TOY_PAYLOAD = "toy/CONSTRUCTED-toy-register.json"


def _line_of(cfg, start: str) -> int:
    return next(n for n, text in enumerate(cfg.read_text().splitlines(), 1) if text.startswith(start))


def _veille_config(cfg, monkeypatch) -> tuple[int, str]:
    from veille.commands.base import state
    from veille.main import app

    monkeypatch.setattr(state, "_settings", None)  # the CLI's state caches the settings of a previous call
    result = CliRunner().invoke(app, ["--config", str(cfg), "config"])
    return result.exit_code, result.output


# --- the shipped configs and the kinds' declarations ------------------------------------------------


@pytest.mark.parametrize("which", ["default", "replay"])
def test_shipped_configs_validate_with_typed_options(which):
    text = default_config_text() if which == "default" else config_text("http://127.0.0.1:9")
    settings = validate_toml(SettingsModel, parse_toml(text, which), text, which)
    assert settings.sources and all(type(s.options) is KINDS[s.kind].options for s in settings.sources)
    watched = next(s for s in settings.sources if s.name == "cellar-watched-acts")
    assert isinstance(watched.options, SparqlOptions) and watched.options.query == "based_on"
    assert watched.options.acts == ["32025R0327", "32024R1689", "32021R2282", "32017R0745", "32017R0746"]
    hta = next(s for s in settings.sources if s.kind == "comitology").options.committees[0]
    assert (hta.match, hta.act) == ("health technology assessment", "32021R2282")


def test_each_kind_declares_its_healthy_run_and_options_can_override_it_key_by_key(tmp_path):
    cfg = write_config(
        tmp_path / "veille.toml",
        [
            {"name": "oj", "kind": "sparql", "url": "http://127.0.0.1:9/sparql"},
            {
                "name": "oj-based",
                "kind": "sparql",
                "url": "http://127.0.0.1:9/sparql",
                "options": {"query": "based_on"},
            },
            {"name": "oj-slow", "kind": "sparql", "url": "u", "options": {"expect": {"working_days": 5}}},
            {"name": "ft", "kind": "funding", "url": "u"},
        ],
    )
    exp = {s.name: s.expectation for s in load_settings(cfg).sources}
    assert exp["oj"] == Expectation(per_working_day=1, working_days=3)  # OJ acts: every working day
    assert exp["oj-based"] == Expectation(empty_runs=0)  # acts based on watched acts are rare
    assert exp["oj-slow"] == Expectation(per_working_day=1, working_days=5)  # the kind's other keys are kept
    assert exp["ft"] == Expectation(empty_runs=3, deadlines=True)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            '{ qurey = "acts" }',
            "sources.1.options.qurey: option inconnue (connues : expect, query, acts, initial_days,",
        ),
        ('{ query = "all" }', "sources.1.options.query: doit être 'acts' ou 'based_on'"),
        ("{ page_size = 0 }", "sources.1.options.page_size: doit être supérieur ou égal à 1"),
    ],
)
def test_veille_config_refuses_a_bad_option_at_its_line(tmp_path, monkeypatch, options, message):
    cfg = tmp_path / "veille.toml"
    second = f'[[sources]]\nname = "oj2"\nkind = "sparql"\nurl = "u"\noptions = {options}\n'
    cfg.write_text('[[sources]]\nname = "oj"\nkind = "sparql"\nurl = "u"\n\n' + second)
    code, output = _veille_config(cfg, monkeypatch)
    assert code == 2
    assert f"erreur : {cfg}:10: {message}" in output


def test_an_unknown_kind_lists_the_known_ones(tmp_path):
    cfg = write_config(tmp_path / "veille.toml", [{"name": "x", "kind": "rsss", "url": "u"}])
    with pytest.raises(ConfigError) as exc:
        load_settings(cfg)
    known = ", ".join(sorted(KINDS))
    assert str(exc.value) == (
        f"{cfg}:{_line_of(cfg, 'kind')}: sources.0.kind: type de source inconnu 'rsss' (connus : {known}) ; "
        "vouliez-vous dire 'rss' ?"
    )


def test_veille_config_and_help_never_import_scrapy(tmp_path):
    cfg = tmp_path / "veille.toml"
    cfg.write_text(default_config_text())
    code = (
        "import sys\nfrom typer.testing import CliRunner\nfrom veille.main import app\n"
        f"r = CliRunner().invoke(app, ['--config', {str(cfg)!r}, 'config'])\nassert r.exit_code == 0, r.output\n"
        "h = CliRunner().invoke(app, ['--help'])\nassert h.exit_code == 0, h.output\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('scrapy', 'twisted')))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# --- a kind added from a test, through the real crawl path ----------------------------------------


def test_toy_kind_options_are_checked_by_veille_config_at_their_line(tmp_path, monkeypatch):
    assert KINDS["toy"] is TOY
    cfg = write_config(
        tmp_path / "veille.toml", [{"name": "toy-register", "kind": "toy", "url": "u", "options": {"sectoin": "x"}}]
    )
    code, output = _veille_config(cfg, monkeypatch)
    assert code == 2
    line = _line_of(cfg, "options")
    problem = "sources.0.options.sectoin: option inconnue (connues : expect, section, max_items)"
    assert f"erreur : {cfg}:{line}: {problem}" in output
    cfg.write_text(cfg.read_text().replace("sectoin", "section"))
    code, output = _veille_config(cfg, monkeypatch)
    assert code == 0 and "sources : 1" in output, output


def test_toy_kind_crawls_in_the_child_and_lands_in_the_archive(tmp_path, sqlite_url):
    from storage.health import source_states
    from veille.pipeline import run_cycle

    with ReplayServer() as server:
        body = fixture(TOY_PAYLOAD)
        server.add(Route(path="/toy/register.json", body=body, headers={"Content-Type": "application/json"}))
        source = {"name": "toy-register", "kind": "toy", "url": server.url("/toy/register.json")}
        cfg = write_config(tmp_path / "veille.toml", [{**source, "options": {"section": "health"}}])
        settings = load_settings(cfg)
        assert settings.sources[0].options == ToyOptions(section="health")
        engine = open_archive(sqlite_url)
        summary = run_cycle(engine, settings, sources=["toy-register"], digests=False)

    [result] = summary.sources
    assert (result.ok, result.error, result.new, result.warnings) == (True, None, 2, [])
    with session_scope(engine) as s:
        rows = s.exec(
            select(Sighting.external_id, Notice.title_en, Notice.url, Notice.published_at, Notice.deadline, Notice.kind)
            .join(Notice, Notice.id == Sighting.notice_id)
            .where(Sighting.source == "toy-register")
            .order_by(Sighting.external_id)
        ).all()
        run = s.exec(select(CrawlRun).where(CrawlRun.source == "toy-register")).one()
        kind = s.exec(select(Source.kind).where(Source.name == "toy-register")).one()
    assert [tuple(r) for r in rows] == [
        (
            "TOY-2026-001",
            "Draft guidance on health technology assessment of medical devices",
            "https://toy.example.eu/notices/TOY-2026-001",
            date(2026, 11, 20),
            date(2026, 12, 18),
            "consultation",
        ),
        (
            "TOY-2026-002",
            "Call for evidence on the European Health Data Space secondary use",
            "https://toy.example.eu/notices/TOY-2026-002",
            date(2026, 11, 23),
            None,
            "news",
        ),
    ]  # TOY-2026-003 is in section "fisheries": left out by the typed option
    assert (run.status, run.n_new, kind) == ("ok", 2, "toy")
    [state] = source_states(engine, settings)
    assert (state.name, state.kind, state.state) == ("toy-register", "toy", "ok")
    assert settings.sources[0].expectation == Expectation(empty_runs=2)  # the toy's declaration


def test_a_typo_in_a_list_of_tables_names_the_keys_of_that_table(tmp_path):
    cfg = tmp_path / "veille.toml"
    cfg.write_text(
        '[[sources]]\nname = "c"\nkind = "comitology"\nurl = "u"\n'
        'options = { committees = [{ matc = "health technology assessment", act = "32021R2282" }] }\n'
    )
    with pytest.raises(ConfigError) as exc:
        load_settings(cfg)
    assert str(exc.value) == f"{cfg}:5: sources.0.options.committees.0.matc: option inconnue (connues : match, act)"
    cfg.write_text(cfg.read_text().replace("[{ matc = ", "{ ").replace(', act = "32021R2282" }]', ' = "32021R2282" }'))
    [source] = load_settings(cfg).sources  # the short form, {"words or code" = "CELEX"}
    assert [(c.match, c.act) for c in source.options.committees] == [("health technology assessment", "32021R2282")]
