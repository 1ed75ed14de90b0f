"""Source faults that tests/test_crawl_run.py does not cover, all in one ``veille crawl`` (a real subprocess
whose peak memory is read with ``os.wait4``) against one replay server on 127.0.0.1.

test_crawl_run.py already has, for RSS: timeout, reset, 503, HTML page, truncated body, 3 MB bodies over
a 1 MB cap, malformed XML; the 202 WAF challenge on EP Open Data; an HTML error page from SPARQL. Here:
50 MB bodies (announced and streamed) over the default 20 MB cap; the 202 challenge on RSS and SPARQL; a
hang, reset, 503 and truncation on the other kinds (SPARQL, OEIL, EP Open Data); entity expansion
(billion laughs, an external entity naming /etc/passwd) in a feed and in an OEIL page; and wrong encodings,
which must come out as correct text when they can be decoded (latin-1 or windows-1252 bytes declared UTF-8,
UTF-16 without BOM, a Content-Type charset that lies) or as a failed run saying why when they cannot.
"""

from __future__ import annotations

import json
import re
from html import escape
from pathlib import Path

import pytest
from sqlmodel import select

from crawlers.replay.server import ReplayServer, Route
from storage.db import open_archive, session_scope
from storage.models import CrawlRun, Notice, Sighting
from tests.hardening_support import run_measured, veille_cmd, veille_env
from tests.replay_server import fixture, route_from_http_txt, write_config

TITLE = "Évaluation des technologies de santé – « règlement » sur la cœur de l'œuvre"
LATIN1_TITLE = "Évaluation des technologies de santé « règlement » à l'étude"  # latin-1 can carry it
MB = 1_000_000
WAF_202 = "http_edge_cases/eurlex_frontend_202_waf_challenge_empty.http.txt"
LOL = b'<!ENTITY lol "lol">' + b"".join(
    b'<!ENTITY lol%d "%s">' % (i, (b"&lol%s;" % (b"" if i == 1 else str(i - 1).encode())) * 10) for i in range(1, 10)
)


def feed(title: str, encoding: str | None = "UTF-8", doctype: bytes = b"", tag: str = "x") -> str:
    decl = f'<?xml version="1.0" encoding="{encoding}"?>' if encoding else '<?xml version="1.0"?>'
    return (
        decl
        + doctype.decode()
        + f'<rss version="2.0"><channel><title>{tag}</title>'
        + f"<item><title>{title}</title><link>https://example.eu/{tag}/1_en</link><guid>{tag}-1</guid>"
        + "<pubDate>Mon, 01 Jun 2026 10:00:00 +0200</pubDate></item></channel></rss>"
    )


def sparql_bodies(title: str, tag: str) -> tuple[dict, dict]:
    work = {"type": "uri", "value": f"http://publications.europa.eu/resource/cellar/{tag}"}
    celex = {"type": "literal", "value": "32026R0777"}
    discovery = {"results": {"bindings": [{"work": work, "celex": celex}]}}
    title_fr = {"type": "literal", "value": title}
    details = {"results": {"bindings": [{"work": work, "celex": celex, "title_fr": title_fr}]}}
    return discovery, details


def as_json(encoding: str = "utf-8"):
    return lambda d: json.dumps(d, ensure_ascii=False).encode(encoding)


def sparql_routes(path: str, title: str, encode=as_json()) -> list[Route]:
    discovery, details = sparql_bodies(title, path.strip("/"))
    return [
        Route(path=path, contains=["FILTER(?oj >="], body=encode(discovery)),
        Route(path=path, contains=["VALUES ?work"], body=encode(details)),
    ]


def rss(path: str, body: bytes, charset: str | None = None) -> list[Route]:
    ctype = "application/rss+xml" + (f"; charset={charset}" if charset else "")
    return [Route(path=path, body=body, headers={"Content-Type": ctype})]


def fault(path: str, **kw) -> list[Route]:
    return [Route(path=path, **kw)]


