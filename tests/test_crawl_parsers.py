"""Parsers and normalisation against the recorded fixtures (tests/data/fixtures, see PROVENANCE)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest

from core.records import canonical_url
from crawlers.parsers import ParseError
from crawlers.parsers.cellar import parse_act_xhtml, parse_multiple_choices
from crawlers.parsers.ep import parse_ep_odp, parse_oeil
from crawlers.parsers.feed import parse_feed
from crawlers.parsers.normalise import (
    celex_from_ids,
    celex_from_text,
    html_to_text,
    kind_for_celex,
    strip_celex_prefix,
    to_utc,
)
from crawlers.parsers.sparql import (
    acts_query,
    based_on_query,
    details_query,
    load_results,
    parse_details,
    parse_discovery,
    split_concat,
    value,
)
from crawlers.pipelines import merge_records
from crawlers.spiders.rss import feed_urls
from tests.replay_server import fixture

# --- normalisation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            "https://eur-lex.europa.eu/./legal-content/AUTO/?uri=CELEX:32026L1472",
            "https://eur-lex.europa.eu/legal-content/AUTO/?uri=CELEX:32026L1472",
        ),
        (
            "https://eur-lex.europa.eu/legal-content/FR/TXT/?qid=1627452271113&uri=CELEX%3A32019D1396",
            "https://eur-lex.europa.eu/legal-content/FR/TXT/?uri=CELEX:32019D1396",
        ),
        (
            "https://eur-lex.europa.eu/legal-content/EN/TXT/?uri=CELEX%3A32021R2282&qid=1647850014446",
            "https://eur-lex.europa.eu/legal-content/EN/TXT/?uri=CELEX:32021R2282",
        ),
        ("HTTPS://Health.EC.europa.eu/latest-updates/x_en#top", "https://health.ec.europa.eu/latest-updates/x_en"),
        ("  ", None),
    ],
)
def test_canonical_url(raw, expected):
    assert canonical_url(raw) == expected


def test_celex_from_titles_links_and_ids():
    assert celex_from_text("CELEX:32024R1689R(02): Corrigendum to Regulation (EU) 2024/1689") == "32024R1689R(02)"
    assert celex_from_text(None, "https://eur-lex.europa.eu/legal-content/EN/TXT/?uri=CELEX%3A32021R2282") == (
        "32021R2282"
    )
    assert celex_from_text("https://eur-lex.europa.eu/legal-content/EN/TXT/?uri=OJ:C_202602601") is None
    assert celex_from_ids("celex:32022R2552,eli:reg_impl/2022/2552/oj,oj:JOL_2022_336_R_0001") == "32022R2552"
    assert strip_celex_prefix("CELEX:32026L1472: Directive (EU) 2026/1472 of") == "Directive (EU) 2026/1472 of"
    assert kind_for_celex("32024R1689R(02)") == "corrigendum"
    assert kind_for_celex("52022PC0197") == "proposal"
    assert kind_for_celex("32025R0117") == "act"


def test_dates_are_aware_utc():
    assert to_utc("Tue, 30 Jun 2026 00:00:00 +0200") == datetime(2026, 6, 29, 22, 0, tzinfo=UTC)
    assert to_utc("2026-06-17") == datetime(2026, 6, 17, tzinfo=UTC)
    assert to_utc("2024-12-31T20:10:26.804+01:00").tzinfo == UTC
    assert to_utc("not a date") is None


def test_html_to_text_handles_double_escaping_and_nbsp():
    assert html_to_text("&lt;p&gt;Hello&amp;nbsp;world&lt;/p&gt;&lt;p&gt;Two&lt;/p&gt;") == "Hello world\nTwo"
    assert html_to_text("<p>A <b>bold</b>\r move</p><script>x()</script>") == "A bold\nmove"
    assert html_to_text("R&amp;D rules") == "R&D rules"


def test_feed_urls_expand_lang():
    url = "https://eur-lex.europa.eu/{LANG}/display-feed.rss?rssId=162"
    assert feed_urls(url, ["en", "fr"]) == [
        ("en", "https://eur-lex.europa.eu/EN/display-feed.rss?rssId=162"),
        ("fr", "https://eur-lex.europa.eu/FR/display-feed.rss?rssId=162"),
    ]
    assert feed_urls("https://x/rss.xml", ["en", "fr"]) == [("en", "https://x/rss.xml")]


# --- feeds: real Commission Newsroom captures ---------------------------------------------------


def test_newsroom_dae_2014_bare_cr_double_escaped():
    recs = parse_feed(fixture("commission/commission_newsroom-dae-fullrss-2014-07.xml"), source="digital-strategy")
    assert len(recs) == 25
    first = recs[0]
    assert first.title_en == "Commission announces €100 million Fast Track to Innovation and five innovation prizes"
    assert '"Fast Track to Innovation"' in first.summary_en  # &#38;quot; decoded, not left as &quot;
    assert first.published_at == date(2014, 7, 28)  # 12:18 GMT: a Brussels day
    assert first.kind == "news" and first.lang == "en"
    assert "Health" in first.extra["categories"]
    assert len({r.external_id for r in recs}) == 25


def test_a_french_item_in_an_english_feed_is_filed_as_french():
    """The Press Corner's language=en feed carries French-only statements: search and nlp need them as French."""
    item = "<item><title>{}</title><link>https://ec.europa.eu/{}</link><description>{}</description></item>"
    body = (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Press</title>'
        + item.format(
            "La Commission se félicite de l'adoption de l'espace européen des données de santé",
            "fr-item",
            "Déclaration sur le vote du Parlement européen et sur les nouvelles règles",
        )
        + item.format("Le Monde reports on the EHDS vote", "en-item", "A French name does not make it French.")
        + "</channel></rss>"
    ).encode()
    fr, en = parse_feed(body, source="press-corner", lang="en")
    assert fr.lang == "fr" and fr.title_en is None and fr.summary_en is None
    assert fr.title_fr.startswith("La Commission se félicite") and fr.summary_fr.startswith("Déclaration")
    assert en.lang == "en" and en.title_en == "Le Monde reports on the EHDS vote" and en.title_fr is None


