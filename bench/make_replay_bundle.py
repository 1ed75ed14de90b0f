"""Build ``crawlers/replay/bundle`` from the repo's fixture copies (tests/data/fixtures).

Run from the repo root: ``python bench/make_replay_bundle.py``. Real captures are copied as they are
(Newsroom RSS, EP Open Data JSON, OEIL HTML, Cellar XHTML). Where no capture exists (EUR-Lex RSS,
EMA, Press Corner, DG SANTE feeds, SPARQL answers in our query shape) the builder writes responses
in the documented shape from real values (CELEX, titles, dates, URLs of the development set and the
fixtures); crawlers/replay/README.md says which is which.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from email.utils import format_datetime
from functools import cache
from html import escape
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # before bench/, whose nlp.py would shadow the package

from nlp.dataset import DEV_SET, load_dataset, split  # noqa: E402
from tests.replay_server import IN_BUNDLE, fixture  # noqa: E402

FIX = ROOT / "tests" / "data" / "fixtures"
OUT = ROOT / "crawlers" / "replay" / "bundle"
CELLAR = "http://publications.europa.eu/resource/cellar/"
RT = "http://publications.europa.eu/resource/authority/resource-type/"
WATCHED = {
    "2025/327": "32025R0327",
    "2024/1689": "32024R1689",
    "2021/2282": "32021R2282",
    "2017/745": "32017R0745",
    "2017/746": "32017R0746",
}
# Real Cellar work ids (docs/research/sources.md §8); every other work id in the bundle is constructed.
REAL_WORKS = {
    "32024R1689": "dc8116a1-3fe6-11ef-865a-01aa75ed71a1",
    "32025R0327": "531b8c37-f962-11ef-b7db-01aa75ed71a1",
}
AI_ACT_EUROVOC = [
    "innovation",
    "artificial intelligence",
    "new technology",
    "market supervision",
    "data protection",
    "market approval",
    "personal data",
    "EC conformity marking",
    "digital technology",
    "biometrics",
]
DATA_ACT = (
    "32023R2854",
    "Regulation (EU) 2023/2854 of the European Parliament and of the Council of 13 December 2023 "
    "on harmonised rules on fair access to and use of data and amending Regulation (EU) 2017/2394 and "
    "Directive (EU) 2020/1828 (Data Act)",
    "2023-12-13",
    "2023-12-22",
)


def dev_items() -> list[dict]:
    """The development set's train split only: the demo archive is read while writing rules, and the
    held-out items must never be."""
    path = DEV_SET
    held_out = {it.id for it in split(load_dataset(path))[1]}
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in rows if r["id"] not in held_out]


def rfc822(day: str, hour: int = 0) -> str:
    from datetime import datetime, timedelta, timezone

    when = datetime.fromisoformat(day).replace(hour=hour, tzinfo=timezone(timedelta(hours=2)))
    return format_datetime(when)


def work_uri(celex: str) -> str:
    return CELLAR + REAL_WORKS.get(celex, f"constructed-{celex.lower()}")


@cache
def recorded() -> dict[str, bytes]:
    """The real recordings kept only in the bundle (tests/replay_server.IN_BUNDLE), read before it is rebuilt."""
    return {rel: fixture(rel) for rel in IN_BUNDLE}


class Bundle:
    def __init__(self, out: Path):
        shutil.rmtree(out, ignore_errors=True)
        (out / "bodies").mkdir(parents=True)
        self.out, self.routes = out, []

    def add(self, path: str, body: bytes, name: str, content_type: str, **spec) -> None:
        (self.out / "bodies" / name).write_bytes(body)
        self.routes.append(
            {"path": path, **spec, "status": 200, "headers": {"Content-Type": content_type}, "body": f"bodies/{name}"}
        )

    def write(self) -> None:
        lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in self.routes)
        (self.out / "routes.jsonl").write_text(lines, encoding="utf-8")


def rss(title: str, items: list[str]) -> bytes:
    head = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f"<channel><title>{escape(title)}</title><link>https://example.invalid/</link><description>"
        "constructed in the documented item shape from real values</description>\n"
    )
    return (head + "\n".join(items) + "\n</channel></rss>\n").encode("utf-8")


def eurlex_item(it: dict) -> str:
    celex = it["celex"]
    guid = f"https://eur-lex.europa.eu/./legal-content/AUTO/?uri=CELLAR:{work_uri(celex).rsplit('/', 1)[-1]}"
    return (
        f"<item><title>{escape('CELEX:' + celex + ': ' + it['title'])}</title><description/>"
        f"<link>https://eur-lex.europa.eu/./legal-content/AUTO/?uri=CELEX:{celex}</link><guid>{escape(guid)}</guid>"
        f"<category>Lex Alerts</category><pubDate>{rfc822(it['date'])}</pubDate>"
        "<dc:creator>European Commission,</dc:creator></item>"
    )


def news_item(it: dict, cats: list[str]) -> str:
    desc = escape(f"<p>{escape(it['summary'])}</p>")  # Drupal feeds escape their HTML once more
    cat = "".join(f"<category>{escape(c)}</category>" for c in cats)
    return (
        f"<item><title>{escape(it['title'])}</title><link>{escape(it['url'])}</link>"
        f"<description>{desc}</description><pubDate>{rfc822(it['date'], 10)}</pubDate>"
        f'<guid isPermaLink="false">{escape(it["id"])}</guid>{cat}</item>'
    )


def sparql_json(vars_: list[str], rows: list[dict]) -> bytes:
    bindings = []
    for row in rows:
        b = {}
        for k, v in row.items():
            if v in (None, ""):
                continue
            if k == "work":
                b[k] = {"type": "uri", "value": v}
            elif k in ("ojDate", "docDate"):  # older Virtuoso: typed-literal
                b[k] = {"type": "typed-literal", "datatype": "http://www.w3.org/2001/XMLSchema#date", "value": v}
            elif k in ("title_en", "title_fr"):
                b[k] = {"type": "literal", "xml:lang": k[-2:], "value": v}
            else:
                b[k] = {"type": "literal", "value": v}
        bindings.append(b)
    doc = {"head": {"link": [], "vars": vars_}, "results": {"distinct": False, "ordered": True, "bindings": bindings}}
    return json.dumps(doc, ensure_ascii=False, indent=1).encode("utf-8")


def act_type(title: str) -> str:
    t = title.lower()
    kind = "DIR" if "directive" in t else "DEC" if ("decision" in t or "décision" in t) else "REG"
    if "implementing" in t or "d'exécution" in t or "d’exécution" in t:
        return kind + "_IMPL"
    if "delegated" in t or "délégué" in t:
        return kind + "_DEL"
    return kind


def sparql_routes(b: Bundle, items: list[dict]) -> None:
    acts = [it for it in items if it.get("celex", "") and it["celex"][0] == "3" and it["date"] >= "2024-06-01"]
    acts = sorted({it["celex"]: it for it in acts}.values(), key=lambda it: it["celex"])
    acts.append({"celex": DATA_ACT[0], "title": DATA_ACT[1], "lang": "en", "date": DATA_ACT[2], "oj": DATA_ACT[3]})
    based = []
    for it in (i for i in items if i.get("celex", "").startswith("3")):
        bases = [c for ref, c in WATCHED.items() if ref in it["title"] and c != it["celex"]]
        if bases and it["celex"] not in [a["celex"] for a in based]:
            based.append({**it, "bases": bases})
    for name, found, token in (("acts", acts, "FILTER(?oj >="), ("based_on", based, "owl:sameAs ?basisUri")):
        rows = [
            {
                "work": work_uri(a["celex"]),
                "celex": a["celex"],
                "ojDate": a.get("oj", a["date"]),
                "types": RT + act_type(a["title"]),
                "based_on": "|".join(a.get("bases", [])),
            }
            for a in found
        ]
        vars_ = ["work", "celex", "ojDate", "types"] + (["based_on"] if name == "based_on" else [])
        b.add(
            "/sparql",
            sparql_json(vars_, rows),
            f"sparql-{name}-page0.json",
            "application/sparql-results+json",
            contains=[token, "OFFSET 0"],
        )
        for i in range(0, len(found), 25):  # the spider's default details batch
            batch = found[i : i + 25]
            det = [
                {
                    "work": work_uri(a["celex"]),
                    "celex": a["celex"],
                    "docDate": a["date"],
                    "title_en": a["title"] if a["lang"] == "en" else None,
                    "title_fr": a["title"] if a["lang"] == "fr" else None,
                    "eli": None,
                    "eurovoc_en": "|".join(AI_ACT_EUROVOC) if a["celex"] == "32024R1689" else "",
                    "legal_basis": "|".join(a.get("bases", [])),
                }
                for a in batch
            ]
            b.add(
                "/sparql",
                sparql_json(
                    [
                        "work",
                        "celex",
                        "docDate",
                        "eli",
                        "title_en",
                        "title_fr",
                        "eurovoc_en",
                        "eurovoc_fr",
                        "legal_basis",
                    ],
                    det,
                ),
                f"sparql-{name}-details{i // 25}.json",
                "application/sparql-results+json",
                contains=["VALUES ?work", f"<{work_uri(batch[0]['celex'])}>"],
            )


def hys_detail_from_listing(item: dict) -> dict:
    """A ``groupInitiatives`` detail built from a listing item (no capture of these two exists):
    one publication per ``currentStatuses`` window, the documented detail fields."""
    pubs = [
        {
            "type": "CALL_FOR_EVIDENCE" if st["frontEndStage"] == "PLANNING_WORKFLOW" else "OPC",
            "stage": st["frontEndStage"],
            "frontEndStage": st["frontEndStage"],
            "receivingFeedbackStatus": st["receivingFeedbackStatus"],
            "publishedDate": st["feedbackStartDate"],
            "endDate": st["feedbackEndDate"],
            "isCurrent": st.get("isCurrent", True),
        }
        for st in item.get("currentStatuses") or []
    ]
    keep = ("reference", "shortTitle", "initiativeStatus", "foreseenActType", "topics", "initiativeTranslations")
    return {**{k: item[k] for k in keep if k in item}, "id": int(item["id"]), "dg": None, "publications": pubs}


def signal_routes(b: Bundle) -> None:
    """Have Your Say and Funding & Tenders: real recordings; Comitology and RegDel: documented shapes."""
    listing = recorded()["have_your_say/hys_searchInitiatives_nofilter_size3_2026-09-01.json"]
    b.add(
        "/hys/brpapi/searchInitiatives",
        listing,
        "REAL-hys_searchInitiatives_nofilter_size3.json",
        "application/json",
        contains=["page=0"],
    )
    b.add(
        "/hys/brpapi/groupInitiatives/18805",
        recorded()["have_your_say/hys_groupInitiatives_18805_2026-09-01.json"],
        "REAL-hys_groupInitiatives_18805.json",
        "application/json",
    )
    for item in json.loads(listing)["initiativeResultDtoPage"]["content"][1:]:
        iid = int(item["id"])
        body = json.dumps(hys_detail_from_listing(item), ensure_ascii=False, indent=1).encode("utf-8")
        b.add(f"/hys/brpapi/groupInitiatives/{iid}", body, f"hys-groupInitiatives-{iid}.json", "application/json")
    b.add(
        "/ft/data/referenceData/grantsTenders.json",
        recorded()["funding_tenders/ft_grantsTenders_reference_sample7_2026-09.json"],
        "REAL-ft_grantsTenders_sample7.json",
        "application/json",
    )
    committees = [
        {"code": "C20900", "committeeTitles": [{"title": "Committee on health technology assessment"}]},
        {"code": "C70408", "committeeTitles": [{"title": "Horizon Europe programme committee"}]},
    ]
    b.add(
        "/comitology/core/api/front/committees",
        json.dumps(committees).encode(),
        "comitology-committees.json",
        "application/json",
    )
    doc = {
        "documentReference": "D099999/01",
        "version": 1,
        "title": "Draft Commission Implementing Regulation laying down rules for the application of Regulation "
        "(EU) 2021/2282 as regards joint clinical assessments of medical devices (constructed example)",
        "committeeCode": "C20900",
        "committeeTitle": "Committee on health technology assessment",
        "creationDate": "2026-11-02T10:00:00.000Z",
        "meetingStartDate": "2027-03-10T09:30:00.000Z",
        "meetingCode": "CMTD(2027)0001",
        "documentType": {"id": 1, "label": "label.draft_implementing_act", "letter": "D"},
    }
    page = {"content": [doc], "totalElements": 1, "totalPages": 1, "last": True}
    b.add(
        "/comitology/core/api/front/documents/search",
        json.dumps(page).encode(),
        "comitology-documents-page0.json",
        "application/json",
        contains=["C20900"],
    )
    regdel = {
        "list": [
            {
                "id": 4242,
                "cCode": None,
                "celexNumber": None,
                "delegatedActStatus": "Planned",
                "completeTitle": "Commission Delegated Regulation amending Annex I to Regulation (EU) 2025/327 on "
                "the European Health Data Space as regards priority categories of personal electronic health data "
                "(constructed)",
                "policyArea": "Public health",
                "leadingService": "SANTE",
                "plannedAdoptionDate": "2027-06-30",
                "basicLegislativeAct": "Regulation (EU) 2025/327",
            }
        ]
    }
    b.routes.append(
        {
            "path": "/regdel/",
            "status": 200,
            "headers": {
                "Content-Type": "text/html; charset=utf-8",
                "Set-Cookie": "XSRF-TOKEN=demo-xsrf-token; Path=/regdel",
            },
            "body": "bodies/regdel-home.html",
        }
    )
    (b.out / "bodies" / "regdel-home.html").write_bytes(b"<!DOCTYPE html><html><body>RegDel</body></html>\n")
    b.add("/regdel/web/delegatedActs", json.dumps(regdel).encode(), "regdel-delegatedActs.json", "application/json")


def build() -> None:
    recorded()  # read now: Bundle() empties the folder they live in
    b = Bundle(OUT)
    items = dev_items()
    feeds = (
        ("162", lambda it: it["celex"][0] == "3" and re.search(r"Parliament|Parlement", it["title"])),
        ("161", lambda it: it["celex"].startswith("5") and it["celex"][5:7] == "PC"),
        ("222", lambda it: it["celex"][0] == "3" and "Commission" in it["title"]),
    )
    for rss_id, pick in feeds:
        for lang in ("EN", "FR"):
            sel = [it for it in items if it.get("celex") and pick(it) and it["lang"] == lang.lower()]
            sel = sorted(sel, key=lambda it: it["date"], reverse=True)[:25]
            b.add(
                f"/eur-lex/{lang}/display-feed.rss",
                rss(f"rssId={rss_id}", [eurlex_item(it) for it in sel]),
                f"eurlex-{rss_id}-{lang}.xml",
                "application/rss+xml; charset=UTF-8",
                query=f"rssId={rss_id}",
            )
    health = [it for it in items if it["source"] == "commission" and "health" in it["url"] and it["lang"] == "en"]
    devices = [it for it in health if re.search(r"device|mdcg|ivd", it["title"] + it["summary"], re.I)]
    b.add(
        "/health/node/2/rss_en",
        rss("Public health - latest updates", [news_item(i, ["Public health"]) for i in health]),
        "sante-public-health.xml",
        "application/rss+xml; charset=utf-8",
    )
    b.add(
        "/health/node/12916/rss_en",
        rss("Medical devices - latest updates", [news_item(i, ["Medical devices"]) for i in devices]),
        "sante-medical-devices.xml",
        "application/rss+xml; charset=utf-8",
    )
    ema = [it for it in items if it["source"] == "ema"]
    b.add(
        "/ema/en/news.xml",
        rss("EMA news", [news_item(i, ["News"]) for i in ema]),
        "ema-news.xml",
        "application/rss+xml; charset=utf-8",
    )
    press = [it for it in items if it["source"] == "commission" and "health" not in it["url"]]
    b.add(
        "/presscorner/api/rss",
        rss("Press releases - RSS", [news_item(i, ["POLICY_AREA=HEALTH"]) for i in press]),
        "press-corner.xml",
        "application/rss+xml; charset=utf-8",
        query="language=en",
    )
    b.add(
        "/digital-strategy/en/rss.xml",
        recorded()["commission/commission_newsroom-dae-fullrss-2014-07.xml"],
        "digital-strategy-REAL-newsroom-dae-2014.xml",
        "application/rss+xml",
    )
    b.add(
        "/ep/api/v2/procedures/2025-0581",
        recorded()["ep_odp/odp_procedure_2025-0581.json"],
        "REAL-odp_procedure_2025-0581.json",
        "application/ld+json",
    )
    for ref, name in (
        ("2024/0258(COD)", "oeil_procedure_file_2024-0258-COD.html"),
        ("2025/0229(NLE)", "oeil_procedure_file_2025-0229-NLE.html"),
    ):
        b.add(
            "/oeil/en/procedure-file",
            recorded()[f"oeil/{name}"],
            f"REAL-{name}",
            "text/html; charset=utf-8",
            contains=[f"reference={ref}"],
        )
    b.add(
        "/cellar/resource/celex/32023R2854",
        recorded()["cellar/data_act_32023R2854_en_cellar.xhtml"],
        "REAL-data_act_32023R2854_en_cellar.xhtml",
        "application/xhtml+xml;charset=UTF-8",
        contains=["language=eng"],
    )
    sparql_routes(b, items)
    signal_routes(b)
    b.write()
    print(f"{len(b.routes)} routes written to {OUT}")


if __name__ == "__main__":
    build()
