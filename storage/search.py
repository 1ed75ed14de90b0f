"""Archive search: the one API behind ``veille search`` and the web workbench.

Ranking is BM25 (FTS5) or ts_rank (PostgreSQL). To keep every query fast on a large archive,
matches are streamed newest first through the date-ordered index key and at most ``CANDIDATES``
filtered matches are ranked; counts and facets past that cap are marked as lower bounds.
For a query matching fewer notices than the cap (nearly all real queries), results are exact.
"""

from __future__ import annotations

import csv
import html
import io
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal
from zoneinfo import ZoneInfo

from storage.crosslang import Lexicon, expand
from storage.fulltext import (
    ID_BITS,
    Clause,
    QueryError,
    day_bound,
    meta_token,
    parse,
    query_stems,
    to_fts5,
    to_tsquery,
)
from storage.identifiers import Identifier, identifier_ids, parse_identifier
from storage.reader import Archive, Reader, day, instant, reading
from storage.textnorm import LANGS, stem, stems_any

CANDIDATES = 2000
EXACT_RANK = 500  # query terms matching at most this many notices each: FTS5's bm25 ranks (its IDF is cheap)
RANKED_WHEN_CAPPED = 300  # otherwise the newest matches are scored in Python
PG_RANK = "-ts_rank(s.tsv, to_tsquery('veille', :q))"
ID_MASK = (1 << ID_BITS) - 1
SNIPPET_WORDS = 28

__all__ = ["EXPORT_FIELDS", "Filters", "Hit", "Result", "QueryError", "export_csv", "export_rows", "search"]


@dataclass
class Filters:
    labels: list[str] = field(default_factory=list)
    min_score: float | None = None
    sources: list[str] = field(default_factory=list)
    doc_types: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    date_from: date | None = None
    date_to: date | None = None


@dataclass
class Hit:
    notice_id: int
    title: str
    title_en: str | None
    title_fr: str | None
    url: str | None
    source: str
    doc_type: str | None
    kind: str
    celex: str | None
    published_at: date | None  # publication day (Brussels)
    rank: float | None
    snippet_html: str  # HTML-escaped, matched words in <mark>
    snippet_text: str  # plain, matched words in [brackets]
    labels: dict[str, float] = field(default_factory=dict)
    eli: str | None = None
    procedure: str | None = None
    document_date: date | None = None
    deadline: date | None = None
    first_seen: datetime | None = None


@dataclass
class Result:
    hits: list[Hit]
    total: int
    total_is_lower_bound: bool
    facets: dict[str, Counter] = field(default_factory=dict)


def _meta_match(f: Filters) -> str:
    """Filters as FTS5 terms (the ``meta`` column's tokens, SQLite): one doclist intersection each."""
    groups = []
    for kind in ("labels", "sources", "doc_types", "kinds"):
        values = getattr(f, kind)
        if values and not (kind == "labels" and f.min_score is not None):
            groups.append("(" + " OR ".join(f'"{meta_token(kind, v)}"' for v in values) + ")")
    return " AND ".join(groups)


def _filter_sql(f: Filters, params: dict, in_fts: bool = False) -> str:
    """SQL conditions for the filters not already in the FTS match."""
    parts = []
    if f.min_score is not None or (f.labels and not in_fts):
        cond = ["ls.notice_id = n.id"]
        if f.labels:
            cond.append("ls.label IN :labels")
            params["labels"] = list(f.labels)
        if f.min_score is not None:
            cond.append("ls.score >= :min_score")
            params["min_score"] = f.min_score
        else:
            cond.append("ls.selected = :sel")
            params["sel"] = True
        parts.append(f"EXISTS (SELECT 1 FROM label_score ls WHERE {' AND '.join(cond)})")
    for name, column in (("sources", "n.source"), ("doc_types", "n.doc_type"), ("kinds", "n.kind")):
        if getattr(f, name) and not in_fts:
            parts.append(f"{column} IN :{name}")
            params[name] = list(getattr(f, name))
    return "".join(f" AND {p}" for p in parts)


