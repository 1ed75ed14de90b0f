"""Have Your Say, Funding & Tenders, Comitology, RegDel: parsers against the recorded answers and
each documented pitfall (docs/research/signals.md), then real Scrapy crawls against the replay server.

Recorded: tests/data/fixtures/have_your_say/*.json and funding_tenders/*.json (copies of
../shared/fixtures). Comitology and RegDel have no public capture: those tests build answers in the
documented shape (docs/research/signals.md §1, §4) and say so.
"""

from __future__ import annotations

import json
from datetime import date

import pytest
from sqlmodel import select

from core.config import load_settings
from crawlers.parsers import ParseError, hys
from crawlers.parsers import funding as ft
from crawlers.parsers import registers as reg
from storage.db import open_archive, session_scope
from storage.models import CrawlRun, Notice, Sighting
from tests.replay_server import ReplayServer, Route, fixture, write_config
from veille.crawl import crawl

SEARCH = fixture("have_your_say/hys_searchInitiatives_nofilter_size3_2026-09-01.json")
SEARCH_TEXT = fixture("have_your_say/hys_searchInitiatives_text-gender_size2_2026-09-01.json")
DETAIL = fixture("have_your_say/hys_groupInitiatives_18805_2026-09-01.json")
BULK = fixture("funding_tenders/ft_grantsTenders_reference_sample7_2026-09.json")
SEPT = date(2026, 9, 10)  # the day the recordings describe (windows open)
SPA_SHELL = (
    b"<!DOCTYPE html><html><head><base href='/info/law/better-regulation/'></head>"
    b"<body><app-root></app-root></body></html>"
)


# --- Have Your Say: parsers ------------------------------------------------------------------------


def test_hys_search_recorded_page_float_ids():
    page = hys.parse_search(SEARCH)
    assert [hys.hys_id(i["id"]) for i in page.items] == [18805, 18806, 14778]
    assert page.total == 4101 and page.last is False
    assert isinstance(page.items[0]["id"], float)  # pitfall: the list sends 18805.0


def test_hys_old_hal_envelope_is_read():
    items = json.loads(SEARCH)["initiativeResultDtoPage"]["content"]
    old = {"_embedded": {"initiativeResultDtoes": items}, "page": {"number": 0, "totalPages": 1, "totalElements": 3}}
    page = hys.parse_search(json.dumps(old).encode())
    assert [hys.hys_id(i["id"]) for i in page.items] == [18805, 18806, 14778] and page.last


def test_hys_html_with_200_is_a_failure_not_an_empty_page():
    with pytest.raises(ParseError, match=r"^searchInitiatives : pas du JSON \(commence par .<!DOCTYPE html>"):
        hys.parse_search(SPA_SHELL)
    with pytest.raises(ParseError, match=r"^searchInitiatives : réponse sans initiativeResultDtoPage \(clés : "):
        hys.parse_search(b'{"status": "ok"}')


def test_hys_detail_recorded_consultation_and_upcoming_draft_window():
    detail = hys.parse_detail(DETAIL)
    item = hys.parse_search(SEARCH).items[0]
    consult, draft = hys.initiative_records("hys", item, detail, SEPT)
    assert consult.kind == "consultation" and consult.external_id == "18805"
    assert (consult.opens, consult.deadline) == (date(2026, 8, 31), date(2026, 9, 28))
    assert consult.extra["feedback_status"] == "OPEN" and consult.extra["dg"] == "SANTE"
    assert consult.related_acts == ["32026R1388"]  # "supplements Regulation (EU) 2026/1388"
    assert consult.url.endswith("/initiatives/18805_en") and consult.title_fr.startswith("Végétaux")
    # The UPCOMING REG_DEL_DRAFT publication is an early signal of its own, with no dates yet.
    assert draft.kind == "draft_act" and draft.external_id == "18805-draft"
    assert draft.extra["feedback_status"] == "UPCOMING" and draft.deadline is None
    assert draft.doc_type == "REG_DEL_DRAFT"


def test_hys_listing_without_status_keys_is_tolerated():
    items = hys.parse_search(SEARCH_TEXT).items
    no_status, disabled = (hys.initiative_records("hys", i, None, SEPT)[0] for i in items)
    assert no_status.deadline is None and no_status.extra["feedback_status"] is None  # 12472: no keys at all
    assert disabled.deadline is None and disabled.doc_type == "DEC_IMPL"  # 18193: INIT_PLANNED / DISABLED


