"""End-to-end crawls: real Scrapy downloads (child process) against the replay server on 127.0.0.1,
stored through storage/ into SQLite and PostgreSQL (the ``engine`` fixture)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import date
from html import escape

import pytest
from sqlmodel import func, select

from core.config import load_settings
from crawlers.replay import BUNDLE, config_text
from crawlers.run import fetch
from storage.db import session_scope
from storage.models import CrawlRun, Notice, Sighting, Source
from storage.runs import watermark
from tests.conftest import ROOT
from tests.replay_server import ReplayServer, Route, fixture, load_bundle, route_from_http_txt, write_config
from veille.crawl import crawl


def make_feed(tag: str, n: int, start: int = 0) -> bytes:
    items = "".join(
        f"<item><title>{tag} item {i}: health technology assessment</title><link>https://example.eu/{tag}/{i}_en</link>"
        f"<description>{escape('<p>Summary ' + str(i) + '</p>')}</description>"
        f"<pubDate>Mon, 0{1 + i % 9} Jun 2026 10:00:00 +0200</pubDate><guid>{tag}-{i}</guid></item>"
        for i in range(start, start + n)
    )
    head = f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>{tag}</title>'
    return (head + items + "</channel></rss>").encode()


def rss_route(path: str, body: bytes, **kw) -> Route:
    return Route(path=path, body=body, headers={"Content-Type": "application/rss+xml"}, **kw)


def notices_of(engine, source: str) -> dict[str, str]:
    with session_scope(engine) as s:
        rows = s.exec(
            select(Sighting.external_id, Notice.title_en)
            .join(Notice, Notice.id == Sighting.notice_id)
            .where(Sighting.source == source)
        )
        return dict(rows.all())


def count(engine, model) -> int:
    with session_scope(engine) as s:
        return s.exec(select(func.count()).select_from(model)).one()


@pytest.fixture
def server():
    with ReplayServer() as srv:
        yield srv


# --- the demo bundle, every kind of source, twice ---------------------------------------------


def test_bundle_all_kinds_land_and_second_run_is_incremental(engine, tmp_path):
    with ReplayServer(load_bundle(BUNDLE)) as srv:
        cfg = tmp_path / "veille.toml"
        cfg.write_text(config_text(srv.base_url))
        settings = load_settings(cfg)
        first = {r.source: r for r in crawl(settings, engine)}
        assert set(first) == {s.name for s in settings.sources}
        for r in first.values():
            assert r.ok, (r.source, r.error)
            assert r.new + r.updated > 0, r.source
            assert r.requests > 0 and r.bytes > 0 and r.not_modified == 0
        stored = count(engine, Notice)
        assert stored > 150
        with session_scope(engine) as s:
            data_act = s.exec(select(Notice).where(Notice.celex == "32023R2854")).one()
            hta = s.exec(select(Notice).where(Notice.celex == "32025R0117")).one()
            proc = s.exec(select(Notice).where(Notice.procedure == "2025/0581(CNS)")).one()
        assert "Having regard to the Treaty" in data_act.body  # Cellar REST text by CELEX
        assert hta.related_acts == ["32021R2282"] and hta.title_fr  # based_on query, tagged
        assert proc.title_fr and proc.kind == "procedure"
        marks = {name: watermark(engine, name) for name in first}
        assert all(marks.values())

        n_before = len(srv.log)
        second = {r.source: r for r in crawl(settings, engine)}
        assert count(engine, Notice) == stored
        for r in second.values():
            assert r.ok and r.new == 0 and r.updated == 0, (r.source, r.error, r.new, r.updated)
            # The SPARQL window and the comitology search's start date move with the watermark: new queries.
            if r.source in ("cellar-acts", "comitology-register"):
                continue
            assert r.not_modified == r.requests > 0 and r.bytes == 0, r  # revalidated, no body
        revalidated = [q for q in srv.log[n_before:] if q["path"] != "/robots.txt"]
        moving = ("/sparql", "/comitology/core/api/front/documents/search")
        assert all("If-None-Match" in q["headers"] for q in revalidated if q["path"] not in moving)
        assert all(watermark(engine, n) > marks[n] for n in first)
        with session_scope(engine) as s:
            runs = s.exec(select(CrawlRun)).all()
        assert len(runs) == 2 * len(first) and {r.status for r in runs} == {"ok"}
        assert sum(r.n_not_modified for r in runs) == sum(r.not_modified for r in second.values())


# --- every failure mode at once: the others still land, nothing stored is lost ------------------

GOOD_FEED = "/good/rss.xml"
FAULTS = {
    # source name: (kind, path, fault route, expected reason)
    "f-timeout": (
        "rss",
        "/f/hang.xml",
        {"fault": "hang", "hang_seconds": 8},
        r"délai dépassé : pas de réponse complète en 1,5 s",
    ),
    "f-reset": ("rss", "/f/reset.xml", {"fault": "reset"}, r"connexion coupée par le serveur"),
    "f-5xx": ("rss", "/f/503.xml", {"status": 503, "body": b"Service Unavailable"}, r"HTTP 503"),
    "f-html": (
        "rss",
        "/f/html.xml",
        {"body": b"<!DOCTYPE html><html><body>Maintenance</body></html>", "headers": {"Content-Type": "text/html"}},
        r"page HTML au lieu du flux attendu",
    ),
    "f-truncated": ("rss", "/f/trunc.xml", {"fault": "truncate"}, r"réponse tronquée : la connexion a été coupée"),
    "f-huge": ("rss", "/f/huge.xml", {"fault": "huge", "size": 3_000_000}, r"téléchargement interrompu : 3000000 o"),
    "f-huge-stream": (
        "rss",
        "/f/stream.xml",
        {"fault": "huge_nolength", "size": 3_000_000},
        r"téléchargement interrompu : (\d+ octets|corps) au-delà de la limite de 1000000 \(crawl",
    ),
    "f-malformed": (
        "rss",
        "/f/bad.xml",
        {"body": b'<?xml version="1.0"?><rss version="2.0"><channel><item><title>R&D rules</title></item>'},
        r"XML mal formé : ",
    ),
    "f-waf-202": (
        "ep_odp",
        "/f/ep/2025-0581",
        "http_edge_cases/eurlex_frontend_202_waf_challenge_empty.http.txt",
        r"défi anti-robot",
    ),
    "f-sparql-html": (
        "sparql",
        "/f/sparql",
        {"body": b"<html><body>Virtuoso 42000 Error</body></html>", "headers": {"Content-Type": "text/html"}},
        r"page HTML au lieu du JSON attendu",
    ),
}


def _healthy_route(name: str, kind: str, path: str) -> Route:
    if kind == "ep_odp":
        return Route(path=path, body=fixture("ep_odp/odp_procedure_2025-0581.json"))
    if kind == "sparql":
        return Route(path=path, body=b'{"head": {"vars": []}, "results": {"bindings": []}}')
    return rss_route(path, make_feed(name, 3))


def _source(name: str, kind: str, path: str, base: str) -> dict:
    if kind == "ep_odp":
        return {
            "name": name,
            "kind": kind,
            "url": base + path.rsplit("/", 1)[0] + "/{ref}",
            "options": {"procedures": ["2025-0581"]},
        }
    if kind == "sparql":
        return {"name": name, "kind": kind, "url": base + path, "options": {"query": "acts"}}
    return {"name": name, "kind": kind, "url": base + path, "languages": ["en"]}


def test_each_failure_is_a_failed_run_and_the_rest_lands(engine, tmp_path, server):
    server.add(rss_route(GOOD_FEED, make_feed("good", 3)))
    sources = [{"name": "good", "kind": "rss", "url": server.url(GOOD_FEED), "languages": ["en"]}]
    for name, (kind, path, _fault, _reason) in FAULTS.items():
        server.add(_healthy_route(name, kind, path))
        sources.append(_source(name, kind, path, server.base_url))
    settings = load_settings(write_config(tmp_path / "veille.toml", sources, timeout=1.5, max_body_bytes=1_000_000))

    first = {r.source: r for r in crawl(settings, engine)}
    assert all(r.ok for r in first.values()), {r.source: r.error for r in first.values() if not r.ok}
    before = {name: notices_of(engine, name) for name in first}
    marks = {name: watermark(engine, name) for name in first}
    total = count(engine, Notice)

    server.add(rss_route(GOOD_FEED, make_feed("good", 5)))  # the healthy source has news
    for name, (_kind, path, fault, _reason) in FAULTS.items():
        if isinstance(fault, str):
            server.add(route_from_http_txt(path, fault))
        else:
            spec = {"body": make_feed(name, 3), **fault}
            server.add(Route(path=path, **spec))

    second = {r.source: r for r in crawl(settings, engine)}
    good = second.pop("good")
    assert good.ok and good.new == 2 and notices_of(engine, "good").keys() > before["good"].keys()
    for name, (_kind, _path, _fault, reason) in FAULTS.items():
        r = second[name]
        assert not r.ok, name
        assert r.error and re.search(reason, r.error), (name, r.error)
        assert watermark(engine, name) == marks[name], name  # did not move
        assert notices_of(engine, name) == before[name], name  # nothing stored is lost or altered
    assert count(engine, Notice) == total + 2
    with session_scope(engine) as s:
        failed = s.exec(select(CrawlRun).where(CrawlRun.status == "failed")).all()
        src = s.get(Source, "f-5xx")
    assert {r.source for r in failed} == set(FAULTS) and all(r.error for r in failed)
    assert src.last_error and "503" in src.last_error
    assert server.requests_for("/f/503.xml")[-1]["headers"]["User-Agent"].startswith("veille/")
    assert len(server.requests_for("/f/503.xml")) == 3  # 1 (first run) + 1 try + 1 retry


def test_robots_txt_is_obeyed(sqlite_url, tmp_path, server):
    from storage.db import open_archive

    server.add(Route(path="/robots.txt", body=b"User-agent: *\nDisallow: /private/\n"))
    server.add(rss_route("/private/rss.xml", make_feed("p", 2)))
    server.add(rss_route("/public/rss.xml", make_feed("q", 2)))
    sources = [{"name": n, "kind": "rss", "url": server.url(f"/{n}/rss.xml")} for n in ("private", "public")]
    settings = load_settings(write_config(tmp_path / "veille.toml", sources))
    res = {r.source: r for r in crawl(settings, open_archive(sqlite_url))}
    assert res["public"].ok and res["public"].new == 2
    reason = f"{server.url('/private/rss.xml')} : refusé par le robots.txt du site (crawl.obey_robots)"
    assert not res["private"].ok and res["private"].error == reason
    assert server.requests_for("/private/rss.xml") == []


# --- Cellar REST text: 400 / 404 / 304 recorded answers -----------------------------------------

BASED_ON = {
    "results": {
        "bindings": [
            {
                "work": {"type": "uri", "value": f"http://publications.europa.eu/resource/cellar/w{i}"},
                "celex": {"type": "literal", "value": celex},
                "based_on": {"type": "literal", "value": "32021R2282"},
            }
            for i, celex in enumerate(["32025R0117", "32023L9999", "32023R2854"])
        ]
    }
}


def test_cellar_text_edge_cases_and_revalidation(engine, tmp_path, server):
    import json

    details = {
        "results": {
            "bindings": [
                {**b, "title_en": {"type": "literal", "value": f"Act {b['celex']['value']}"}}
                for b in BASED_ON["results"]["bindings"]
            ]
        }
    }
    server.add(Route(path="/sparql", contains=["owl:sameAs ?basisUri"], body=json.dumps(BASED_ON).encode()))
    server.add(Route(path="/sparql", contains=["VALUES ?work"], body=json.dumps(details).encode()))
    server.add(route_from_http_txt("/celex/32025R0117", "http_edge_cases/cellar_400_missing_language.http.txt"))
    server.add(route_from_http_txt("/celex/32023L9999", "http_edge_cases/cellar_404_unknown_celex.http.txt"))
    recorded_304 = route_from_http_txt("/celex/32023R2854", "http_edge_cases/cellar_304_not_modified.http.txt")
    server.add(
        Route(
            path="/celex/32023R2854",
            body=fixture("cellar/data_act_32023R2854_en_cellar.xhtml"),
            headers={k: v for k, v in recorded_304.headers.items() if k in ("etag", "last-modified")},
        )
    )
    src = {
        "name": "watched",
        "kind": "sparql",
        "url": server.url("/sparql"),
        "options": {
            "query": "based_on",
            "acts": ["32021R2282"],
            "fetch_text": True,
            "text_url": server.url("/celex/{celex}"),
        },
    }
    settings = load_settings(write_config(tmp_path / "veille.toml", [src]))

    (first,) = crawl(settings, engine)
    assert first.ok and first.new == 3, first
    assert any(
        "texte de 32025R0117 : HTTP 400 (requête invalide)" in w and "without language" in w for w in first.warnings
    )
    assert any("texte de 32023L9999 : HTTP 404 (introuvable) Resource" in w for w in first.warnings)
    (second,) = crawl(settings, engine)
    assert second.ok and second.unchanged == 3
    texts = server.requests_for("/celex/32023R2854")
    assert texts[-1]["headers"]["If-None-Match"] == '"Con-20231213063525000"'
    assert second.not_modified >= 1  # the recorded etag was revalidated: 304, body from the cache
    with session_scope(engine) as s:
        act = s.exec(select(Notice).where(Notice.celex == "32023R2854")).one()
    assert act.related_acts == ["32021R2282"] and "Data Act" in act.body


# --- the command: summary, exit code, --record and replaying the recording -----------------------


def test_cli_record_then_replay_the_recording(tmp_path, server):
    server.add(rss_route("/ok/rss.xml", make_feed("ok", 4)))
    server.add(Route(path="/down/rss.xml", status=503, body=b"down"))
    sources = [{"name": n, "kind": "rss", "url": server.url(f"/{n}/rss.xml")} for n in ("ok", "down")]
    cfg = write_config(tmp_path / "veille.toml", sources, retries=0)
    rec = tmp_path / "rec"
    env = {**os.environ, "VEILLE_HOME": str(tmp_path / "home"), "COLUMNS": "200"}
    run = subprocess.run(
        [sys.executable, "-m", "veille", "-c", str(cfg), "crawl", "--record", str(rec)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1, run.stderr
    assert "échec : " in run.stdout and "HTTP 503" in run.stdout and "ok" in run.stdout

    # A connected user's recording replays offline: the same notices come back.
    with ReplayServer(load_bundle(rec)) as offline:
        host = server.base_url.removeprefix("http://")
        replayed = [{"name": "ok", "kind": "rss", "url": f"{offline.base_url}/{host}/ok/rss.xml"}]
        cfg2 = write_config(tmp_path / "replay.toml", replayed)
        env2 = {**env, "VEILLE_HOME": str(tmp_path / "home2")}
        run2 = subprocess.run(
            [sys.executable, "-m", "veille", "-c", str(cfg2), "crawl", "-s", "ok"],
            cwd=ROOT,
            env=env2,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert run2.returncode == 0, run2.stdout + run2.stderr
    assert "│ ok " in run2.stdout and "│ 4 " in run2.stdout


def test_a_killed_crawl_fails_every_unfinished_source_and_keeps_the_archive(sqlite_url, tmp_path, server):
    from storage.db import open_archive

    engine = open_archive(sqlite_url)
    server.add(rss_route("/slow/rss.xml", make_feed("slow", 2)))
    sources = [{"name": "slow", "kind": "rss", "url": server.url("/slow/rss.xml")}]
    settings = load_settings(write_config(tmp_path / "veille.toml", sources, timeout=60))
    (first,) = crawl(settings, engine)
    assert first.ok and first.new == 2
    mark = watermark(engine, "slow")
    server.add(Route(path="/slow/rss.xml", fault="hang", hang_seconds=30))
    (second,) = crawl(settings, engine, timeout=8)  # the whole child is killed
    assert not second.ok and "processus de collecte arrêté au bout de 8 s" in second.error
    assert watermark(engine, "slow") == mark and len(notices_of(engine, "slow")) == 2
    with session_scope(engine) as s:
        assert [r.status for r in s.exec(select(CrawlRun).order_by(CrawlRun.id))] == ["ok", "failed"]


def test_old_cache_entries_are_pruned(tmp_path):
    from crawlers.run import prune_cache

    old = tmp_path / "src" / "ab" / "abcdef"
    new = tmp_path / "src" / "cd" / "cdef01"
    for d in (old, new):
        d.mkdir(parents=True)
        (d / "pickled_meta").write_bytes(b"x")
    os.utime(old / "pickled_meta", (0, 0))
    assert prune_cache(tmp_path, max_age_days=30) == 1
    assert not old.exists() and new.exists()


# --- crawl and store are two steps: the crawl alone never touches the archive ------------------


def test_fetch_brings_records_back_without_an_archive(veille_home, tmp_path, server):
    """crawlers.run.fetch (the crawl step) returns each source's records; storing them is veille.crawl's job."""
    server.add(rss_route("/dae.xml", fixture("commission/commission_newsroom-dae-fullrss-2014-07.xml")))
    sources = [{"name": "dae", "kind": "rss", "url": server.url("/dae.xml"), "languages": ["en"]}]
    settings = load_settings(write_config(tmp_path / "veille.toml", sources))

    [got] = fetch(settings, settings.sources, {"dae": None})

    assert got.ok and got.error is None and got.source.name == "dae"
    assert len(got.records) == 25 and got.requests == 1
    first = got.records[0]
    assert first.title_en == "Commission announces €100 million Fast Track to Innovation and five innovation prizes"
    assert first.url == "https://ec.europa.eu/digital-agenda/news-redirect/17561"
    assert first.source == "dae" and first.published_at == date(2014, 7, 28)
    assert not list(veille_home.glob("veille.db*"))  # no archive was opened or created