def _key_range(f: Filters, params: dict, column: str) -> str:
    out = ""
    lo, hi = day_bound(f.date_from, upper=False), day_bound(f.date_to, upper=True)
    if lo is not None:
        out += f" AND {column} >= :lo"
        params["lo"] = lo
    if hi is not None:
        out += f" AND {column} <= :hi"
        params["hi"] = hi
    return out


def _candidates_sql(dialect: str, clauses, f: Filters, params: dict, ranked: bool) -> str:
    """SQL yielding (key, rank) for up to :cap filtered matches, newest first."""
    sqlite = dialect == "sqlite"
    meta = _meta_match(f) if sqlite else ""
    if sqlite and (clauses or meta):
        params["q"] = " AND ".join(filter(None, [to_fts5(clauses), meta]))
        rng = _key_range(f, params, "notice_fts.rowid")
        filters = _filter_sql(f, params, in_fts=True)
        rank = "bm25(notice_fts, 10.0, 4.0, 1.0, 0.0)" if ranked else "NULL"
        join = " JOIN notice n ON n.id = (notice_fts.rowid & :mask)" if filters else ""
        return (
            f"SELECT notice_fts.rowid AS key, {rank} AS rank FROM notice_fts{join}"
            f" WHERE notice_fts MATCH :q{rng}{filters} ORDER BY notice_fts.rowid DESC LIMIT :cap"
        )
    filters = _filter_sql(f, params)
    if not clauses:  # filters only: browse by date
        rng = _key_range(f, params, "n.search_key")
        return (
            "SELECT n.search_key AS key, NULL AS rank FROM notice n WHERE n.search_key IS NOT NULL"
            f"{rng}{filters} ORDER BY n.search_key DESC LIMIT :cap"
        )
    params["q"] = to_tsquery(clauses)
    rng = _key_range(f, params, "s.search_key")
    return (
        f"SELECT s.search_key AS key, {PG_RANK if ranked else 'NULL'} AS rank"
        " FROM notice_search s JOIN notice n ON n.id = s.notice_id"
        f" WHERE s.tsv @@ to_tsquery('veille', :q){rng}{filters} ORDER BY s.search_key DESC LIMIT :cap"
    )


def _statement(dialect: str, clauses, f: Filters, ranked: bool) -> tuple[str, dict]:
    params: dict = {"cap": CANDIDATES + 1, "mask": ID_MASK}
    return _candidates_sql(dialect, clauses, f, params, ranked), params


def search(
    db: Archive,
    query: str,
    filters: Filters | None = None,
    *,
    sort: Literal["relevance", "date"] = "relevance",
    limit: int = 20,
    offset: int = 0,
    facets: bool = False,
    lexicon: Lexicon | None = None,
) -> Result:
    """Search the archive. Raises :class:`QueryError` (one line, user-facing) for a query with no meaning.

    A query that is an identifier (CELEX, act number, procedure, ELI: ``storage.identifiers``) lists
    the notices it names first, then those whose text cites it. With a ``lexicon``, each unquoted word
    is also searched in the other language (``storage.crosslang``)."""
    f = filters or Filters()
    ident = parse_identifier(query or "")
    clauses = _mention_clauses(ident) if ident else expand(parse(query or ""), lexicon)
    ranked = sort == "relevance" and bool(clauses)
    with reading(db) as r:
        pinned = _pinned_keys(r, ident, f) if ident else []
        keys, ranks, capped = _text_keys(r, clauses, f, ranked) if clauses or not ident else ([], {}, False)
        if pinned:
            named = set(pinned)
            keys = pinned + [k for k in keys if k not in named]
        page = keys[offset : offset + limit]
        hits = _load_hits(
            r, [k & ID_MASK for k in page], query_stems(clauses), {k & ID_MASK: ranks.get(k) for k in page}
        )
        counts = _facets(r, [k & ID_MASK for k in keys]) if facets else {}
    return Result(hits=hits, total=len(keys), total_is_lower_bound=capped, facets=counts)