def test_newsroom_sandbox_fullcontent_becomes_body():
    recs = parse_feed(fixture("commission/commission_newsroom-sandbox-fullrss-2015-06.xml"), source="s")
    tobi = next(r for r in recs if r.title_en == "Results of Tobi project")
    assert tobi.body and "<p>" not in tobi.body and "akakkkk" in tobi.body


def test_newsroom_feed_full_multilingual_item_picks_en_and_fr():
    (rec,) = parse_feed(fixture("commission/commission_newsroom-cnect-acc-feedfull-2022-01.xml"), source="s")
    assert (rec.title_en, rec.title_fr) == ("en Test 1", "Fr Test 1")
    assert rec.external_id == "https://ec.europa.eu/newsroom/cnect_acc/redirection/item/734030"
    assert rec.published_at == date(2022, 1, 26)


EURLEX_ITEM = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel xmlns:dc="http://purl.org/dc/elements/1.1/">
 <title>1 - All Parliament and Council legislation</title>
 <item>
  <title>CELEX:32024R1689R(02): Corrigendum to Regulation (EU) 2024/1689 of the European Parliament</title>
  <description/>
  <link>https://eur-lex.europa.eu/./legal-content/AUTO/?uri=CELEX:32024R1689R(02)</link>
  <guid>https://eur-lex.europa.eu/./legal-content/AUTO/?uri=CELLAR:86beade5-741e-11f1-9800-01aa75ed71a1</guid>
  <category>Lex Alerts</category>
  <pubDate>Tue, 30 Jun 2026 00:00:00 +0200</pubDate>
  <dc:creator>European Parliament, Council of the European Union,</dc:creator>
 </item>
