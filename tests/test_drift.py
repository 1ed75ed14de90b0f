"""Drift must be loud (issue 19): one field renamed per source kind, never a silent zero.

Each test takes a REAL recorded answer from tests/data/fixtures (copies of ../shared/fixtures), renames ONE
field in it (the test says which), serves it from the replay server, runs the real spider in the crawl
child into a real SQLite archive, then reads the run row and what `veille status` prints. A missing required
field fails the source with one line `what : field : problem`; an item missing an expected field (a date,
a title, a deadline) is counted on the run (`crawl_run.warnings`) and the source shows as degraded.

Last, healthy-run expectations (storage/health.py): OJ acts from a SPARQL source that stop for 3 working
days show as quiet in `veille status`, on the dashboard and in the digest footer; a feed that had items
and comes back empty three runs in a row shows as quiet.
"""

from __future__ import annotations

import email
import email.policy
import json
import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from core.config import ConfigError, load_settings
from crawlers.replay.server import load_bundle
from storage.db import open_archive, session_scope
from storage.models import CrawlRun, Notice, Sighting
from tests.replay_server import ReplayServer, Route, fixture, write_config
from tests.web_helpers import PASSWORD, client, login
from veille.commands import base as cli
from veille.crawl import crawl
from veille.main import app
from web.auth import add_user

BUNDLE = Path(__file__).resolve().parent.parent / "crawlers" / "replay" / "bundle"
JSON = {"Content-Type": "application/json"}
SPARQL_JSON = {"Content-Type": "application/sparql-results+json"}
RSS = {"Content-Type": "application/rss+xml"}
NEWSROOM = fixture("commission/commission_newsroom-dae-fullrss-2014-07.xml")  # 25 real items


@pytest.fixture
def status(veille_home, monkeypatch):
    """`veille status` through the CLI, on a console 1,000 columns wide (no wrapping in the table)."""
    monkeypatch.setattr(cli.console, "_width", 1000)

    def run(cfg: Path) -> str:
        cli.state._settings, cli.state.config, cli.state.profile = None, None, None
        result = CliRunner().invoke(app, ["--config", str(cfg), "status"])
        cli.state._settings, cli.state.config, cli.state.profile = None, None, None
        assert result.exit_code == 0, result.output
        return result.output

    return run


def _setup(home: Path, sources: list[dict]):  # config path, settings, engine
    home.mkdir(parents=True, exist_ok=True)
    cfg = write_config(home / "veille.toml", sources)
    settings = load_settings(cfg)
    return cfg, settings, open_archive(settings.database_url)


def _row(engine, source: str) -> CrawlRun:
    with session_scope(engine) as s:
        return s.exec(select(CrawlRun).where(CrawlRun.source == source).order_by(CrawlRun.id.desc())).first()


def _line(output: str, source: str) -> str:
    """The status table's row of one source."""
    return next(line for line in output.splitlines() if re.match(rf"^\W*{re.escape(source)}\s", line))


def test_real_answers_as_recorded_raise_no_drift():
    """No false alarm: every real recorded answer in tests/data/fixtures, unchanged, passes its declared
    shape with no item counted as missing a field (comitology: its drafts all have their meeting date)."""
    from crawlers.parsers import ep, hys, schemas
    from crawlers.parsers import funding as ft
    from crawlers.parsers import registers as reg
    from crawlers.parsers.feed import parse_feed

    schemas.drain()
    hys.parse_search(fixture("have_your_say/hys_searchInitiatives_nofilter_size3_2026-09-01.json"))
    hys.parse_search(fixture("have_your_say/hys_searchInitiatives_text-gender_size2_2026-09-01.json"))
    hys.parse_detail(fixture("have_your_say/hys_groupInitiatives_18805_2026-09-01.json"))
    (proc,) = ep.parse_ep_odp(fixture("ep_odp/odp_procedure_2025-0581.json"), source="ep")
    bulk = ft.parse_bulk(
        [fixture("funding_tenders/ft_grantsTenders_reference_sample7_2026-09.json")],
        "f",
        ft.TopicFilter(),
        date(2026, 9, 10),
    )
    page = ft.parse_search(
        fixture("funding_tenders_search/aarhusai_portal_search_page_EXCERPT.json"),
        "f",
        ft.TopicFilter(),
        date(2026, 3, 1),
    )
    docs = json.loads(fixture("comitology/cordisdata_documents_87890c7.json"))
    drafts, _ = reg.parse_documents(json.dumps({"content": docs, "last": True}).encode(), "c", {})
    news = parse_feed(NEWSROOM, source="dae", options={"lenient_xml": True})
    notes = schemas.drain()
    assert [n for n in notes if n.missing] == []
    totals = {n.what: n.total for n in notes if not n.field}
    assert totals["documents de comitologie"] == 97 and totals["résultats SEDIA"] == 4
    assert totals["éléments du flux"] == 25 and totals["enregistrements grantsTenders"] == 7
    assert totals["publications HYS"] == 4
    assert proc.procedure == "2025/0581(CNS)" and len(drafts) == 43 and len(news) == 25
    assert bulk and page.results == 4


