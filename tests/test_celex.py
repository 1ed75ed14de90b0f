"""The CELEX grammar (core/celex.py) on every real identifier of the recorded SPARQL answers and on
every form EUR-Lex writes; then each path that reads a CELEX (feeds, SPARQL, registers, ingest)."""

from __future__ import annotations

import json
import re
from datetime import date

import pytest

from core.celex import Celex, bare_celex_in_text, base_celex, is_corrigendum, normalise_celex, parse_celex
from core.records import NoticeRecord
from crawlers.parsers.normalise import celex_from_ids, celex_from_text, kind_for_celex
from crawlers.parsers.sparql import parse_details, parse_discovery
from tests.replay_server import FIXTURES

ELI_RE = re.compile(r"eli:(reg|dir|dec)(?:_impl|_del)?/(\d{4})/(\d+)/oj$")
ELI_DESCRIPTOR = {"reg": "R", "dir": "L", "dec": "D"}


def _real_celex_ids() -> list[tuple[str, str]]:
    """(CELEX, all ids of the work) from the recorded SPARQL answers: 2,801 + 10 rows."""
    out = []
    actids = json.loads((FIXTURES / "sparql/cellar_sparql_in_force_2022_actids_20230614-195636.json").read_bytes())
    for row in actids["results"]["bindings"]:
        ids = row["actIds"]["value"]
        out += [(p[6:], ids) for p in ids.split(",") if p.startswith("celex:")]
    titles = json.loads((FIXTURES / "sparql/cellar_sparql_titles_dates_eurovoc_20230724-045243.json").read_bytes())
    out += [(row["celexIds"]["value"], row["workIds"]["value"]) for row in titles["results"]["bindings"]]
    return out


REAL = _real_celex_ids()


def test_every_real_sparql_celex_parses_round_trips_and_its_parts_are_right():
    assert len(REAL) == 2811
    checked_by_eli, other_type = 0, []
    for celex, ids in REAL:
        parsed = parse_celex(celex)
        assert parsed is not None, celex
        assert str(parsed) == celex, celex  # round trip, canonical spelling as Cellar sends it
        assert normalise_celex(celex.lower()) == celex  # case-insensitive input
        assert parsed.sector == celex[0] and parsed.year == int(celex[1:5])
        assert parsed.descriptor.isalpha() and parsed.number.isdigit()
        assert celex.startswith(f"{parsed.sector}{parsed.year}{parsed.descriptor}{parsed.number}")
        assert parsed.suffix == (re.search(r"\((\d+)\)$", celex).group(1) if celex.endswith(")") else None)
        assert not parsed.is_corrigendum and parsed.version is None and base_celex(celex) == celex
        assert celex_from_ids(ids) == celex  # the id list a SPARQL row sends, CELEX anywhere in it
        eli = next((ELI_RE.match(p) for p in ids.split(",") if ELI_RE.match(p)), None)
        if eli and parsed.sector == "3" and parsed.suffix is None:  # the ELI says the same year/type/number
            kind, year, number = eli.groups()
            assert (parsed.year, int(parsed.number)) == (int(year), int(number)), celex
            if parsed.descriptor != ELI_DESCRIPTOR[kind]:
                other_type.append(celex)
            checked_by_eli += 1
    assert checked_by_eli > 2000
    assert other_type == ["32019L0884"]  # Directive (EU) 2019/884, which Cellar's own ELI calls "reg/2019/884"
    shapes = {re.sub(r"\d", "9", c) for c, _ in REAL}
    assert {"99999R9999", "99999M99999", "99999D9999(99)", "E9999C9999", "99999SC9999"} <= shapes


