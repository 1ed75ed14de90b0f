"""Cellar SPARQL: the queries we send and the parsing of their JSON answers.

Two steps, as docs/research/sources.md §4 recommends to stay under the endpoint's cost limits:
1. discovery, paged with LIMIT/OFFSET: works with an OJ date in a window (both OJ date properties:
   act-by-act since Oct 2023 and legacy issues), or works whose legal basis is a watched act;
2. details for a batch of works (``VALUES``): FR+EN titles, document date, ELI, EuroVoc labels,
   legal basis, one row per work thanks to GROUP BY / GROUP_CONCAT with ``|``.
Answers may use ``typed-literal`` (older Virtuoso) or ``literal`` + ``datatype``; both are read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date

from core.records import NoticeRecord
from crawlers.parsers import ParseError, schemas
from crawlers.parsers.normalise import celex_from_ids, kind_for_celex, to_date

CELLAR = "http://publications.europa.eu/resource/cellar/"
RESOURCE_TYPE = "http://publications.europa.eu/resource/authority/resource-type/"
PREFIXES = """PREFIX cdm: <http://publications.europa.eu/ontology/cdm#>
PREFIX xsd: <http://www.w3.org/2001/XMLSchema#>
PREFIX skos: <http://www.w3.org/2004/02/skos/core#>
PREFIX owl: <http://www.w3.org/2002/07/owl#>
PREFIX lang: <http://publications.europa.eu/resource/authority/language/>
PREFIX rt: <http://publications.europa.eu/resource/authority/resource-type/>
"""
PROPOSAL_TYPES = ("PROP_REG", "PROP_DIR", "PROP_DEC")


def acts_query(since: date, until: date, limit: int, offset: int) -> str:
    """Acts with an OJ date in [since, until] (either OJ date property) and proposals by document date."""
    props = " ".join(f"rt:{t}" for t in PROPOSAL_TYPES)
    return (
        PREFIXES
        + f"""SELECT ?work ?celex (MAX(?oj) AS ?ojDate) (GROUP_CONCAT(DISTINCT STR(?type); separator="|") AS ?types)
WHERE {{
  {{ ?work cdm:official-journal-act_date_publication ?oj }}
  UNION {{ ?work cdm:resource_legal_published_in_official-journal/cdm:publication_general_date_publication ?oj }}
  UNION {{ VALUES ?ptype {{ {props} }} ?work cdm:work_has_resource-type ?ptype ; cdm:work_date_document ?oj }}
  FILTER(?oj >= "{since.isoformat()}"^^xsd:date && ?oj <= "{until.isoformat()}"^^xsd:date)
  ?work cdm:resource_legal_id_celex ?celex .
  FILTER(STRSTARTS(STR(?celex), "3") || STRSTARTS(STR(?celex), "5"))
  OPTIONAL {{ ?work cdm:work_has_resource-type ?type }}
}}
GROUP BY ?work ?celex
ORDER BY ?celex
LIMIT {limit} OFFSET {offset}"""
    )


def based_on_query(acts: list[str], limit: int, offset: int) -> str:
    """Works whose legal basis is one of ``acts`` (implementing and delegated acts), with that basis."""
    values = " ".join(f"<http://publications.europa.eu/resource/celex/{c}>" for c in acts)
    return (
        PREFIXES
        + f"""SELECT ?work ?celex (MAX(?oj) AS ?ojDate) (GROUP_CONCAT(DISTINCT STR(?type); separator="|") AS ?types)
       (GROUP_CONCAT(DISTINCT STR(?basisCelex); separator="|") AS ?based_on)
WHERE {{
  VALUES ?basisUri {{ {values} }}
  ?basis owl:sameAs ?basisUri ; cdm:resource_legal_id_celex ?basisCelex .
  ?work cdm:resource_legal_based_on_resource_legal ?basis ;
        cdm:resource_legal_id_celex ?celex .
  OPTIONAL {{ ?work cdm:official-journal-act_date_publication
              |cdm:resource_legal_published_in_official-journal/cdm:publication_general_date_publication ?oj }}
  OPTIONAL {{ ?work cdm:work_has_resource-type ?type }}
}}
GROUP BY ?work ?celex
ORDER BY ?celex
LIMIT {limit} OFFSET {offset}"""
    )


def details_query(works: list[str]) -> str:
    values = " ".join(f"<{w}>" for w in works)
    return (
        PREFIXES
        + f"""SELECT ?work ?celex (SAMPLE(?docDate) AS ?docDate) (SAMPLE(?eli) AS ?eli)
       (SAMPLE(?tEn) AS ?title_en) (SAMPLE(?tFr) AS ?title_fr)
       (GROUP_CONCAT(DISTINCT ?evEn; separator="|") AS ?eurovoc_en)
       (GROUP_CONCAT(DISTINCT ?evFr; separator="|") AS ?eurovoc_fr)
       (GROUP_CONCAT(DISTINCT STR(?basisCelex); separator="|") AS ?legal_basis)