# --- required fields: a loud failure, `what: field: problem` -------------------------------------------


def test_sparql_work_binding_renamed_fails_the_source(veille_home, status):
    # Real Cellar answer (14 works, `?work` only); renamed here: work -> cellarWork in every row.
    answer = json.loads(fixture("sparql/cellar_sparql_in_force_eurovoc3231_20240418-160348.json"))
    for row in answer["results"]["bindings"]:
        row["cellarWork"] = row.pop("work")
    with ReplayServer() as server:
        server.add(
            Route(path="/sparql", contains=["FILTER(?oj >="], body=json.dumps(answer).encode(), headers=SPARQL_JSON)
        )
        src = {"name": "cellar-acts", "kind": "sparql", "url": server.url("/sparql"), "options": {"query": "acts"}}
        cfg, settings, engine = _setup(veille_home, [src])
        (res,) = crawl(settings, engine)
    assert not res.ok and res.new == 0
    run = _row(engine, "cellar-acts")
    assert run.status == "failed"
    assert run.error.endswith("découverte SPARQL : results.bindings[0].work : absent"), run.error
    line = _line(status(cfg), "cellar-acts")
    assert "en échec" in line and "découverte SPARQL : results.bindings[0].work : absent" in line


def test_hys_page_content_renamed_fails_the_source(veille_home, status):
    # Real Have Your Say search page; renamed here: initiativeResultDtoPage.content -> items.
    page = json.loads(fixture("have_your_say/hys_searchInitiatives_nofilter_size3_2026-09-01.json"))
    page["initiativeResultDtoPage"]["items"] = page["initiativeResultDtoPage"].pop("content")
    with ReplayServer() as server:
        server.add(Route(path="/brpapi/searchInitiatives", body=json.dumps(page).encode(), headers=JSON))
        src = {"name": "hys", "kind": "hys", "url": server.url("/brpapi"), "options": {"today": "2026-09-10"}}
        cfg, settings, engine = _setup(veille_home, [src])
        (res,) = crawl(settings, engine)
    assert not res.ok and res.new == 0
    assert _row(engine, "hys").error.endswith("searchInitiatives : initiativeResultDtoPage.content : absent")
    assert "searchInitiatives : initiativeResultDtoPage.content : absent" in _line(status(cfg), "hys")


def test_funding_search_identifier_renamed_fails_the_source(veille_home, status):
    # Real SEDIA search excerpt (4 results); renamed here: metadata.identifier -> metadata.topicId.
    page = json.loads(fixture("funding_tenders_search/aarhusai_portal_search_page_EXCERPT.json"))
    for row in page["results"]:
        row["metadata"]["topicId"] = row["metadata"].pop("identifier")
    with ReplayServer() as server:
        server.add(Route(path="/search-api/prod/rest/search", body=json.dumps(page).encode(), headers=JSON))
        src = {
            "name": "funding-search",
            "kind": "funding",
            "url": server.url("/search-api/prod/rest/search"),
            "options": {"mode": "search", "today": "2026-03-01"},
        }
        cfg, settings, engine = _setup(veille_home, [src])
        (res,) = crawl(settings, engine)
    assert not res.ok and res.new == 0
    expected = "recherche SEDIA : results[].metadata.identifier : absent des 4 résultats"
    assert _row(engine, "funding-search").error.endswith(expected)
    assert expected in _line(status(cfg), "funding-search")


