"""Every real payload in tests/data/fixtures that a parser of ours reads, through the REAL spider on the
replay server (a Scrapy child process) and the ingest path into a real SQLite archive.

One row of ``CASES`` per source: the payloads it serves, the source config, and for at least three
items per payload the values checked by hand against the payload (id, title, day, URL, CELEX, deadline).
Add a row for a new payload; ``check`` knows the fields. Days are asserted as the Brussels calendar day
(``published_day``) so that a row stays right whatever the storage of the instant.

What is constructed, and said so at its row: the Comitology committee lookup (no capture: built from the
committee codes and titles the real documents carry), the SPARQL answers that lead the Cellar spider to
the real act texts (in the shape of our own queries), and the two bytes put before a real feed's XML
declaration (the Commission Newsroom serves its feeds with a leading newline).

The recorded SPARQL answers themselves (tests/data/fixtures/sparql/) are answers to other queries than
ours; their 2,811 CELEX are read in tests/test_celex.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from core.config import load_settings
from core.records import NoticeRecord, as_utc
from storage.db import open_archive, session_scope
from storage.models import CrawlRun, Notice, Sighting
from tests.replay_server import ReplayServer, Route, fixture, write_config
from veille.crawl import crawl

BRUSSELS = ZoneInfo("Europe/Brussels")
JSON_HEADERS = {"Content-Type": "application/json"}
RSS_HEADERS = {"Content-Type": "application/rss+xml"}
ODP = "https://oeil.secure.europarl.europa.eu/oeil/en/procedure-file?reference="
TOPIC = "https://ec.europa.eu/info/funding-tenders/opportunities/portal/screen/opportunities/topic-details/"
COMITOLOGY = "https://ec.europa.eu/transparency/comitology-register/screen/documents/"
HYS = "https://ec.europa.eu/info/law/better-regulation/have-your-say/initiatives/"
EURLEX = "https://eur-lex.europa.eu/legal-content/EN/TXT/?uri=CELEX:"


@dataclass
class Case:
    """A source kind fed with real payloads, and what must land in the archive."""

    name: str
    kind: str
    path: str  # the source URL's path on the replay server (``{ref}`` for EP procedures)
    routes: Callable[[], list[Route]]
    expected: dict[str, dict]  # external id -> field: value checked by hand in the payload
    count: int  # sightings stored
    options: dict = field(default_factory=dict)
    warnings: tuple[str, ...] = ()  # substrings of the run's warnings
    ok: bool = True


def _feed(rel: str, prefix: bytes = b"") -> Callable[[], list[Route]]:
    return lambda: [Route(path="/feed.xml", body=prefix + fixture(rel), headers=RSS_HEADERS)]


DAE = "commission/commission_newsroom-dae-fullrss-2014-07.xml"
DAE_ITEM = "http://ec.europa.eu/information_society/newsroom/cf/dae/itemdetail.cfm?item_id="
DAE_EXPECTED = {
    f"{DAE_ITEM}17561": {
        "title_en": "Commission announces €100 million Fast Track to Innovation and five innovation prizes",
        "url": "https://ec.europa.eu/digital-agenda/news-redirect/17561",
        "published_day": date(2014, 7, 28),
        "kind": "news",
    },
    f"{DAE_ITEM}17487": {
        "title_en": "Save the date: The Innovation Procurement Conference will be held in Milan in November",
        "url": "https://ec.europa.eu/digital-agenda/news-redirect/17487",
        "published_day": date(2014, 7, 22),
        "body_has": ["bring together procurers and key stakeholders"],
    },
    f"{DAE_ITEM}17447": {
        "title_en": "Call for expression of interest - Business coaches",
        "url": "https://ec.europa.eu/digital-agenda/news-redirect/17447",
        "published_day": date(2014, 7, 17),
    },
}


def _odp_routes() -> list[Route]:
    names = {
        "2018-2070": "odp-procedure_2018-2070.json",
        "2024-2006": "odp-procedure_2024-2006.json",
        "2016-0132": "odp-procedure_2016-0132.json",
        "2025-0581": "odp_procedure_2025-0581.json",
    }
    return [
        Route(path=f"/api/v2/procedures/{ref}", body=fixture(f"ep_odp/{name}"), headers=JSON_HEADERS)
        for ref, name in names.items()
    ]


def _oeil_routes() -> list[Route]:
    pages = {
        "2020/2042(INI)": "oeil-procedure-file_2020-2042-ini.html",
        "2022/2201(INI)": "oeil-procedure-file_2022-2201-ini.html",
        "2023/2019(INI)": "oeil-procedure-file_2023-2019-ini.html",
        "2024/0258(COD)": "oeil_procedure_file_2024-0258-COD.html",
        "2025/0229(NLE)": "oeil_procedure_file_2025-0229-NLE.html",
    }
    return [
        Route(
            path="/oeil/en/procedure-file",
            contains=[f"reference={ref}"],
            body=fixture(f"oeil/{name}"),
            headers={"Content-Type": "text/html"},
        )
        for ref, name in pages.items()
    ]


COMITOLOGY_DOCS = json.loads(fixture("comitology/cordisdata_documents_87890c7.json"))


def _comitology_routes() -> list[Route]:
    # CONSTRUCTED: the committee lookup was not captured; built from the codes and titles of the real documents.
    titles = {d["committeeCode"]: d["committeeTitle"] for d in COMITOLOGY_DOCS}
    committees = [{"code": code, "committeeTitles": [{"title": t}]} for code, t in sorted(titles.items())]
    # The capture kept the content[] items only (PROVENANCE.md): wrapped as one last page.
    page = {"content": COMITOLOGY_DOCS, "last": True}
    return [
        Route(path="/comitology/committees", body=json.dumps(committees).encode(), headers=JSON_HEADERS),
        Route(path="/comitology/documents/search", body=json.dumps(page).encode(), headers=JSON_HEADERS),
    ]


def _hys_routes() -> list[Route]:
    body = fixture("have_your_say/hys_searchInitiatives_nofilter_size3_2026-09-01.json")
    other = fixture("have_your_say/hys_searchInitiatives_text-gender_size2_2026-09-01.json")
    return [
        Route(path="/brpapi/searchInitiatives", contains=["topic=A"], body=body, headers=JSON_HEADERS),
        Route(path="/brpapi/searchInitiatives", contains=["topic=B"], body=other, headers=JSON_HEADERS),
    ]


def _odd_funding_routes() -> list[Route]:
    """The real answers with odd items ADDED (constructed): a bare string among the search results, and a
    result and a bulk record whose cut-off list is a number. Each is skipped and counted, the rest kept."""
    page = json.loads(fixture("funding_tenders_search/aarhusai_portal_search_page_EXCERPT.json"))
    odd = json.loads(json.dumps(page["results"][3]))
    odd["metadata"]["identifier"], odd["metadata"]["deadlineDate"] = ["HORIZON-CL5-2027-03-D5-99"], 5
    page["results"] += ["stray-id-string", odd]
    bulk = json.loads(fixture("funding_tenders/ft_grantsTenders_reference_sample7_2026-09.json"))
    bulk["fundingData"]["GrantTenderObj"].append(
        {"type": 1, "identifier": "HORIZON-HLTH-2026-ODD-01", "title": "odd", "deadlineDatesLong": 5}
    )
    return [
        Route(path="/search", body=json.dumps(page).encode(), headers=JSON_HEADERS),
        Route(path="/grantsTenders.json", body=json.dumps(bulk).encode(), headers=JSON_HEADERS),
    ]


ACTS = {"32024R1689": "ai_act_32024R1689_cellar.xhtml", "32022R1925": "dma_32022R1925_cellar.xhtml"}
ACTS["32023R2854"] = "data_act_32023R2854_en_cellar.xhtml"
# The acts' real OJ publication and adoption days; the constructed corrigendum row has none (counted as drift).
DAYS = {"32024R1689": ("2024-07-12", "2024-06-13"), "32022R1925": ("2022-10-12", "2022-09-14")}
DAYS["32023R2854"] = ("2023-12-22", "2023-12-13")
CELLAR = "http://publications.europa.eu/resource/cellar/"


def _cellar_routes() -> list[Route]:
    """CONSTRUCTED SPARQL answers in the shape of our ``based_on`` and details queries, naming the three
    acts and a corrigendum of the AI Act; the act texts are the real Cellar XHTML files."""
    celexes = [*ACTS, "32024R1689R(01)"]
    rows = [
        {
            "work": {"type": "uri", "value": f"{CELLAR}w{i}"},
            "celex": {"type": "literal", "value": c},
            "based_on": {"type": "literal", "value": "32016R0679"},
            "types": {"type": "literal", "value": "CORRIGENDUM" if "R(" in c else "REG"},
        }
        | ({"ojDate": {"type": "literal", "value": DAYS[c][0]}} if c in DAYS else {})
        for i, c in enumerate(celexes)
    ]
    details = [
        {**r, "title_en": {"type": "literal", "value": f"Act {r['celex']['value']}"}}
        | ({"docDate": {"type": "literal", "value": DAYS[c][1]}} if (c := r["celex"]["value"]) in DAYS else {})
        for r in rows
    ]
    routes = [
        Route(path="/sparql", contains=["owl:sameAs ?basisUri"], body=json.dumps(_bindings(rows)).encode()),
        Route(path="/sparql", contains=["VALUES ?work"], body=json.dumps(_bindings(details)).encode()),
    ]
    headers = {"Content-Type": "application/xhtml+xml"}
    routes += [Route(path=f"/celex/{c}", body=fixture(f"cellar/{f}"), headers=headers) for c, f in ACTS.items()]
    return routes


def _bindings(rows: list[dict]) -> dict:
    return {"head": {"vars": sorted(rows[0])}, "results": {"bindings": rows}}


CASES = [
    Case(
        name="newsroom-dae-fullrss-2014",
        kind="rss",
        path="/feed.xml",
        routes=_feed(DAE),
        count=25,
        expected=DAE_EXPECTED,
    ),
    Case(
        # The Newsroom serves feeds with a newline (or a BOM) before <?xml ?>: not malformed XML.
        name="newsroom-dae-fullrss-2014-leading-newline-and-bom",
        kind="rss",
        path="/feed.xml",
        routes=_feed(DAE, prefix=b"\n\xef\xbb\xbf"),
        count=25,
        expected=DAE_EXPECTED,
    ),
    Case(
        name="newsroom-sandbox-fullrss-2015",
        kind="rss",
        path="/feed.xml",
        routes=_feed("commission/commission_newsroom-sandbox-fullrss-2015-06.xml"),
        count=25,
        expected={
            f"{DAE_ITEM}23580": {
                "title_en": "Results of Tobi project",
                "url": "http://ec.europa.eu/newsroom/sandbox/itemdetail.cfm?item_id=23580",
                "published_day": date(2015, 6, 2),
                "body_has": ["akakkkk"],
            },
            # The feed carries this title twice on 2 June 2015 (items 23583 and 23578): same title, day and
            # publisher is one notice with two sightings; the later item's link is the notice's.
            f"{DAE_ITEM}23583": {
                "title_en": "Concertation meeting with creativity stakeholders",
                "url": "http://ec.europa.eu/newsroom/sandbox/itemdetail.cfm?item_id=23578",
                "published_day": date(2015, 6, 2),
            },
            f"{DAE_ITEM}23579": {
                "title_en": "Making the most of Corporate Newsroom training",
                "url": "http://ec.europa.eu/newsroom/sandbox/itemdetail.cfm?item_id=23579",
                "published_day": date(2015, 6, 2),
            },
        },
    ),
    Case(
        # feed/full: <link lang=..> are empty (the guid is the item's page), the body is per-language
        # <infsonewsroom:FullContent lang=..>. The capture has one item only.
        name="newsroom-cnect-feedfull-2022",
        kind="rss",
        path="/feed.xml",
        routes=_feed("commission/commission_newsroom-cnect-acc-feedfull-2022-01.xml"),
        count=1,
        expected={
            "https://ec.europa.eu/newsroom/cnect_acc/redirection/item/734030": {
                "title_en": "en Test 1",
                "title_fr": "Fr Test 1",
                "url": "https://ec.europa.eu/newsroom/cnect_acc/redirection/item/734030",
                "published_day": date(2022, 1, 26),
                "body": "En test 1 body",
                "summary_en": "en test 1 teaser",
            }
        },
    ),
    Case(
        name="ep-odp-procedures",
        kind="ep_odp",
        path="/api/v2/procedures/{ref}",
        routes=_odp_routes,
        options={"procedures": ["2018-2070", "2024-2006", "2016-0132", "2025-0581"]},
        count=4,
        # 2018-2070 lists a bare id string among its events: skipped, counted, the rest kept.
        warnings=(
            "procédure 2018/2070(ACI) : événements : 1 sur 9 illisible(s), ignoré(s) : 'eli/dl/event/MTG-PL-2020-12-16",
        ),
        expected={
            "procedure:2018/2070(ACI)": {
                "title_en": "Proposal for an Interinstitutional Agreement between the European Parliament, the "
                "Council and the Commission on budgetary discipline, on cooperation in budgetary matters and on "
                "sound financial management",
                "title_fr": "Proposition d'accord interinstitutionnel entre le Parlement européen, le Conseil et la "
                "Commission sur la discipline budgétaire, la coopération en matière budgétaire et la bonne gestion "
                "financière",
                "url": ODP + "2018/2070(ACI)",
                "procedure": "2018/2070(ACI)",
                "doc_type": "ACI",
                "kind": "procedure",
                "published_day": date(2020, 12, 16),
                "body_has": ["2018-05-28: referral", "2020-12-16: plenary vote", "2020-12-16: plenary debate"],
            },
            "procedure:2024/2006(REG)": {
                "title_en": "Amendments to Parliament’s Rules of Procedure concerning the training on preventing "
                "conflict and harassment in the workplace and on good office management",
                "url": ODP + "2024/2006(REG)",
                "published_day": date(2024, 4, 24),
                # A decision event without an activity type is named, never an empty event name.
                "body_has": ["2024-04-24: decision TA-9-2024-0315", "2024-04-03: committee adopting report"],
            },
            "procedure:2016/0132(COD)": {
                "title_en": "Establishment of 'Eurodac' for the comparison of fingerprints for the effective "
                "application of Regulation (EU) No 604/2013, for identifying an illegally staying third-country "
                "national or stateless person and on requests for the comparison with Eurodac data by Member "
                "States' law enforcement authorities and Europol for law enforcement purposes (recast)",
                "doc_type": "COD",
                "published_day": date(2024, 5, 22),
                "body_has": ["2024-05-22: publication official journal", "2016-09-12: referral"],
            },
            "procedure:2025/0581(CNS)": {
                "published_day": date(2026, 6, 17),
                "title_fr": "Modification de la directive (UE) 2020/262 en ce qui concerne le régime général des "
                "droits d’accise applicable aux tabacs et produits connexes",
            },
        },
    ),
    Case(
        name="oeil-procedure-files",
        kind="oeil",
        path="/oeil/en/procedure-file?reference={ref}",
        routes=_oeil_routes,
        options={
            "procedures": ["2020/2042(INI)", "2022/2201(INI)", "2023/2019(INI)", "2024/0258(COD)", "2025/0229(NLE)"]
        },
        count=5,
        expected={
            "procedure:2020/2042(INI)": {
                "title_en": "The impacts of climate change on vulnerable populations in developing countries",
                "url": ODP + "2020/2042(INI)",
                "published_day": date(2021, 5, 19),
                "body_has": ["2021-05-19: Decision by Parliament"],
            },
            "procedure:2022/2201(INI)": {
                "title_en": "2022 Commission Report on Kosovo",
                "published_day": date(2023, 5, 10),
                "body_has": ["2023-05-03: Committee report tabled for plenary A9-0174/2023"],
            },
            "procedure:2023/2019(INI)": {
                "title_en": "Implementation of the 2018 Geoblocking Regulation in the Digital Single Market",
                "published_day": date(2023, 12, 13),
            },
            "procedure:2024/0258(COD)": {
                "title_en": "Establishing the Reform and Growth Facility for Moldova",
                "related_acts": ["32025R0535"],
                "doc_type": "COD",
            },
        },
    ),
    Case(
        name="funding-bulk-grantstenders",
        kind="funding",
        path="/grantsTenders.json",
        routes=lambda: [
            Route(
                path="/grantsTenders.json",
                body=fixture("funding_tenders/ft_grantsTenders_reference_sample7_2026-09.json"),
                headers=JSON_HEADERS,
            )
        ],
        options={"today": "2026-09-10"},
        count=3,
        expected={
            "HORIZON-MISS-2026-02-CANCER-05": {
                "title_en": "Boosting mental health of young cancer survivors through the European Cancer Patient "
                "Digital Centre (ECPDC) [HORIZON-MISS-2026-02-CANCER-05]",
                "url": TOPIC + "HORIZON-MISS-2026-02-CANCER-05",
                "deadline": date(2026, 9, 15),
                "opens": date(2026, 2, 10),
                "kind": "funding_call",
            },
            "HORIZON-MISS-2027-02-CANCER-06": {"deadline": date(2027, 9, 21), "opens": date(2027, 2, 10)},
            "DIGITAL-2026-AI-PILOTING-10-SCREENING": {
                "title_en": "Apply AI: Piloting AI-based image screening in medical centres "
                "[DIGITAL-2026-AI-PILOTING-10-SCREENING]",
                "deadline": date(2026, 10, 1),
                "eurovoc_has": ["GenAI"],
            },
        },
    ),
    Case(
        # An EXCERPT of a real SEDIA search page (PROVENANCE.md): keywords can be a JSON list inside a string.
        name="funding-search-sedia-excerpt",
        kind="funding",
        path="/search-api/prod/rest/search",
        routes=lambda: [
            Route(
                path="/search-api/prod/rest/search",
                body=fixture("funding_tenders_search/aarhusai_portal_search_page_EXCERPT.json"),
                headers=JSON_HEADERS,
            )
        ],
        options={"mode": "search", "today": "2024-01-15", "topics": ["HORIZON-*"], "divisions": []},
        count=4,
        expected={
            "HORIZON-CL2-2024-TRANSFORMATIONS-01-08": {
                "title_en": "Arts and cultural awareness and expression in education and training "
                "[HORIZON-CL2-2024-TRANSFORMATIONS-01-08]",
                "url": TOPIC + "HORIZON-CL2-2024-TRANSFORMATIONS-01-08",
                "deadline": date(2024, 2, 7),
                "opens": date(2023, 10, 4),
                "eurovoc_has": ["Gender research", "Anthropology, ethnology", "Studies on Film, Radio and Television"],
                "eurovoc_lacks_bracket": True,
            },
            "HORIZON-MISS-2027-05-SOIL-01-two-stage": {
                "deadline": date(2027, 4, 8),
                "opens": date(2027, 2, 4),
                "extra": {"cutoffs": ["2027-04-08", "2027-09-14"], "call": "HORIZON-MISS-2027-05-two-stage"},
            },
            "HORIZON-CL4-2027-04-DIGITAL-EMERGING-10": {
                "title_en": "Horizon scanning and foresight in future enabling digital technologies (CSA) "
                "[HORIZON-CL4-2027-04-DIGITAL-EMERGING-10]",
                "deadline": date(2027, 3, 18),
                "eurovoc_has": ["foresight", "Computer sciences, information science and bioinformatics"],
            },
        },
    ),
    Case(
        name="funding-search-odd-results",
        kind="funding",
        path="/search",
        routes=_odd_funding_routes,
        options={"mode": "search", "today": "2024-01-15", "topics": ["HORIZON-*"], "divisions": []},
        count=4,
        warnings=(
            "résultats de recherche : 2 sur 6 illisible(s), ignoré(s) : 'stray-id-string' (AttributeError",
            "recherche SEDIA : 2 sur 6 illisible(s) (results)",  # the declared shape's count of the same items
        ),
        expected={"HORIZON-CL5-2027-03-D5-05": {"deadline": date(2027, 4, 14)}},
    ),
    Case(
        name="funding-bulk-odd-record",
        kind="funding",
        path="/grantsTenders.json",
        routes=_odd_funding_routes,
        options={"today": "2026-09-10"},
        count=3,
        warnings=("fiches de sujet : 1 sur 8 illisible(s), ignoré(s) : 'HORIZON-HLTH-2026-ODD-01' (TypeError",),
        expected={"HORIZON-MISS-2026-02-CANCER-05": {"deadline": date(2026, 9, 15)}},
    ),
    Case(
        name="comitology-cordisdata-documents",
        kind="comitology",
        path="/comitology",
        routes=_comitology_routes,
        options={"today": "2026-08-10", "committees": {"C70407": "32021D0764"}},
        count=43,  # the 43 drafts among 97 documents (agendas, voting sheets... are not drafts)
        expected={
            # deadline: day fixed by the dates work (meetingEndDate 2026-09-03T22:00:00Z = 4 September in Brussels)
            "108662": {
                # The register sends it with a trailing "\n\n": titles are one line.
                "title_en": "Commission Implementing Decision amending Implementing Decision C(2025)8493 on the "
                "adoption of the main work programme 2026–2027 within the framework of the Specific Programme "
                "implementing Horizon Europe – the Framework Programme for Research and Innovation and on its "
                "financing, and amending Implementing Decision C(2025) 2779 on the financing of the Specific "
                "Programme implementing Horizon Europe and the adoption of two parts of the main work programme "
                "2025 (Cluster 5 and Cluster 6) – part 6 Civil Security for Society",
                "url": COMITOLOGY + "108662/6/consult?lang=en",
                "document_date": date(2026, 8, 3),
                "kind": "draft_act",
                "related_acts": ["32021D0764"],
                "extra": {"committee": "C70407", "meeting": "CMTD(2026)1352"},
            },
            "115705": {
                "title_en": "Draft Commission Implementing Decision on the approval of 4 actions following the call "
                "for proposals HORIZON-CL4-2025-04 (HADEA)- BATCH 2 - MAIN LIST",
                "url": COMITOLOGY + "115705/1/consult?lang=en",
                "document_date": date(2026, 5, 18),
                "extra": {"committee": "C70408", "meeting": "CMTD(2026)831"},
            },
            "115733": {
                "url": COMITOLOGY + "115733/1/consult?lang=en",
                "document_date": date(2026, 5, 18),
                "extra": {"committee": "C70411"},
            },
        },
    ),
    Case(
        # The listing only (details = false); the recorded detail of 18805 runs through the spider in
        # tests/test_signals_sources.py (it needs the other initiatives' details, which were not recorded).
        name="have-your-say-search",
        kind="hys",
        path="/brpapi",
        routes=_hys_routes,
        options={"today": "2026-09-10", "details": False, "topics": ["A", "B"], "max_pages": 1},
        count=5,
        expected={
            "18805": {
                "url": HYS + "18805_en",
                "opens": date(2026, 8, 31),
                "deadline": date(2026, 9, 28),
                "kind": "consultation",
                "doc_type": "REG_DEL",
            },
            "14778": {
                "title_en": "Noise at EU airports – evaluation of the Balanced Approach Regulation",
                "url": HYS + "14778_en",
                "opens": date(2026, 8, 27),
                "deadline": date(2026, 11, 19),
            },
            "12472": {
                "title_en": "Violence against women and domestic violence – fitness check of EU legislation",
                "deadline": None,
            },
        },
    ),
    Case(
        name="cellar-act-texts-ai-act-dma-data-act",
        kind="sparql",
        path="/sparql",
        routes=_cellar_routes,
        options={"query": "based_on", "acts": ["32016R0679"], "fetch_text": list(ACTS), "text_url": "CELEX_URL"},
        count=4,
        warnings=(
            "lignes de découverte SPARQL : 1 sur 4 sans ojDate",
            "lignes de détails SPARQL : 1 sur 4 sans docDate",
        ),
        expected={
            "32024R1689": {
                "celex": "32024R1689",
                "url": EURLEX + "32024R1689",
                "kind": "act",
                # The AI Act's Article 1 starts after character 228,000: the operative part is kept.
                "body_has": [
                    "Article 1\n\nSubject matter",
                    "Article 113\n\nEntry into force and application",
                    "It shall apply from 2 August 2026.",
                    "ANNEX III\n\nHigh-risk AI systems referred to in Article 6(2)",
                    "Article 61\n\nInformed consent to participate in testing in real world conditions outside AI "
                    "regulatory sandboxes\n\n[…]",
                    "[Texte abrégé par veille : l'acte compte 537\u202f797 caractères.",
                ],
                "body_max": 200_000,
                "extra": {"corrigenda": ["32024R1689R(01)"]},
                "extra_omitted": {"articles_full": "1-60, 113", "articles_heading_only": "61-112"},
            },
            "32022R1925": {
                "celex": "32022R1925",
                "body_has": ["Article 54\n\nEntry into force and application", "It shall apply from 2 May 2023."],
                "body_max": 200_000,
                "extra_omitted": {"articles_full": "1-54", "articles_heading_only": ""},
            },
            "32023R2854": {
                "celex": "32023R2854",
                "body_has": ["Having regard to the Treaty", "Article 50\n\nEntry into force and application"],
                "body_max": 200_000,
            },
            "32024R1689R(01)": {"celex": "32024R1689"},  # the corrigendum is a sighting of its act
        },
    ),
]


def _run(case: Case, tmp_path) -> tuple:
    with ReplayServer() as server:
        for route in case.routes():
            server.add(route)
        options = {k: (server.url("/celex/{celex}") if v == "CELEX_URL" else v) for k, v in case.options.items()}
        source = {"name": case.name, "kind": case.kind, "url": server.url(case.path)}
        settings = load_settings(write_config(tmp_path / "veille.toml", [{**source, "options": options}]))
        engine = open_archive(f"sqlite:///{tmp_path / 'archive.db'}")
        (result,) = crawl(settings, engine)
    return result, engine


def _notice(engine, source: str, external_id: str) -> Notice:
    with session_scope(engine) as s:
        return s.exec(
            select(Notice)
            .join(Sighting, Sighting.notice_id == Notice.id)
            .where(Sighting.source == source, Sighting.external_id == external_id)
        ).one()


def check(notice: Notice, expected: dict) -> None:
    """Compare one stored notice with the values checked by hand."""
    for key, want in expected.items():
        if key == "published_day":  # an instant's Brussels day, or the stored day itself
            value = notice.published_at
            day = as_utc(value).astimezone(BRUSSELS).date() if isinstance(value, datetime) else value
            assert day == want, (key, value)
        elif key == "body_has":
            missing = [w for w in want if w not in (notice.body or "")]
            assert not missing, (key, missing)
        elif key == "body_max":
            assert notice.body and len(notice.body) <= want, (key, len(notice.body or ""))
        elif key == "eurovoc_has":
            assert set(want) <= set(notice.eurovoc), (key, notice.eurovoc)
        elif key == "eurovoc_lacks_bracket":
            assert not [k for k in notice.eurovoc if k.startswith("[")], (key, notice.eurovoc)
        elif key == "extra":
            assert {k: notice.extra.get(k) for k in want} == want, (key, notice.extra)
        elif key == "extra_omitted":
            omitted = notice.extra.get("text_omitted") or {}
            assert {k: omitted.get(k) for k in want} == want, (key, omitted)
        else:
            assert getattr(notice, key) == want, (key, getattr(notice, key))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_real_payload_through_spider_and_ingest(case: Case, tmp_path):
    result, engine = _run(case, tmp_path)
    assert result.ok == case.ok, result.error
    for text in case.warnings:
        assert any(text in w for w in result.warnings), (text, result.warnings)
    if not case.warnings:
        assert not result.warnings, result.warnings
    with session_scope(engine) as s:
        sightings = s.exec(select(Sighting).where(Sighting.source == case.name)).all()
        run = s.exec(select(CrawlRun).where(CrawlRun.source == case.name)).one()
        titles = s.exec(select(Notice.title_en, Notice.title_fr)).all()
    assert len(sightings) == case.count and run.status == "ok" and run.n_seen == case.count
    assert all("\n" not in (t or "") for pair in titles for t in pair)  # titles are one line
    for external_id, fields in case.expected.items():
        check(_notice(engine, case.name, external_id), fields)


def test_every_procedure_event_has_a_name():
    """No event line of an EP procedure ends without a name (events without an activity type)."""
    from crawlers.parsers.ep import parse_ep_odp

    leads = {}
    for name in ("odp-procedure_2024-2006.json", "odp-procedure_2018-2070.json", "odp-procedure_2016-0132.json"):
        (rec,) = parse_ep_odp(fixture(f"ep_odp/{name}"), source="ep")
        assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}: \S.*", line) for line in rec.body.split("\n")), rec.body
        leads[rec.procedure] = rec.authors  # the lead committee (storage keeps no authors column)
    assert leads == {"2024/2006(REG)": ["AFCO"], "2018/2070(ACI)": [], "2016/0132(COD)": ["LIBE"]}


def test_titles_are_one_line_for_every_source():
    rec = NoticeRecord(
        source="any",
        external_id="x",
        title_fr="Règlement d’exécution (UE) 2022/2259 relatif au classement de certaines\nmarchandises",
        title_en="  Commission Implementing Regulation\r\n (EU) 2022/2259\t ",
    )
    assert rec.title_fr == "Règlement d’exécution (UE) 2022/2259 relatif au classement de certaines marchandises"
    assert rec.title_en == "Commission Implementing Regulation (EU) 2022/2259"
    assert NoticeRecord(source="s", external_id="y", title_en=" \n ").title_en is None