def _status(stage, status, start, end):
    return {
        "frontEndStage": stage,
        "receivingFeedbackStatus": status,
        "feedbackStartDate": start,
        "feedbackEndDate": end,
    }


def test_hys_several_live_periods_status_and_dates_from_one_period():
    """19293: call for evidence and public consultation both OPEN (constructed in the listing shape)."""
    item = {
        "id": 19293.0,
        "shortTitle": "x",
        "currentStatuses": [
            _status("OPC_LAUNCHED", "OPEN", "2026/09/01 10:00:00", "2026/12/01 23:59:59"),
            _status("PLANNING_WORKFLOW", "OPEN", "2026/08/20 10:00:00", "2026/09/17 23:59:59"),
        ],
    }
    (rec,) = hys.initiative_records("hys", item, None, SEPT)
    assert (rec.opens, rec.deadline, rec.extra["stage"]) == (date(2026, 8, 20), date(2026, 9, 17), "call for evidence")
    (later,) = hys.initiative_records("hys", item, None, date(2026, 9, 20))  # the first one closed meanwhile
    assert (later.opens, later.deadline, later.extra["feedback_status"]) == (
        date(2026, 9, 1),
        date(2026, 12, 1),
        "OPEN",
    )


def test_hys_open_with_passed_end_is_closed_and_inverted_window_has_no_dates():
    item = {
        "id": 1.0,
        "shortTitle": "x",
        "currentStatuses": [_status("OPC_LAUNCHED", "OPEN", "2026/01/01 00:00:00", "2026/02/01 23:59:59")],
    }
    (rec,) = hys.initiative_records("hys", item, None, SEPT)
    assert rec.extra["feedback_status"] == "CLOSED" and rec.deadline == date(2026, 2, 1)
    bad = {
        "id": 14641,
        "shortTitle": "x",
        "currentStatuses": [_status("OPC_LAUNCHED", "OPEN", "2026/10/01 00:00:00", "2026/09/01 23:59:59")],
    }
    (rec,) = hys.initiative_records("hys", bad, None, SEPT)
    assert rec.opens is None and rec.deadline is None


def test_hys_stale_upcoming_window_is_not_an_early_signal():
    """12131: UPCOMING with a 2020 window."""
    periods = [hys.Period("ISC_WORKFLOW", "UPCOMING", date(2020, 3, 1), date(2020, 3, 29))]
    assert hys.effective_status(periods[0], SEPT) == "STALE"
    assert hys.pick_period(periods, SEPT) is periods[0]


# --- Funding & Tenders: parsers --------------------------------------------------------------------


def _bulk(today: date, chunk: int = 997) -> list:
    return ft.parse_bulk((BULK[i : i + chunk] for i in range(0, len(BULK), chunk)), "ft", ft.TopicFilter(), today)


def test_funding_bulk_streamed_keeps_health_topics_with_dates_not_status():
    recs = {r.external_id: r for r in _bulk(date(2026, 9, 10))}
    # Cancer mission (open and forthcoming) and the DIGITAL health AI topic; not AGRIP, EDF, the tender.
    assert set(recs) == {
        "HORIZON-MISS-2026-02-CANCER-05",
        "HORIZON-MISS-2027-02-CANCER-06",
        "DIGITAL-2026-AI-PILOTING-10-SCREENING",
    }
    r = recs["HORIZON-MISS-2026-02-CANCER-05"]
    assert r.kind == "funding_call" and r.deadline == date(2026, 9, 15) and r.opens == date(2026, 2, 10)
    assert r.url.endswith("/topic-details/HORIZON-MISS-2026-02-CANCER-05")
    assert recs["HORIZON-MISS-2027-02-CANCER-06"].extra["portal_status"] == "Forthcoming"


def test_funding_status_says_open_but_the_deadline_passed():
    """Pitfall: CANCER-05 and the DIGITAL topic are still "Open" in the file after their deadlines."""
    recs = {r.external_id for r in _bulk(date(2026, 11, 23))}
    assert recs == {"HORIZON-MISS-2027-02-CANCER-06"}