def test_funding_bulk_identifier_renamed_fails_the_source(veille_home, status):
    # Real grantsTenders.json records (7); renamed here: identifier -> topicIdentifier in each record.
    bulk = json.loads(fixture("funding_tenders/ft_grantsTenders_reference_sample7_2026-09.json"))
    records = bulk["fundingData"]["GrantTenderObj"]
    for rec in records:
        rec["topicIdentifier"] = rec.pop("identifier")
    with ReplayServer() as server:
        server.add(Route(path="/grantsTenders.json", body=json.dumps(bulk).encode(), headers=JSON))
        src = {
            "name": "funding",
            "kind": "funding",
            "url": server.url("/grantsTenders.json"),
            "options": {"today": "2026-09-10"},
        }
        cfg, settings, engine = _setup(veille_home, [src])
        (res,) = crawl(settings, engine)
    assert len(records) == 7 and not res.ok and res.new == 0
    expected = "grantsTenders.json : fundingData.GrantTenderObj.item.identifier : absent des 7 enregistrements"
    assert _row(engine, "funding").error.endswith(expected)
    assert expected in _line(status(cfg), "funding")


def test_regdel_id_renamed_fails_the_source(veille_home, status):
    # No capture of the Register of delegated acts exists: the demo bundle's answer, CONSTRUCTED in the
    # documented shape (crawlers/replay/README.md); renamed here: id -> actId in every row.
    routes = {r.path: r for r in load_bundle(BUNDLE) if r.path.startswith("/regdel/")}
    answer = json.loads(routes["/regdel/web/delegatedActs"].body)
    for row in answer["list"]:
        row["actId"] = row.pop("id")
    with ReplayServer() as server:
        server.add(routes["/regdel/"])
        server.add(Route(path="/regdel/web/delegatedActs", body=json.dumps(answer).encode(), headers=JSON))
        src = {"name": "regdel", "kind": "delegated_acts", "url": server.url("/regdel/"), "options": {"acts": []}}
        cfg, settings, engine = _setup(veille_home, [src])
        (res,) = crawl(settings, engine)
    assert not res.ok and res.new == 0
    expected = f"RegDel delegatedActs : list[].id : absent des {len(answer['list'])} lignes"
    assert _row(engine, "regdel").error.endswith(expected)
    assert expected in _line(status(cfg), "regdel")


# --- expected item fields: counted on the run, the source degraded ----------------------------------------


def _comitology(server: ReplayServer, docs: list[dict]) -> dict:
    """The real documents in their page envelope (PROVENANCE: the envelope was not kept), and a committees
    lookup CONSTRUCTED from those documents' own committee codes and titles (no capture of it exists)."""
    committees = {d["committeeCode"]: d["committeeTitle"] for d in docs}
    lookup = [{"code": c, "committeeTitles": [{"title": t}]} for c, t in sorted(committees.items())]
    base = "/comitology/core/api/front"
    server.add(Route(path=f"{base}/committees", body=json.dumps(lookup).encode(), headers=JSON))
    page = json.dumps({"content": docs, "last": True}).encode()
    server.add(Route(path=f"{base}/documents/search", body=page, headers=JSON))
    watch = {c: "32021R2282" for c in sorted(committees)}  # every committee of the capture
    return {
        "name": "comitology",
        "kind": "comitology",
        "url": server.url(base),
        "options": {"today": "2026-08-10", "committees": watch},
    }


def test_comitology_meeting_start_renamed_is_counted_and_degraded(veille_home, status):
    docs = json.loads(fixture("comitology/cordisdata_documents_87890c7.json"))  # 97 real items, 43 drafts
    with ReplayServer() as server:
        cfg, settings, engine = _setup(veille_home, [_comitology(server, docs)])
        (intact,) = crawl(settings, engine)
    assert intact.ok and intact.new == 43, intact.error
    assert not any("meetingStartDate" in w for w in _row(engine, "comitology").warnings or [])

    for doc in docs:  # renamed here: meetingStartDate -> meetingStart in every document
        doc["meetingStart"] = doc.pop("meetingStartDate")
    with ReplayServer() as server:
        cfg, settings, engine = _setup(veille_home / "renamed", [_comitology(server, docs)])
        (res,) = crawl(settings, engine)
    assert res.ok, res.error
    run = _row(engine, "comitology")
    expected = "documents de comitologie : 43 sur 97 sans meetingStartDate (échéance)"
    assert run.status == "ok" and run.n_seen == 43 and expected in run.warnings
    line = _line(status(cfg), "comitology")
    assert "dégradée" in line and expected in line