def _text_keys(r: Reader, clauses: list[Clause], f: Filters, ranked: bool):
    """(keys in result order, ranks by key, capped) of the full-text part."""
    sqlite = r.dialect == "sqlite"
    # FTS5's bm25() first counts every match of each term (its IDF), a cost proportional to the
    # term's frequency: match without it, then rank with bm25 when every term is rare, and score
    # the newest matches in Python when one is frequent.
    rows = r.all(*_statement(r.dialect, clauses, f, ranked and not sqlite))
    capped = len(rows) > CANDIDATES
    keys = [key for key, _ in rows[:CANDIDATES]]
    ranks: dict[int, float] = {}
    if ranked and not sqlite:
        ranks = dict(rows)
    elif ranked and _terms_are_rare(r, clauses):
        ranks = dict(r.all(*_statement(r.dialect, clauses, f, True)))
    elif ranked:
        ranks = _rank_common(r, keys[:RANKED_WHEN_CAPPED], clauses)
    if ranked:
        keys.sort(key=lambda k: (ranks.get(k, 0.0), -k))
    return keys, ranks, capped


def _mention_clauses(ident: Identifier) -> list[Clause]:
    """The identifier as the phrase texts cite it with ("2025/117"), or nothing to search in text."""
    words_ = ident.mention_words()
    return [Clause(tuple(stems_any(w) for w in words_))] if words_ else []


def _pinned_keys(r: Reader, ident: Identifier, f: Filters) -> list[int]:
    """Search keys of the notices the identifier names that pass the filters, newest first."""
    ids = identifier_ids(r, ident)
    if not ids:
        return []
    params: dict = {"ids": ids}
    sql = (
        "SELECT n.search_key FROM notice n WHERE n.id IN :ids AND n.search_key IS NOT NULL"
        f"{_key_range(f, params, 'n.search_key')}{_filter_sql(f, params)} ORDER BY n.search_key DESC"
    )
    return [row[0] for row in r.all(sql, params)]


def _terms_are_rare(r: Reader, clauses) -> bool:
    """Whether every query term matches at most EXACT_RANK notices (a probe streams that many, cheaply).

    bm25() computes each term's IDF by counting all its matches, filters or not: affordable only then.
    """
    for term in query_stems(clauses):
        probe = "SELECT count(*) FROM (SELECT rowid FROM notice_fts WHERE notice_fts MATCH :q LIMIT :n)"
        if r.scalar(probe, {"q": f'"{term}"', "n": EXACT_RANK + 1}) > EXACT_RANK:
            return False
    return True


def _rank_common(r: Reader, keys: list[int], clauses) -> dict[int, float]:
    """BM25-like score, in Python, of the newest matches of a very common query.

    Past the cap every query term is frequent, so IDF barely separates documents; what ranks them
    is where and how often the terms occur (title over summary over body) relative to length.
    The remaining matches, older, follow by date.
    """
    if not keys:
        return {}
    stems = [set(t) for c in clauses if not c.negated for t in c.terms]
    rows = r.all("SELECT rowid AS key, title, summary FROM notice_fts WHERE rowid IN :ids", {"ids": keys})
    scores = {}
    for row in rows:
        score = 0.0
        for weight, indexed in ((10.0, row.title), (4.0, row.summary)):
            terms = (indexed or "").split()
            norm = 1.2 * (0.25 + 0.75 * len(terms) / 30)
            for variants in stems:
                tf = sum(1 for t in terms if t in variants)
                score += weight * tf * 2.2 / (tf + norm) if tf else 0.0
        scores[row.key] = -score  # bm25() convention: lower is better
    return scores