def test_funding_several_cutoffs_take_the_next_one_ahead():
    wanted = ft.TopicFilter(topics=["EDF-*"], divisions=[])
    edf = [r for r in ft.parse_bulk([BULK], "ft", wanted, date(2026, 11, 23))][0]
    assert edf.deadline == date(2027, 2, 16)
    assert edf.extra["cutoffs"] == ["2026-10-13", "2027-02-16", "2027-09-28"]


def test_funding_bulk_not_the_envelope_is_a_failure():
    with pytest.raises(ParseError):
        ft.parse_bulk([SPA_SHELL], "ft", ft.TopicFilter(), SEPT)
    with pytest.raises(ParseError, match=r"^grantsTenders.json : aucun fundingData.GrantTenderObj dans la réponse$"):
        ft.parse_bulk([b'{"other": []}'], "ft", ft.TopicFilter(), SEPT)
    with pytest.raises(ParseError):
        ft.parse_bulk([BULK[: len(BULK) // 2]], "ft", ft.TopicFilter(), SEPT)  # truncated


def _sedia_row(ident: str, lang: str, title: str, deadlines: list[str], **meta) -> dict:
    md = {
        "identifier": [ident],
        "title": [title],
        "type": ["1"],
        "status": ["31094502"],
        "deadlineDate": deadlines,
        "callIdentifier": ["EU4H-2026-PJ"],
        "callTitle": ["EU4Health call"],
        "frameworkProgramme": ["43332642"],
        **meta,
    }
    return {"reference": f"{ident}{lang}", "language": lang, "metadata": md}


def test_funding_search_one_notice_per_topic_not_per_language():
    """SEDIA search answer built in the documented shape (no capture exists): 3 languages of one topic,
    a duplicated DATASOURCE/datasource key, a stub without identifier, a tender."""
    rows = [
        _sedia_row("EU4H-2026-PJ-01", "de", "Gesundheit", ["2027-04-08T00:00:00.000+0000"]),
        _sedia_row(
            "EU4H-2026-PJ-01", "en", "Health data", ["2026-10-01T00:00:00.000+0000", "2027-04-08T00:00:00.000+0000"]
        ),
        _sedia_row("EU4H-2026-PJ-01", "fr", "Santé", ["2027-04-08T00:00:00.000+0000"]),
        {"language": "en", "metadata": {"type": ["1"]}},
        _sedia_row("TENDER-1", "en", "t", [], type=["0"]),
    ]
    body = json.dumps({"totalResults": 5, "results": rows})[:-1] + ', "DATASOURCE": "a", "datasource": "b"}'
    page = ft.parse_search(body.encode(), "ft", ft.TopicFilter(), date(2026, 11, 23))
    (rec,) = page.records
    assert rec.external_id == "EU4H-2026-PJ-01" and rec.title_en.startswith("Health data")
    assert rec.deadline == date(2027, 4, 8)  # the Oct 2026 cut-off has passed


def test_multipart_parts_are_blob_files():
    body = ft.multipart({"query": {"a": 1}, "languages": ["en"]}, "B")
    assert b'name="query"; filename="blob"\r\nContent-Type: application/json' in body and body.endswith(b"--B--\r\n")


# --- Comitology and RegDel (documented shapes; no capture exists) ----------------------------------

COMMITTEES = [
    {"code": "C20900", "committeeTitles": [{"title": "Committee on health technology assessment"}]},
    {"code": "C70408", "committeeTitles": [{"title": "Horizon Europe programme committee - health"}]},
    {"code": "C11111", "committeeTitles": [{"title": "Committee for medical devices"}]},
]
WATCH = {"health technology assessment": "32021R2282", "medical devices": "32017R0745"}


def _doc(ref: str, code: str, letter: str = "D", **kw) -> dict:
    return {
        "documentReference": ref,
        "version": kw.get("version", 1),
        "title": f"Draft implementing act {ref}",
        "committeeCode": code,
        "committeeTitle": "HTA committee",
        "creationDate": "2026-11-02T10:00:00.000Z",
        "meetingStartDate": "2026-12-10T09:30:00.000Z",
        "meetingCode": "CMTD(2026)1",
        "documentType": {"id": 1, "label": kw.get("label", "label.draft_implementing_act"), "letter": letter},
    }


def test_comitology_committees_resolved_and_draft_acts_linked():
    acts = reg.match_committees(reg.parse_committees(json.dumps(COMMITTEES).encode()), WATCH)
    assert acts == {"C20900": "32021R2282", "C11111": "32017R0745"}
    page = {
        "content": [_doc("D012345/01", "C20900"), _doc("A1", "C20900", letter="A", label="label.agenda")],
        "last": True,
        "totalElements": 2,
    }
    recs, last = reg.parse_documents(json.dumps(page).encode(), "comitology", acts)
    (rec,) = recs
    assert last and rec.kind == "draft_act" and rec.related_acts == ["32021R2282"]
    assert (rec.opens, rec.deadline) == (date(2026, 11, 2), date(2026, 12, 10))
    with pytest.raises(ParseError, match=r"^documents de comitologie : pas du JSON \(commence par .<!DOCTYPE html>"):
        reg.parse_documents(SPA_SHELL, "comitology", acts)  # the register down: 200 text/html


def test_regdel_planned_and_adopted_of_watched_acts():
    rows = {
        "list": [
            {
                "id": 1,
                "cCode": None,
                "celexNumber": None,
                "delegatedActStatus": "Planned",
                "completeTitle": "Delegated regulation on JCA procedures",
                "basicLegislativeAct": "Regulation (EU) 2021/2282",
                "plannedAdoptionDate": "2027-03-01",
            },
            {
                "id": 2,
                "cCode": "C(2026)100",
                "celexNumber": "32026R0100",
                "delegatedActStatus": "Published",
                "basicLegislativeAct": "32021R2282",
            },
            {"id": 3, "delegatedActStatus": "Adopted", "basicLegislativeAct": "Regulation (EU) 2019/6"},
        ]
    }
    (rec,) = reg.parse_regdel(json.dumps(rows).encode(), "regdel", ["32021R2282"])
    assert rec.external_id == "regdel-1" and rec.related_acts == ["32021R2282"] and rec.kind == "draft_act"


# --- real crawls against the replay server ---------------------------------------------------------


def _crawl(tmp_path, server, sources: list[dict], **crawl_kw):
    cfg = write_config(tmp_path / "veille.toml", sources, **crawl_kw)
    settings = load_settings(cfg)
    engine = open_archive(f"sqlite:///{tmp_path / 'a.db'}")
    return settings, engine


def _json_route(path: str, body: bytes, **kw) -> Route:
    return Route(path=path, body=body, headers={"Content-Type": "application/json"}, **kw)


def _hys_source(server, **opts) -> dict:
    return {
        "name": "hys",
        "kind": "hys",
        "url": server.url("/brpapi"),
        "options": {"today": "2026-09-10", "max_pages": 2, **opts},
    }


def _hys_routes(server) -> None:
    server.add(_json_route("/brpapi/searchInitiatives", SEARCH, contains=["page=0"]))
    server.add(
        _json_route(
            "/brpapi/searchInitiatives",
            json.dumps({"initiativeResultDtoPage": {"content": [], "last": True}}).encode(),
            contains=["page=1"],
        )
    )
    server.add(_json_route("/brpapi/groupInitiatives/18805", DETAIL))
    for iid in (18806, 14778):
        detail = json.loads(DETAIL)
        detail["id"], detail["dg"], detail["betterRegulationRequirement"] = iid, "AGRI", []
        detail["publications"] = [p for p in detail["publications"] if p["type"] == "CALL_FOR_EVIDENCE"]
        server.add(_json_route(f"/brpapi/groupInitiatives/{iid}", json.dumps(detail).encode()))


def test_hys_crawl_stores_consultations_and_draft_window(tmp_path):
    with ReplayServer() as server:
        _hys_routes(server)
        settings, engine = _crawl(tmp_path, server, [_hys_source(server, dgs=["SANTE"])])
        (res,) = crawl(settings, engine)
    assert res.ok, res.error
    with session_scope(engine) as s:
        kinds = dict(
            s.exec(select(Sighting.external_id, Notice.kind).join(Notice, Notice.id == Sighting.notice_id)).all()
        )
    assert kinds == {"18805": "consultation", "18805-draft": "draft_act"}  # DG filter: SANTE only


def test_hys_intermittent_500_fails_the_run_never_a_short_sweep(tmp_path):
    with ReplayServer() as server:
        _hys_routes(server)
        server.add(_json_route("/brpapi/groupInitiatives/18806", b'{"error":"x"}', status=500))
        settings, engine = _crawl(tmp_path, server, [_hys_source(server)])
        (res,) = crawl(settings, engine)
        tries = len(server.requests_for("/brpapi/groupInitiatives/18806"))
    assert not res.ok and "18806 : HTTP 500 (erreur interne du serveur)" in res.error
    assert tries == 2  # retried once (retries = 1), then the run failed
    with session_scope(engine) as s:
        run = s.exec(select(CrawlRun)).one()
    assert run.status == "failed"


def test_hys_wrong_path_html_with_200_fails_the_run(tmp_path):
    with ReplayServer() as server:
        server.add(Route(path="/api/searchInitiatives", body=SPA_SHELL, headers={"Content-Type": "text/html"}))
        src = {**_hys_source(server), "url": server.url("/api")}
        settings, engine = _crawl(tmp_path, server, [src])
        (res,) = crawl(settings, engine)
    assert not res.ok and "page HTML au lieu du JSON attendu" in res.error


def test_funding_bulk_crawl_streams_then_conditional_get(tmp_path):
    with ReplayServer() as server:
        server.add(_json_route("/data/referenceData/grantsTenders.json", BULK))
        src = {
            "name": "funding",
            "kind": "funding",
            "url": server.url("/data/referenceData/grantsTenders.json"),
            "options": {"today": "2026-09-10"},
        }
        settings, engine = _crawl(tmp_path, server, [src])
        (first,) = crawl(settings, engine)
        (second,) = crawl(settings, engine)
        inm = [r["headers"].get("If-None-Match") for r in server.requests_for("/data/referenceData/grantsTenders.json")]
    assert first.ok and first.new == 3, first.error
    assert second.ok and second.not_modified == 1 and second.new == 0
    assert inm[0] is None and inm[1] and inm[1].startswith('"')


def test_comitology_and_regdel_crawls(tmp_path):
    """Answers built in the documented shapes (no capture of either register exists)."""
    with ReplayServer() as server:
        server.add(_json_route("/comitology/core/api/front/committees", json.dumps(COMMITTEES).encode()))
        page = {"content": [_doc("D012345/01", "C20900")], "last": True}
        server.add(
            _json_route("/comitology/core/api/front/documents/search", json.dumps(page).encode(), contains=["C20900"])
        )
        server.add(
            Route(
                path="/regdel/",
                body=b"<html></html>",
                headers={"Content-Type": "text/html", "Set-Cookie": "XSRF-TOKEN=tok123; Path=/"},
            )
        )
        rows = {
            "list": [
                {
                    "id": 7,
                    "delegatedActStatus": "Planned",
                    "completeTitle": "JCA rules",
                    "basicLegislativeAct": "32021R2282",
                }
            ]
        }
        server.add(_json_route("/regdel/web/delegatedActs", json.dumps(rows).encode()))
        committees = ", ".join(f'{{ match = "{k}", act = "{v}" }}' for k, v in WATCH.items())
        cfg = write_config(
            tmp_path / "veille.toml",
            [
                {
                    "name": "regdel",
                    "kind": "delegated_acts",
                    "url": server.url("/regdel/"),
                    "options": {"acts": ["32021R2282"]},
                }
            ],
        )
        with cfg.open("a", encoding="utf-8") as fh:
            fh.write(
                f'\n[[sources]]\nname = "comitology"\nkind = "comitology"\n'
                f'url = "{server.url("/comitology/core/api/front")}"\n'
                f'options = {{ today = "2026-11-20", committees = [{committees}] }}\n'
            )
        settings, engine = load_settings(cfg), open_archive(f"sqlite:///{tmp_path / 'a.db'}")
        results = {r.source: r for r in crawl(settings, engine)}
        posted = server.requests_for("/regdel/web/delegatedActs")[0]
    assert results["comitology"].ok and results["comitology"].new == 1, results["comitology"].error
    assert results["regdel"].ok and results["regdel"].new == 1, results["regdel"].error
    assert (
        posted["method"] == "POST"
        and {k.lower(): v for k, v in posted["headers"].items()}.get("x-xsrf-token") == "tok123"
    )