def test_hys_current_statuses_renamed_is_counted(veille_home, status):
    # Real search page (3 initiatives), listing only (details off); renamed: currentStatuses -> statuses.
    page = json.loads(fixture("have_your_say/hys_searchInitiatives_nofilter_size3_2026-09-01.json"))
    for item in page["initiativeResultDtoPage"]["content"]:
        item["statuses"] = item.pop("currentStatuses")
    with ReplayServer() as server:
        server.add(Route(path="/brpapi/searchInitiatives", body=json.dumps(page).encode(), headers=JSON))
        src = {
            "name": "hys",
            "kind": "hys",
            "url": server.url("/brpapi"),
            "options": {"today": "2026-09-10", "details": False, "max_pages": 1},
        }
        cfg, settings, engine = _setup(veille_home, [src])
        (res,) = crawl(settings, engine)
    assert res.ok and res.new == 3, res.error
    run = _row(engine, "hys")
    assert (
        "pages de recherche HYS : 1 sur 1 sans content[].currentStatuses (dans toutes les initiatives)" in run.warnings
    )
    line = _line(status(cfg), "hys")
    assert "dégradée" in line and "1 sur 1 sans content[].currentStatuses (dans toutes les initiatives)" in line
    assert "aucune échéance sur les 3 éléments du dernier relevé" in line  # and none has a deadline


def test_ep_odp_process_title_renamed_is_counted(veille_home, status):
    # Real EP Open Data procedure 2025/0581; renamed here: process_title -> title.
    doc = json.loads(fixture("ep_odp/odp_procedure_2025-0581.json"))
    doc["data"][0]["title"] = doc["data"][0].pop("process_title")
    with ReplayServer() as server:
        server.add(Route(path="/procedures/2025-0581", body=json.dumps(doc).encode(), headers=JSON))
        src = {
            "name": "ep",
            "kind": "ep_odp",
            "url": server.url("/procedures/{ref}"),
            "options": {"procedures": ["2025-0581"]},
        }
        cfg, settings, engine = _setup(veille_home, [src])
        (res,) = crawl(settings, engine)
    assert res.ok and res.new == 1, res.error
    assert "procédures EP Open Data : 1 sur 1 sans process_title" in _row(engine, "ep").warnings
    with session_scope(engine) as s:
        (notice,) = s.exec(select(Notice)).all()
    assert notice.procedure == "2025/0581(CNS)" and notice.title_en is None  # stored, and said to be without title
    line = _line(status(cfg), "ep")
    assert "dégradée" in line and "1 sur 1 sans process_title" in line


def _rss_source(server: ReplayServer, path: str = "/dae.xml") -> dict:
    return {
        "name": "dae",
        "kind": "rss",
        "url": server.url(path),
        "languages": ["en"],
        "options": {"lenient_xml": True},
    }


def test_rss_pubdate_renamed_is_counted(veille_home, status):
    # Real Commission Newsroom feed (25 items); renamed here: <pubDate> -> <published>.
    body = NEWSROOM.replace(b"<pubDate>", b"<published_on>").replace(b"</pubDate>", b"</published_on>")
    with ReplayServer() as server:
        server.add(Route(path="/dae.xml", body=body, headers=RSS))
        cfg, settings, engine = _setup(veille_home, [_rss_source(server)])
        (res,) = crawl(settings, engine)
    assert res.ok and res.new == 25, res.error
    assert "éléments du flux : 25 sur 25 sans date" in _row(engine, "dae").warnings
    line = _line(status(cfg), "dae")
    assert "dégradée" in line and "éléments du flux : 25 sur 25 sans date" in line


def test_rss_dates_that_no_longer_parse_are_named(veille_home, status):
    # Same real feed; the dates' format changed here to a French text form no reader of ours knows
    # (the Drupal `28/07/2014 - 12:18` form is read: core.dates).
    def french(m: re.Match) -> bytes:
        when = datetime.strptime(m.group(1).decode(), "%a, %d %b %Y %H:%M:%S GMT")
        return f"<pubDate>{when.day} juillet {when.year} à {when:%Hh%M}</pubDate>".encode()

    body = re.sub(rb"<pubDate>([^<]+)</pubDate>", french, NEWSROOM)
    with ReplayServer() as server:
        server.add(Route(path="/dae.xml", body=body, headers=RSS))
        cfg, settings, engine = _setup(veille_home, [_rss_source(server)])
        (res,) = crawl(settings, engine)
    assert res.ok, res.error
    warnings = _row(engine, "dae").warnings
    assert "éléments du flux : 25 sur 25 sans date lisible (p. ex. '28 juillet 2014 à 12h18')" in warnings
    assert "sans date lisible (p. ex. '28 juillet 2014 à 12h18')" in _line(status(cfg), "dae")