HIT_COLUMNS = (
    "id, title_en, title_fr, summary_en, summary_fr, body, url, source, doc_type, kind, celex, eli, procedure,"
    " published_at, document_date, deadline, first_seen"
)


def _load_hits(r: Reader, ids: list[int], stems: set[str], ranks: dict[int, float]) -> list[Hit]:
    if not ids:
        return []
    rows = {row.id: row for row in r.all(f"SELECT {HIT_COLUMNS} FROM notice WHERE id IN :ids", {"ids": ids})}
    labels: dict[int, dict[str, float]] = {}
    sql = "SELECT notice_id, label, score FROM label_score WHERE selected AND notice_id IN :ids"
    for row in r.all(sql, {"ids": ids}):
        labels.setdefault(row.notice_id, {})[row.label] = row.score
    hits = []
    marker = _Marker(stems)  # shared by the page's snippets: they repeat words
    for i in ids:
        n = rows[i]
        snippet_html, snippet_text = make_snippet(n, stems, marker)
        hits.append(
            Hit(
                notice_id=n.id,
                title=n.title_fr or n.title_en or "",
                title_en=n.title_en,
                title_fr=n.title_fr,
                url=n.url,
                source=n.source,
                doc_type=n.doc_type,
                kind=n.kind,
                celex=n.celex,
                published_at=day(n.published_at),
                rank=ranks.get(i),
                snippet_html=snippet_html,
                snippet_text=snippet_text,
                labels=labels.get(i, {}),
                eli=n.eli,
                procedure=n.procedure,
                document_date=day(n.document_date),
                deadline=day(n.deadline),
                first_seen=instant(n.first_seen),
            )
        )
    return hits


def _facets(r: Reader, ids: list[int]) -> dict[str, Counter]:
    # Every notice has a kind; a document type only when its source gives one (no "none" bucket).
    kinds = ("label", "kind", "source", "doc_type", "year")
    out: dict[str, Counter] = {k: Counter() for k in kinds}
    for chunk in (ids[i : i + 900] for i in range(0, len(ids), 900)):
        for row in r.all("SELECT label FROM label_score WHERE selected AND notice_id IN :ids", {"ids": chunk}):
            out["label"][row.label] += 1
        sql = "SELECT source, kind, doc_type, published_at, document_date FROM notice WHERE id IN :ids"
        for row in r.all(sql, {"ids": chunk}):
            out["source"][row.source] += 1
            out["kind"][row.kind] += 1
            if row.doc_type:
                out["doc_type"][row.doc_type] += 1
            when = row.published_at or row.document_date
            out["year"][str(when)[:4] if when else "—"] += 1
    return out


WORD_SPLIT = re.compile(r"(\w+)", re.UNICODE)


class _Marker:
    """Decides which words of a text match the query's stems (memoised: snippets see few words)."""

    def __init__(self, stems: set[str]) -> None:
        self.stems, self.memo = stems, {}

    def __call__(self, word: str) -> bool:
        hit = self.memo.get(word)
        if hit is None:
            lw = word.lower()
            hit = self.memo[word] = bool(self.stems) and any(stem(lw, lang) in self.stems for lang in LANGS)
        return hit