WHERE {{
  VALUES ?work {{ {values} }}
  ?work cdm:resource_legal_id_celex ?celex .
  OPTIONAL {{ ?work cdm:work_date_document ?docDate }}
  OPTIONAL {{ ?work cdm:resource_legal_eli ?eli }}
  OPTIONAL {{ ?e1 cdm:expression_belongs_to_work ?work ; cdm:expression_uses_language lang:ENG ;
                 cdm:expression_title ?tEn }}
  OPTIONAL {{ ?e2 cdm:expression_belongs_to_work ?work ; cdm:expression_uses_language lang:FRA ;
                 cdm:expression_title ?tFr }}
  OPTIONAL {{ ?work cdm:work_is_about_concept_eurovoc ?ev .
             OPTIONAL {{ ?ev skos:prefLabel ?evEn FILTER(LANG(?evEn) = "en") }}
             OPTIONAL {{ ?ev skos:prefLabel ?evFr FILTER(LANG(?evFr) = "fr") }} }}
  OPTIONAL {{ ?work cdm:resource_legal_based_on_resource_legal ?basis .
             ?basis cdm:resource_legal_id_celex ?basisCelex }}
}}
GROUP BY ?work ?celex"""
    )


@dataclass
class Discovered:
    """One work found by a discovery query."""

    work: str
    celex: str | None
    oj_date: date | None
    types: list[str] = field(default_factory=list)
    based_on: list[str] = field(default_factory=list)


def value(binding: dict, name: str) -> str | None:
    """The lexical value of one cell: uri, literal or typed-literal alike; empty -> None."""
    cell = binding.get(name)
    if not isinstance(cell, dict):
        return None
    text = str(cell.get("value", "")).strip()
    return text or None


def split_concat(text: str | None) -> list[str]:
    return [p.strip() for p in (text or "").split("|") if p.strip()]


def load_results(body: bytes) -> list[dict]:
    """SPARQL JSON -> bindings; anything else (HTML error, Virtuoso text error) is a ParseError."""
    if not body.strip():
        raise ParseError("réponse vide au lieu du JSON SPARQL attendu")
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        snippet = body[:120].decode("utf-8", "replace").strip().replace("\n", " ")
        raise ParseError(f"pas du JSON SPARQL ({exc.msg if hasattr(exc, 'msg') else exc}) : {snippet!r}") from None
    try:
        bindings = data["results"]["bindings"]
    except (KeyError, TypeError):
        raise ParseError("JSON SPARQL sans results.bindings") from None
    if not isinstance(bindings, list):
        raise ParseError("results.bindings du JSON SPARQL n'est pas une liste")
    if not all(isinstance(b, dict) for b in bindings):
        raise ParseError("results.bindings du JSON SPARQL contient autre chose que des lignes (objets)")
    return bindings


def _type_code(uri: str) -> str:
    return uri.rsplit("/", 1)[-1]


def parse_discovery(body: bytes) -> list[Discovered]:
    rows = load_results(body)
    schemas.check_rows(schemas.Discovery, rows, "découverte SPARQL")
    out = []
    for b in rows:
        work = value(b, "work")
        if not work:
            continue
        celex = value(b, "celex")
        out.append(
            Discovered(
                work=work,
                celex=celex_from_ids(celex),
                oj_date=to_date(value(b, "ojDate")),
                types=sorted({_type_code(t) for t in split_concat(value(b, "types"))}),
                based_on=split_concat(value(b, "based_on")),
            )
        )
    return out


def _doc_type(types: list[str]) -> str | None:
    main = [t for t in types if t != "CORRIGENDUM"]
    return main[0] if main else (types[0] if types else None)


def _kind(celex: str | None, types: list[str]):  # a Kind literal
    if any(t.startswith("PROP_") for t in types):
        return "proposal"
    return kind_for_celex(celex, "act")


def eurlex_url(celex: str) -> str:
    return f"https://eur-lex.europa.eu/legal-content/EN/TXT/?uri=CELEX:{celex}"


def parse_details(
    body: bytes, *, source: str, discovered: dict[str, Discovered], watched: list[str] | None = None
) -> list[NoticeRecord]:
    """Details answer -> one record per work, joined with what discovery said about it."""
    rows = load_results(body)
    schemas.check_rows(schemas.Details, rows, "détails SPARQL")
    records = []
    for b in rows:
        work = value(b, "work")
        found = discovered.get(work or "") or Discovered(work=work or "", celex=None, oj_date=None)
        celex = celex_from_ids(value(b, "celex")) or found.celex
        title_en, title_fr = value(b, "title_en"), value(b, "title_fr")
        if not (title_en or title_fr or celex):
            continue
        basis = split_concat(value(b, "legal_basis"))
        related = [c for c in found.based_on if not watched or c in watched]
        eurovoc = list(dict.fromkeys(split_concat(value(b, "eurovoc_en")) + split_concat(value(b, "eurovoc_fr"))))
        records.append(
            NoticeRecord(
                source=source,
                external_id=celex or work,
                url=eurlex_url(celex) if celex else work,
                celex=celex,
                eli=value(b, "eli"),
                title_en=title_en,
                title_fr=title_fr,
                doc_type=_doc_type(found.types),
                kind=_kind(celex, found.types),
                published_at=to_date(found.oj_date),
                document_date=to_date(value(b, "docDate")),
                date_origin="official",
                related_acts=related,
                legal_basis=list(dict.fromkeys(basis + found.based_on)),
                eurovoc=eurovoc,
                extra={"cellar": work.removeprefix(CELLAR)} if work else {},
            )
        )
    return records