# --- healthy-run expectations -------------------------------------------------------------------------------


def test_feed_that_had_items_then_none_three_runs_is_quiet(veille_home, status):
    empty = re.sub(rb"<item>.*</item>", b"", NEWSROOM, flags=re.S)  # the real feed with its items removed
    with ReplayServer() as server:
        server.add(Route(path="/dae.xml", body=NEWSROOM, headers=RSS, etag=False))
        server.add(Route(path="/empty.xml", body=empty, headers=RSS, etag=False))
        cfg, settings, engine = _setup(veille_home, [_rss_source(server)])
        (first,) = crawl(settings, engine)
        assert first.ok and first.new == 25
        cfg, settings, _ = _setup(veille_home, [_rss_source(server, "/empty.xml")])
        for n in range(3):
            (res,) = crawl(settings, engine)
            assert res.ok
            quiet = _line(status(cfg), "dae")
            assert ("silencieuse" in quiet) == (n == 2), quiet  # quiet from the third empty run on
    assert "aucun élément lors des 3 derniers relevés (en avait auparavant)" in quiet


@pytest.fixture(scope="module")
def oj_archive(tmp_path_factory):  # config path, settings, engine, crawl result
    """The bundle's SPARQL answers (constructed in our queries' shape from real acts, newest OJ date
    2025-12-16: crawlers/replay/README.md) through the real spider into a real archive, once for the
    three views below. Today is long after 16 December 2025: no act for 3 working days."""
    home = tmp_path_factory.mktemp("oj")
    with ReplayServer() as server:
        for route in load_bundle(BUNDLE):
            if route.path == "/sparql":
                server.add(route)
        src = {"name": "cellar-acts", "kind": "sparql", "url": server.url("/sparql"), "options": {"initial_days": 3650}}
        cfg = write_config(home / "veille.toml", [src])
        text = cfg.read_text(encoding="utf-8")
        cfg.write_text(
            f'outbox_dir = "{home / "outbox"}"\n{text}\n[storage]\nurl = "sqlite:///{home / "veille.db"}"\n',
            encoding="utf-8",
        )
        settings = load_settings(cfg)
        engine = open_archive(settings.database_url)
        (res,) = crawl(settings, engine)
    assert res.ok and res.new > 0, res.error
    return cfg, settings, engine, res


QUIET = "aucun élément daté des 3 derniers jours ouvrés (dernier : 16 décembre 2025)"  # the CLI's and digests'
QUIET_WEB = "aucun élément daté des 3 derniers jours ouvrés (dernier : 16 déc. 2025)"  # the workbench's days


def test_oj_acts_quiet_for_three_working_days_in_status(oj_archive, status):
    cfg, settings, engine, _ = oj_archive
    with session_scope(engine) as s:
        dated = [n for n in s.exec(select(Notice).join(Sighting)).all() if n.published_at]
    newest = max(dated, key=lambda n: n.published_at)
    day = newest.published_at if type(newest.published_at) is date else newest.published_at.date()
    assert newest.celex == "32025R2537" and day == date(2025, 12, 16)

    line = _line(status(cfg), "cellar-acts")
    assert "silencieuse" in line and QUIET in line

    # From the archive: the 3 working days up to Thu 18/12/2025 include the 16th; up to Fri 19/12 they do not.
    from storage.health import source_states

    by_day = {
        day: {st.name: st for st in source_states(engine, settings, datetime(2025, 12, day, 12, tzinfo=UTC))}
        for day in (18, 19)
    }
    assert by_day[18]["cellar-acts"].state == "ok"
    assert by_day[19]["cellar-acts"].state == "quiet"
    assert by_day[19]["cellar-acts"].reasons == [QUIET]


def test_oj_acts_quiet_on_the_dashboard(oj_archive):
    _, settings, engine, _ = oj_archive
    add_user(engine, "alice", "analyst", PASSWORD)
    page = login(client(engine, settings, lang="fr"), "alice").get("/dashboard")
    assert page.status_code == 200
    row = re.search(r'<tr class="warn" data-health="quiet">.*?</tr>', page.text, re.S)
    assert row and "cellar-acts" in row.group(0) and "silencieuse" in row.group(0) and QUIET_WEB in row.group(0)