@pytest.mark.parametrize(
    ("text", "canonical", "parts"),
    [
        ("32024R1689", "32024R1689", ("3", 2024, "R", "1689", None, None, None)),
        ("32024R1689R(02)", "32024R1689R(02)", ("3", 2024, "R", "1689", None, "02", None)),
        ("32021D1227(01)", "32021D1227(01)", ("3", 2021, "D", "1227", "01", None, None)),
        ("32019D1122(01)R(01)", "32019D1122(01)R(01)", ("3", 2019, "D", "1122", "01", "01", None)),
        ("02016R0679-20160504", "02016R0679-20160504", ("0", 2016, "R", "0679", None, None, date(2016, 5, 4))),
        ("52020SC0204", "52020SC0204", ("5", 2020, "SC", "0204", None, None, None)),
        ("52020DC0591", "52020DC0591", ("5", 2020, "DC", "0591", None, None, None)),
        ("52018PC0340", "52018PC0340", ("5", 2018, "PC", "0340", None, None, None)),
        ("52023XC0110(01)", "52023XC0110(01)", ("5", 2023, "XC", "0110", "01", None, None)),
        ("62019CJ0311", "62019CJ0311", ("6", 2019, "CJ", "0311", None, None, None)),
        ("E2021C0269", "E2021C0269", ("E", 2021, "C", "0269", None, None, None)),
        ("32022M10396", "32022M10396", ("3", 2022, "M", "10396", None, None, None)),
        ("12016E267", "12016E267", ("1", 2016, "E", "267", None, None, None)),  # a treaty article
        ("celex:32024r1689r(02)", "32024R1689R(02)", ("3", 2024, "R", "1689", None, "02", None)),
        (" 32021r2282 ", "32021R2282", ("3", 2021, "R", "2282", None, None, None)),
        ("32024R1689-20241399", None, None),  # no such day: not a consolidated version
        ("2024/1689", None, None),
        ("32024R1689X", None, None),
    ],
)
def test_every_form_of_the_grammar(text, canonical, parts):
    parsed = parse_celex(text)
    assert normalise_celex(text) == canonical
    if parts is None:
        assert parsed is None
        return
    got = (parsed.sector, parsed.year, parsed.descriptor, parsed.number, parsed.suffix, parsed.corrigendum)
    assert got + (parsed.version,) == parts


def test_oj_c_notice_reference():
    parsed = parse_celex("C2022/114A/01")
    assert parsed == Celex("C", 2022, oj_issue="114A", oj_item="01") and str(parsed) == "C2022/114A/01"


def test_corrigendum_belongs_to_its_act_and_a_suffix_names_another_act():
    assert base_celex("32024R1689R(02)") == "32024R1689" and is_corrigendum("32024R1689R(02)")
    assert base_celex("32019D1122(01)R(01)") == "32019D1122(01)"
    assert base_celex("32021D1227(01)") == "32021D1227(01)" and not is_corrigendum("32021D1227(01)")
    assert base_celex("32024r1689r(02)") == "32024R1689"
    rec = NoticeRecord(source="s", external_id="x", title_en="t", celex="32024r1689r(02)")
    assert rec.celex == "32024R1689R(02)" and rec.is_corrigendum


@pytest.mark.parametrize(
    ("text", "celex"),
    [
        ("CELEX:32024R1689R(02): Corrigendum to Regulation (EU) 2024/1689", "32024R1689R(02)"),
        ("https://eur-lex.europa.eu/./legal-content/AUTO/?uri=CELEX:32024R1689R(02)", "32024R1689R(02)"),
        ("https://eur-lex.europa.eu/legal-content/EN/TXT/?uri=CELEX%3A32024R1689R%2802%29&qid=1", "32024R1689R(02)"),
        ("CELEX:32021D1227(01): Decision ...", "32021D1227(01)"),  # the suffix is kept, not cut
        ("?uri=CELEX%3A32021D1227%2801%29", "32021D1227(01)"),
        ("uri=celex:32021r2282&from=EN", "32021R2282"),
        ("CELEX:02016R0679-20160504", "02016R0679-20160504"),
        ("CELEX:52020SC0204", "52020SC0204"),
        ("CELEX:320241689", None),
    ],
)
def test_celex_in_titles_and_links(text, celex):
    assert celex_from_text(text) == celex


def test_bare_celex_in_a_free_text_field():
    assert bare_celex_in_text("based on 32021R2282 and 32021D1227(01); see 32024R1689R(02)") == [
        "32021R2282",
        "32021D1227(01)",
        "32024R1689R(02)",
    ]