OEIL_PAGE = fixture("oeil/oeil_procedure_file_2024-0258-COD.html")
OEIL_TITLE = "Establishing the Reform and Growth Facility for Moldova"
_AT = OEIL_PAGE.find(b"<html")
OEIL_BOMB = b"<!DOCTYPE html [" + LOL + b"]>" + OEIL_PAGE[_AT:].replace(b'mb-3">', b'mb-3">&lol9; ', 1)
XXE = b'<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
TOO_BIG = r"téléchargement interrompu : (\d+ octets|corps) au-delà de la limite de 20000000 \(crawl"
TRUNCATED = json.dumps(sparql_bodies(TITLE, "t")[0]).encode()
MAINTENANCE = b"<!DOCTYPE html><html><body>Maintenance</body></html>"
WAF_REASON = r"défi anti-robot WAF \(HTTP 202, x-amzn-waf-action\) de 127\.0\.0\.1"
TIMEOUT_2S = r"délai dépassé : pas de réponse complète en 2 s"
HTTP_503 = r"HTTP 503 \(service indisponible\)"

# name: (kind, routes, expected) - expected is a regex for a failed run's reason, or ("text", title) for a
# source that must succeed with that exact title stored.
CASES: dict[str, tuple[str, list[Route], object]] = {
    "good-rss": ("rss", rss("/good-rss", feed(TITLE, tag="good").encode()), ("text", TITLE)),
    "good-sparql": ("sparql", sparql_routes("/good-sparql", TITLE), ("text", TITLE)),
    "good-oeil": ("oeil", fault("/good-oeil", body=OEIL_PAGE), ("text", OEIL_TITLE)),
    # 50 MB over the default 20 MB cap: announced, streamed without a length, on RSS and SPARQL
    "rss-50mb": ("rss", fault("/rss-50mb", fault="huge", size=50 * MB), TOO_BIG),
    "rss-50mb-stream": ("rss", fault("/rss-50mb-stream", fault="huge_nolength", size=50 * MB), TOO_BIG),
    "sparql-50mb": ("sparql", fault("/sparql-50mb", fault="huge_nolength", size=50 * MB), TOO_BIG),
    # the EUR-Lex front end's bot challenge (recorded): 202, empty body
    "rss-202": ("rss", [route_from_http_txt("/rss-202", WAF_202)], WAF_REASON),
    "sparql-202": ("sparql", [route_from_http_txt("/sparql-202", WAF_202)], r"défi anti-robot WAF \(HTTP 202"),
    # the network faults on the kinds test_crawl_run.py covers only for RSS
    "sparql-timeout": ("sparql", fault("/sparql-timeout", fault="hang", hang_seconds=6), TIMEOUT_2S),
    "oeil-reset": ("oeil", fault("/oeil-reset", fault="reset"), r"connexion coupée par le serveur"),
    "oeil-503": ("oeil", fault("/oeil-503", status=503, body=b"Service Unavailable"), HTTP_503),
    "sparql-truncated": ("sparql", fault("/sparql-truncated", fault="truncate", body=TRUNCATED), r"réponse tronquée"),
    "ep-html": ("ep_odp", fault("/ep-html/2025-0581", body=MAINTENANCE), r"page HTML au lieu du JSON attendu"),
    # entity expansion: declarations are stripped, so the references are undefined -> malformed XML
    "rss-laughs": ("rss", rss("/rss-laughs", feed("&lol9;", doctype=b"<!DOCTYPE rss [" + LOL + b"]>").encode()),
                   r"XML mal formé : .*undefined entity"),
    "rss-xxe": ("rss", rss("/rss-xxe", feed("a &xxe; b", doctype=XXE).encode()), r"XML mal formé : .*undefined entity"),
    # lxml's HTML parser never expands (nor keeps) entities declared in the page: it reads normally
    "oeil-laughs": ("oeil", fault("/oeil-laughs", body=OEIL_BOMB), ("text", OEIL_TITLE)),
    # wrong encodings that can be decoded correctly
    "rss-latin1-as-utf8": ("rss", rss("/rss-latin1-as-utf8", feed(LATIN1_TITLE, tag="l1").encode("latin-1")),
                           ("text", LATIN1_TITLE)),
    "rss-cp1252-undeclared": ("rss", rss("/rss-cp1252-undeclared", feed(TITLE, None, tag="cp").encode("cp1252")),
                              ("text", TITLE)),
    "rss-utf16le-nobom": ("rss", rss("/rss-utf16le-nobom", feed(TITLE, "UTF-16", tag="le").encode("utf-16-le")),
                          ("text", TITLE)),
    "rss-utf16be-nobom": ("rss", rss("/rss-utf16be-nobom", feed(TITLE, "UTF-16", tag="be").encode("utf-16-be")),
                          ("text", TITLE)),
    "rss-charset-lies": ("rss", rss("/rss-charset-lies", feed(TITLE, tag="cl").encode(), charset="iso-8859-1"),
                         ("text", TITLE)),
    "sparql-utf16": ("sparql", sparql_routes("/sparql-utf16", TITLE, as_json("utf-16")), ("text", TITLE)),
    # ... and one that cannot: JSON must be UTF-8 (RFC 8259); latin-1 bytes are a broken answer
    "sparql-latin1": ("sparql", sparql_routes("/sparql-latin1", LATIN1_TITLE, as_json("latin-1")),
                      r"pas du JSON SPARQL .*codec can't decode"),
}  # fmt: skip