</channel></rss>"""


def test_eurlex_item_shape_constructed_from_the_documented_shape():
    (rec,) = parse_feed(EURLEX_ITEM.encode(), source="eurlex-rss-legislation", lang="fr")
    assert rec.celex == "32024R1689R(02)" and rec.kind == "corrigendum"
    # Read from the French feed, but the title is plainly English: it is filed as English.
    assert rec.title_en.startswith("Corrigendum to Regulation") and rec.title_fr is None and rec.lang == "en"
    assert rec.external_id == "cellar:86beade5-741e-11f1-9800-01aa75ed71a1"
    assert rec.url == "https://eur-lex.europa.eu/legal-content/AUTO/?uri=CELEX:32024R1689R(02)"
    assert rec.loaded_at == datetime(2026, 6, 29, 22, 0, tzinfo=UTC)
    assert rec.authors == ["European Parliament", "Council of the European Union"]


def test_en_and_fr_variants_merge_into_one_record():
    en = parse_feed(EURLEX_ITEM.encode(), source="s", lang="en")[0]
    fr = parse_feed(EURLEX_ITEM.replace("Corrigendum to", "Rectificatif au").encode(), source="s", lang="fr")[0]
    merged = merge_records(en, fr)
    assert merged.title_en.startswith("Corrigendum") and merged.title_fr.startswith("Rectificatif")
    assert merged.external_id == en.external_id


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "^réponse vide au lieu du flux attendu$"),
        (b"  \n", "^réponse vide au lieu du flux attendu$"),
        (b"<!DOCTYPE html><html><body><h1>503 Service Unavailable</h1></body></html>", "^page HTML au lieu du flux"),
        (b"<html><script>window.awsWafCookieDomainList = [];</script></html>", "^page de défi anti-robot WAF"),
        (b'<?xml version="1.0"?><rss version="2.0"><channel><item><title>R&D rules</title>', "^XML mal formé : "),
        (b'{"not": "a feed"}', r"^pas un flux RSS/Atom \(aucun élément racine de flux\)$"),
    ],
)
def test_not_a_feed_is_an_error_never_an_empty_feed(body, reason):
    with pytest.raises(ParseError, match=reason):
        parse_feed(body, source="s")


def test_entity_declarations_are_stripped_before_feedparser():
    # The quadratic-blowup shape of docs/research/stack_probe.md §4, scaled down: never expanded.
    entity = "A" * 5000
    body = (
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "{entity}">]><rss version="2.0"><channel>'
        + "<item><title>t</title><link>https://x/1</link><description>"
        + "&a;" * 2000
        + "</description></item></channel></rss>"
    ).encode()
    recs = parse_feed(body, source="s", options={"lenient_xml": True})
    assert len(recs) == 1 and len(recs[0].summary_en or "") < 10_000


def test_size_cap():
    with pytest.raises(ParseError, match=r"^flux de \d+ octets, au-delà de la limite de 10000 octets$"):
        parse_feed(fixture("commission/commission_newsroom-dae-fullrss-2014-07.xml"), source="s", max_bytes=10_000)


# --- SPARQL -----------------------------------------------------------------------------------


def test_real_sparql_fixtures_typed_literal_and_literal_cells():
    rows = load_results(fixture("sparql/cellar_sparql_titles_dates_eurovoc_20230724-045243.json"))
    assert len(rows) == 10
    assert value(rows[-1], "celexIds") == "52020PC0596"
    assert split_concat(value(rows[0], "subjects")) == [
        "financial institution",
        "financial legislation",
        "financial services",
    ]
    assert celex_from_ids(value(rows[0], "workIds")) == "52020SC0204"
    works = load_results(fixture("sparql/cellar_sparql_in_force_eurovoc3231_20240418-160348.json"))
    assert all(value(b, "work").startswith("http://publications.europa.eu/resource/cellar/") for b in works)


def _cell(v: str, typed: bool = False) -> dict:
    if typed:
        return {"type": "typed-literal", "datatype": "http://www.w3.org/2001/XMLSchema#date", "value": v}
    return {"type": "literal", "datatype": "http://www.w3.org/2001/XMLSchema#string", "value": v}


def test_our_query_shape_discovery_and_details():
    work = "http://publications.europa.eu/resource/cellar/dc8116a1-3fe6-11ef-865a-01aa75ed71a1"
    discovery = {
        "results": {
            "bindings": [
                {
                    "work": {"type": "uri", "value": work},
                    "celex": _cell("32025R0117"),
                    "ojDate": _cell("2025-01-27", True),
                    "types": _cell("http://publications.europa.eu/resource/authority/resource-type/REG_IMPL"),
                    "based_on": _cell("32021R2282"),
                }
            ]
        }
    }
    found = {d.work: d for d in parse_discovery(json.dumps(discovery).encode())}
    assert found[work].oj_date == date(2025, 1, 27) and found[work].types == ["REG_IMPL"]
    details = {
        "results": {
            "bindings": [
                {
                    "work": {"type": "uri", "value": work},
                    "celex": _cell("32025R0117"),
                    "docDate": _cell("2025-01-24", True),
                    "title_en": {
                        "type": "literal",
                        "xml:lang": "en",
                        "value": "Commission Implementing Regulation (EU) 2025/117",
                    },
                    "title_fr": {"type": "literal", "xml:lang": "fr", "value": "Règlement d'exécution (UE) 2025/117"},
                    "eurovoc_en": _cell("medical device|health technology"),
                    "eurovoc_fr": _cell("dispositif médical"),
                    "legal_basis": _cell("32021R2282|12016E114"),
                }
            ]
        }
    }
    (rec,) = parse_details(json.dumps(details).encode(), source="w", discovered=found, watched=["32021R2282"])
    assert rec.celex == "32025R0117" and rec.kind == "act" and rec.doc_type == "REG_IMPL"
    assert rec.title_fr.startswith("Règlement") and rec.title_en.startswith("Commission")
    assert rec.published_at == date(2025, 1, 27) and rec.document_date == date(2025, 1, 24)
    assert rec.related_acts == ["32021R2282"] and rec.legal_basis == ["32021R2282", "12016E114"]
    assert rec.eurovoc == ["medical device", "health technology", "dispositif médical"]


def test_queries_use_both_oj_date_properties_and_the_window():
    q = acts_query(date(2025, 1, 1), date(2025, 2, 1), 500, 1000)
    assert "cdm:official-journal-act_date_publication" in q
    assert "cdm:resource_legal_published_in_official-journal/cdm:publication_general_date_publication" in q
    assert '"2025-01-01"^^xsd:date' in q and "LIMIT 500 OFFSET 1000" in q
    assert "<http://publications.europa.eu/resource/celex/32025R0327>" in based_on_query(["32025R0327"], 10, 0)
    assert "lang:FRA" in details_query(["http://x/w"]) and "lang:ENG" in details_query(["http://x/w"])


@pytest.mark.parametrize("body", [b"", b"<html>Virtuoso 42000 Error SR: estimated execution time</html>", b"{}"])
def test_sparql_errors(body):
    with pytest.raises(ParseError):
        parse_discovery(body)


# --- Cellar / EUR-Lex XHTML, EP ---------------------------------------------------------------


def test_cellar_xhtml_data_act():
    act = parse_act_xhtml(fixture("cellar/data_act_32023R2854_en_cellar.xhtml"))
    assert act.title.startswith("REGULATION (EU) 2023/2854 OF THE EUROPEAN PARLIAMENT")
    assert "(Data Act)" in act.title and "ANNEX" not in act.title
    assert act.oj_ref == "2023/2854" and act.oj_date == "22.12.2023"
    assert "Having regard to the Treaty on the Functioning of the European Union" in act.text
    assert "<" not in act.text[:5000]


def test_eurlex_html_ai_act_title_not_the_formex_name():
    act = parse_act_xhtml(fixture("eurlex/ai_act_32024R1689_en_TXT_HTML.html"), max_chars=10**7)
    assert "(Artificial Intelligence Act)" in act.title and "fmx" not in act.title
    assert act.canonical == "https://eur-lex.europa.eu/eli/reg/2024/1689/oj/eng"
    assert act.text.count("\nArticle 113\n") == 1


def test_cellar_300_choices_main_act_first():
    body = b"""<html><body><ul>
      <li title="item"><a href="/resource/cellar/abc.0006.03/DOC_2">Annex</a> stream_order 2</li>
      <li title="item"><a href="/resource/cellar/abc.0006.03/DOC_1">Main act</a> stream_order 1</li>
    </ul></body></html>"""
    assert parse_multiple_choices(body, "http://publications.europa.eu/resource/celex/32024R1689")[0].endswith("DOC_1")


def test_oeil_pages():
    (cod,) = parse_oeil(fixture("oeil/oeil_procedure_file_2024-0258-COD.html"), source="ep")
    assert cod.procedure == "2024/0258(COD)" and cod.kind == "procedure"
    assert cod.title_en == "Establishing the Reform and Growth Facility for Moldova"
    assert cod.related_acts == ["32025R0535"]  # final act link
    assert cod.published_at == date(2025, 3, 21)
    (nle,) = parse_oeil(fixture("oeil/oeil_procedure_file_2025-0229-NLE.html"), source="ep")
    assert nle.title_en == "European High Performance Computing Joint Undertaking (EuroHPC)"  # &nbsp; cleaned
    with pytest.raises(ParseError):
        parse_oeil(b"<html><body><h1>Sorry</h1></body></html>", source="ep")


def test_ep_open_data_procedure():
    (rec,) = parse_ep_odp(fixture("ep_odp/odp_procedure_2025-0581.json"), source="ep")
    assert rec.procedure == "2025/0581(CNS)" and rec.doc_type == "CNS" and rec.authors == ["ECON"]
    assert rec.title_fr.startswith("Modification de la directive (UE) 2020/262")
    assert rec.published_at == date(2026, 6, 17)
    assert rec.body.splitlines()[0] == "2025-12-15: referral"
    with pytest.raises(ParseError):
        parse_ep_odp(b"<html>challenge</html>", source="ep")


def test_cited_acts_from_titles_in_both_languages():
    from crawlers.parsers.normalise import cited_acts

    en = (
        "Commission Implementing Regulation (EU) 2024/1381 laying down rules for the application of "
        "Regulation (EU) 2021/2282 as regards joint clinical assessments"
    )
    fr = "Règlement d'exécution (UE) 2025/117 de la Commission ... du règlement (UE) 2021/2282 ; directive 2011/24/UE"
    assert cited_acts(en) == ["32024R1381", "32021R2282"]
    assert cited_acts(fr) == ["32025R0117", "32021R2282", "32011L0024"]
    assert cited_acts("Regulation (EC) No 726/2004", None, "") == []  # number/year citations are not guessed