@pytest.mark.parametrize(
    ("celex", "default", "kind"),
    [
        ("32024R1689", "other", "act"),
        ("32024R1689R(02)", "act", "corrigendum"),
        ("32021D1227(01)", "act", "act"),
        ("52018PC0340", "other", "proposal"),
        ("52020SC0204", "act", "other"),  # staff working document: never an act
        ("52020DC0591", "act", "other"),  # communication: never an act
        ("52023XC0110(01)", "guidance", "guidance"),
        ("02016R0679-20160504", "other", "act"),
        (None, "news", "news"),
    ],
)
def test_kind_from_the_celex(celex, default, kind):
    assert kind_for_celex(celex, default) == kind


def _binding(**cells: str) -> dict:
    return {k: {"type": "literal", "value": v} for k, v in cells.items()}


def test_sparql_corrigendum_and_numbered_act_keep_their_celex_and_kind():
    """The rows as the demo bundle's (recorded-shape) SPARQL answer sends them for 32024R1252R(01)."""
    work = "http://publications.europa.eu/resource/cellar/0b8a0cfa-0000-0000-0000-000000000001"
    work2 = "http://publications.europa.eu/resource/cellar/0b8a0cfa-0000-0000-0000-000000000002"
    work3 = "http://publications.europa.eu/resource/cellar/0b8a0cfa-0000-0000-0000-000000000003"
    page = {
        "results": {
            "bindings": [
                _binding(work=work, celex="32024R1252R(01)", ojDate="2026-06-30", types=f"{RT}CORRIGENDUM"),
                _binding(work=work2, celex="32021D1227(01)", ojDate="2021-07-30", types=f"{RT}DEC"),
                _binding(work=work3, celex="52020SC0204", ojDate="2020-09-24", types=f"{RT}SWD"),
            ]
        }
    }
    found = {d.work: d for d in parse_discovery(json.dumps(page).encode())}
    assert [found[w].celex for w in (work, work2, work3)] == ["32024R1252R(01)", "32021D1227(01)", "52020SC0204"]
    details = {
        "results": {
            "bindings": [
                _binding(work=work, celex="32024R1252R(01)", title_en="Corrigendum to Regulation (EU) 2024/1252"),
                _binding(work=work2, celex="32021D1227(01)", title_en="Council Decision"),
                _binding(work=work3, celex="52020SC0204", title_en="COMMISSION STAFF WORKING DOCUMENT"),
            ]
        }
    }
    recs = {r.celex: r for r in parse_details(json.dumps(details).encode(), source="sparql", discovered=found)}
    corr = recs["32024R1252R(01)"]
    assert corr.kind == "corrigendum" and corr.external_id == "32024R1252R(01)"
    assert corr.url == "https://eur-lex.europa.eu/legal-content/EN/TXT/?uri=CELEX:32024R1252R(01)"
    assert recs["32021D1227(01)"].kind == "act"
    assert recs["52020SC0204"].kind == "other"


RT = "http://publications.europa.eu/resource/authority/resource-type/"


def test_demo_bundle_sparql_corrigendum_keeps_its_celex_kind_and_link():
    """The demo bundle's SPARQL answers (crawlers/replay/bundle): 32024R1252R(01) comes typed REG."""
    from crawlers.replay import BUNDLE

    bodies = BUNDLE / "bodies"
    found = {d.work: d for d in parse_discovery((bodies / "sparql-acts-page0.json").read_bytes())}
    recs = []
    for name in ("sparql-acts-details0.json", "sparql-acts-details1.json"):
        recs += parse_details((bodies / name).read_bytes(), source="eurlex-sparql", discovered=found)
    (corr,) = [r for r in recs if r.external_id == "32024R1252R(01)"]
    assert corr.celex == "32024R1252R(01)" and corr.kind == "corrigendum" and corr.is_corrigendum
    assert corr.url == "https://eur-lex.europa.eu/legal-content/EN/TXT/?uri=CELEX:32024R1252R(01)"
    assert corr.title_fr.startswith("Rectificatif au règlement (UE) 2024/1252")
    assert all(r.celex for r in recs)  # every work of the bundle has its CELEX