def source_entry(name: str, kind: str, base: str) -> dict:
    url = f"{base}/{name}"
    if kind == "sparql":
        return {"name": name, "kind": kind, "url": url, "options": {"query": "acts"}}
    if kind in ("oeil", "ep_odp"):
        ref, tail = ("2025-0581", "/{ref}") if kind == "ep_odp" else ("2024/0258(COD)", "?reference={ref}")
        return {"name": name, "kind": kind, "url": url + tail, "options": {"procedures": [ref]}}
    return {"name": name, "kind": kind, "url": url, "languages": ["en"]}


@pytest.fixture(scope="module")
def faulty_crawl(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("faults")
    home = tmp / "home"
    home.mkdir()
    with ReplayServer([r for _kind, routes, _exp in CASES.values() for r in routes]) as srv:
        sources = [source_entry(name, kind, srv.base_url) for name, (kind, _r, _e) in CASES.items()]
        # Default body cap (20 MB) and a crawl deadline well above what the faults need.
        cfg = write_config(tmp / "veille.toml", sources, timeout=2.0, retries=1, max_run_seconds=120)
        run = run_measured(veille_cmd(cfg, "crawl"), veille_env(home), timeout=300)
    return run, open_archive(f"sqlite:///{home / 'veille.db'}"), home


def test_every_fault_is_a_failed_run_with_its_reason_and_the_rest_lands(faulty_crawl):
    run, engine, _home = faulty_crawl
    assert run.returncode == 1, run.stderr[-3000:]  # some sources failed: the command says so
    with session_scope(engine) as s:
        runs = {r.source: r for r in s.exec(select(CrawlRun))}
        stored = {src: title for src, title in s.exec(
            select(Sighting.source, Notice.title_fr).join(Notice, Notice.id == Sighting.notice_id)
        )}  # fmt: skip
        stored_en = {src: title for src, title in s.exec(
            select(Sighting.source, Notice.title_en).join(Notice, Notice.id == Sighting.notice_id)
        )}  # fmt: skip
    assert set(runs) == set(CASES)
    for name, (_kind, _routes, expected) in CASES.items():
        r = runs[name]
        if isinstance(expected, tuple):  # must succeed, with the text decoded correctly
            assert r.status == "ok", (name, r.error)
            assert expected[1] in (stored.get(name), stored_en.get(name)), (name, stored.get(name), stored_en.get(name))
        else:
            assert r.status == "failed" and r.error and re.search(expected, r.error), (name, r.status, r.error)
            assert name not in stored, name  # nothing half-read was stored
        assert name in run.stdout  # the command's table names every source


def test_memory_time_and_disk_stay_bounded(faulty_crawl):
    run, _engine, home = faulty_crawl
    # Three 50 MB answers and a billion-laughs feed: the whole command (parent + crawl child) stays small.
    assert run.max_rss_mb < 500, f"peak RSS {run.max_rss_mb:.0f} MB"
    assert run.seconds < 120, f"crawl took {run.seconds:.0f} s"
    cache = sum(p.stat().st_size for p in (home / "httpcache").rglob("*") if p.is_file())
    assert cache < 5 * MB, f"HTTP cache holds {cache} bytes: a refused body was cached"
    print(f"\nsource faults: {len(CASES)} sources in {run.seconds:.1f} s, peak RSS {run.max_rss_mb:.0f} MB")


def test_no_external_entity_was_read(faulty_crawl):
    _run, engine, home = faulty_crawl
    passwd = Path("/etc/passwd").read_text(errors="replace").splitlines()[0]
    with session_scope(engine) as s:
        texts = [" ".join(filter(None, (n.title_en, n.title_fr, n.summary_en, n.body))) for n in s.exec(select(Notice))]
    assert texts and not any(passwd in t for t in texts)
    assert not any(escape(passwd) in p.read_text(errors="replace") for p in home.rglob("*.json"))