def make_snippet(n, stems: set[str], marks: _Marker | None = None) -> tuple[str, str]:
    """A window of the first field that matches, with the matched words marked.

    ``WORD_SPLIT.split`` alternates separators (even indexes) and words (odd indexes); words need no
    HTML escaping, so only the separators are escaped.
    """
    marks = marks or _Marker(stems)
    fields = [n.title_fr, n.title_en, n.summary_fr, n.summary_en, (n.body or "")[:5000]]
    pieces, first = None, 1
    for t in filter(None, fields):
        split = WORD_SPLIT.split(t)
        first = next((i for i in range(1, len(split), 2) if marks(split[i])), None)
        if first is not None:
            pieces = split
            break
    if pieces is None:
        fallback = n.summary_fr or n.summary_en or (n.body or "")[:400] or n.title_fr or n.title_en or ""
        pieces = WORD_SPLIT.split(fallback)
        first = 1
    start = max(1, first - 2 * (SNIPPET_WORDS // 3))  # odd: the window opens on a word
    end = start + 2 * SNIPPET_WORDS - 1
    pre = "… " if start > 1 else ""
    post = " …" if end < len(pieces) - 1 else ""
    h_parts, t_parts = ([html.escape(pieces[0])], [pieces[0]]) if start == 1 else ([], [])
    for j, piece in enumerate(pieces[start:end]):
        if j % 2 == 0 and marks(piece):  # a word
            h_parts.append(f"<mark>{piece}</mark>")
            t_parts.append(f"[{piece}]")
        else:
            h_parts.append(piece if j % 2 == 0 else html.escape(piece))
            t_parts.append(piece)
    return pre + "".join(h_parts).strip() + post, pre + "".join(t_parts).strip() + post


# --- export (CSV / JSON for the analysts' notes) -------------------------------------------------

EXPORT_FIELDS = (
    "id",
    "celex",
    "procedure",
    "title",
    "title_fr",
    "title_en",
    "source",
    "doc_type",
    "kind",
    "labels",
    "scores",
    "relevance",
    "published",
    "document_date",
    "deadline",
    "first_seen",
    "url",
    "eurlex_url",
    "notice_url",
)
PARIS = ZoneInfo("Europe/Paris")


def export_rows(hits: list[Hit], base_url: str = "") -> list[dict]:
    """One flat row per hit, in EXPORT_FIELDS order. The OJ publication is a Brussels calendar day;
    first seen is a Paris time with its offset; ``notice_url`` is the workbench page under ``base_url``."""
    rows = []
    for h in hits:
        selected = sorted(h.labels.items(), key=lambda kv: (-kv[1], kv[0]))
        rows.append(
            {
                "id": h.notice_id,
                "celex": h.celex or "",
                "procedure": h.procedure or "",
                "title": h.title,
                "title_fr": h.title_fr or "",
                "title_en": h.title_en or "",
                "source": h.source,
                "doc_type": h.doc_type or "",
                "kind": h.kind,
                "labels": ";".join(k for k, _ in selected),
                "scores": ";".join(f"{k}={v:.2f}" for k, v in selected),
                "relevance": "" if h.rank is None else round(-h.rank, 4),  # bm25 convention: lower was better
                "published": h.published_at.isoformat() if h.published_at else "",  # a Brussels day
                "document_date": h.document_date.isoformat() if h.document_date else "",
                "deadline": h.deadline.isoformat() if h.deadline else "",
                "first_seen": h.first_seen.astimezone(PARIS).isoformat(timespec="seconds") if h.first_seen else "",
                "url": h.url or "",
                "eurlex_url": f"https://eur-lex.europa.eu/legal-content/FR/TXT/?uri=CELEX:{h.celex}" if h.celex else "",
                "notice_url": f"{base_url.rstrip('/')}/notice/{h.notice_id}",
            }
        )
    return rows


def export_csv(rows: list[dict]) -> str:
    """CSV (RFC 4180, comma, header row). A cell a spreadsheet would run as a formula (``=``, ``+``,
    ``-``, ``@`` first: titles come from the web) is prefixed with a quote."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=EXPORT_FIELDS, lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {k: ("'" + v if isinstance(v, str) and v[:1] in "=+-@\t\r" and v else v) for k, v in row.items()}
        )
    return out.getvalue()


def stored_values(db: Archive, column: Literal["source", "doc_type"]) -> set[str]:
    """The values a notice column holds (what ``--source`` and ``--type`` may name), empty ones left out."""
    with reading(db) as r:
        return {row[0] for row in r.all(f"SELECT DISTINCT {column} FROM notice")} - {None, ""}