def test_oj_acts_quiet_in_the_digest_footer(oj_archive):
    from alerts.jobs import send_digests
    from nlp.classify import classify

    cfg, settings, engine, res = oj_archive
    classify(engine, settings, res.changed_ids)  # as a cycle does, so that the units get a digest
    send_digests(engine, settings, since=date(2025, 12, 1))
    mails = sorted((cfg.parent / "outbox" / "email").glob("*.eml"))
    assert mails, "a digest went to the file outbox"
    mail = email.message_from_bytes(mails[0].read_bytes(), policy=email.policy.default)
    text = mail.get_body(preferencelist=("plain",)).get_content()
    assert "Sources silencieuses ou dégradées" in text
    assert "cellar-acts : silencieuse — " + QUIET in text
    html = mail.get_body(preferencelist=("html",)).get_content()
    assert "Sources silencieuses ou dégradées" in html and "cellar-acts : silencieuse — " + QUIET in html
    posts = [json.loads(p.read_text(encoding="utf-8")) for p in (cfg.parent / "outbox" / "slack").glob("*.json")]
    footers = [b for post in posts for b in json.dumps(post, ensure_ascii=False).split("\\n") if "cellar-acts" in b]
    assert any("silencieuse" in f and QUIET in f for f in footers), "the Slack digest says it too"


def test_bad_expectation_override_is_a_config_error_with_its_line(tmp_path):
    cfg = write_config(
        tmp_path / "veille.toml",
        [{"name": "dae", "kind": "rss", "url": "http://127.0.0.1:9/x.xml", "options": {"expect": {"empty_run": 2}}}],
    )
    line = next(n for n, text in enumerate(cfg.read_text().splitlines(), 1) if text.startswith("options"))
    with pytest.raises(ConfigError) as exc:
        load_settings(cfg)
    known = "per_working_day, working_days, empty_runs, deadlines"
    assert str(exc.value) == f"{cfg}:{line}: sources.0.options.expect.empty_run: option inconnue (connues : {known})"


def test_a_hostile_date_quoted_in_a_warning_is_escaped_on_the_dashboard(veille_home, status):
    # Same real feed; every date replaced here by markup (the warning quotes the first unreadable value).
    body = re.sub(rb"<pubDate>[^<]+</pubDate>", b"<pubDate><![CDATA[<script>alert(1)</script>]]></pubDate>", NEWSROOM)
    with ReplayServer() as server:
        server.add(Route(path="/dae.xml", body=body, headers=RSS))
        cfg, settings, engine = _setup(veille_home, [_rss_source(server)])
        (res,) = crawl(settings, engine)
    assert res.ok, res.error
    assert "éléments du flux : 25 sur 25 sans date lisible (p. ex. '<script>alert(1)</script>')" in res.warnings
    add_user(engine, "alice", "analyst", PASSWORD)
    page = login(client(engine, settings), "alice").get("/dashboard").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert(1)" not in page
    assert "sans date lisible (p. ex. '<script>alert(1)</script>')" in _line(status(cfg), "dae")  # plain text


def test_oeil_key_events_table_renamed_is_counted(veille_home, status):
    # Real OEIL procedure-file page of 2022/2201(INI); renamed here: the key-events section's id.
    page = fixture("oeil/oeil-procedure-file_2022-2201-ini.html").replace(b'id="section3"', b'id="key-events"')
    with ReplayServer() as server:
        server.add(Route(path="/oeil/en/procedure-file", body=page, headers={"Content-Type": "text/html"}))
        src = {
            "name": "oeil",
            "kind": "oeil",
            "url": server.url("/oeil/en/procedure-file?reference={ref}"),
            "options": {"procedures": ["2022/2201(INI)"]},
        }
        cfg, settings, engine = _setup(veille_home, [src])
        (res,) = crawl(settings, engine)
    assert res.ok and res.new == 1, res.error
    assert "pages de procédure OEIL : 1 sur 1 sans événements clés (tableau #section3)" in _row(engine, "oeil").warnings
    with session_scope(engine) as s:
        (notice,) = s.exec(select(Notice)).all()
    assert notice.procedure == "2022/2201(INI)" and notice.published_at is None  # stored, and said to be undated
    line = _line(status(cfg), "oeil")
    assert "dégradée" in line and "1 sur 1 sans événements clés (tableau #section3)" in line
