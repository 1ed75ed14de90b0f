"""The full-text index and the query language, for SQLite FTS5 and PostgreSQL.

Query language (what users type): words, "quoted phrases", ``OR`` between two items, and ``-word``
to exclude. Anything else (FTS operators, stray quotes, punctuation) is read as plain words, so
a query never reaches the database as raw syntax.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import TYPE_CHECKING

from core.catalog import N_, Message
from core.dates import as_day
from core.errors import UserError
from storage.textnorm import index_text, stems_any, strip_accents, words

if TYPE_CHECKING:  # SQLAlchemy loads only to write the index: `veille search` parses queries without it
    from sqlalchemy.engine import Connection

EPOCH = date(1970, 1, 1)
ID_BITS = 32


TOO_LONG = N_("query too long: %(n)s words, at most %(max)s; keep the distinctive words")


class QueryError(UserError, ValueError):
    """A query that cannot mean anything (e.g. only exclusions). Its message is a :class:`core.catalog.Message`:
    French as a string (the CLI), in the reader's language on the workbench (``message.said``)."""


def search_key(notice_id: int, when: datetime | date | str | None) -> int:
    day = as_day(when)  # an instant (first seen) counts on its Brussels day, like the day-valued dates
    days = (day - EPOCH).days if day else 0
    return (max(days, 0) << ID_BITS) | notice_id


def day_bound(day: date | None, upper: bool) -> int | None:
    if day is None:
        return None
    return search_key((1 << ID_BITS) - 1 if upper else 0, day)


def notice_sort_date(n) -> datetime | date | None:  # Notice or row
    return n.published_at or n.document_date or n.first_seen


# --- writing the index ---------------------------------------------------------------------


def _fields(n) -> tuple[str, str, str]:
    title = " ".join(filter(None, [index_text(n.title_en, "en"), index_text(n.title_fr, "fr")]))
    summary = " ".join(filter(None, [index_text(n.summary_en, "en"), index_text(n.summary_fr, "fr")]))
    return title, summary, index_text(n.body, n.lang)


META_PREFIX = {"labels": "xl", "sources": "xs", "doc_types": "xt", "kinds": "xk"}


def meta_token(kind: str, value: str) -> str:
    """A filter value as one FTS token (the tokenizer would split ``sante_publique``)."""
    return META_PREFIX[kind] + re.sub(r"[^0-9a-z]", "", strip_accents(value.lower()))


def meta_text(n, labels: list[str]) -> str:
    tokens = [meta_token("labels", lb) for lb in labels]
    tokens += [meta_token("sources", n.source), meta_token("kinds", n.kind or "other")]
    if n.doc_type:
        tokens.append(meta_token("doc_types", n.doc_type))
    return " ".join(tokens)


def _selected_labels(conn: Connection, notice_id: int) -> list[str]:
    from sqlalchemy import text

    rows = conn.execute(
        text("SELECT label FROM label_score WHERE notice_id = :i AND selected = :t"), {"i": notice_id, "t": True}
    )
    return [r.label for r in rows]


def index_notice(conn: Connection, n, old_key: int | None) -> int:
    """(Re)index notice ``n`` inside the caller's transaction; returns its new search key."""
    from sqlalchemy import text

    key = search_key(n.id, notice_sort_date(n))
    title, summary, body = _fields(n)
    if conn.dialect.name == "sqlite":
        if old_key is not None:
            conn.execute(text("DELETE FROM notice_fts WHERE rowid = :k"), {"k": old_key})
        conn.execute(
            text("INSERT INTO notice_fts(rowid, title, summary, body, meta) VALUES (:k, :t, :s, :b, :m)"),
            {"k": key, "t": title, "s": summary, "b": body, "m": meta_text(n, _selected_labels(conn, n.id))},
        )
    else:
        conn.execute(
            text(
                "INSERT INTO notice_search(notice_id, search_key, tsv) VALUES (:id, :k,"
                " setweight(to_tsvector('veille', :t), 'A') || setweight(to_tsvector('veille', :s), 'B')"
                " || setweight(to_tsvector('veille', :b), 'D'))"
                " ON CONFLICT (notice_id) DO UPDATE SET search_key = EXCLUDED.search_key, tsv = EXCLUDED.tsv"
            ),
            {"id": n.id, "k": key, "t": title, "s": summary, "b": body},
        )
    return key


def refresh_labels(conn: Connection, notice_ids: list[int]) -> None:
    """Re-index the filter tokens of notices whose selected labels changed (call after scoring)."""
    from sqlalchemy import text

    if conn.dialect.name != "sqlite":
        return  # PostgreSQL filters labels with a join on label_score
    for i in notice_ids:
        row = conn.execute(
            text("SELECT id, source, kind, doc_type, search_key FROM notice WHERE id = :i"), {"i": i}
        ).first()
        if row is None or row.search_key is None:
            continue
        conn.execute(
            text("UPDATE notice_fts SET meta = :m WHERE rowid = :k"),
            {"m": meta_text(row, _selected_labels(conn, i)), "k": row.search_key},
        )


# --- parsing queries -----------------------------------------------------------------------

TOKEN_RE = re.compile(r'(-?)"([^"]*)"|(\S+)')
# Twice the longest EUR-Lex title in the development set (146 words), so a pasted title always searches.
# Cost grows faster than the words: 3,000 words took 35 s in the CLI over the 201-notice demo archive,
# and one such request held a workbench worker for minutes.
MAX_WORDS = 300


@dataclass(frozen=True)
class Clause:
    terms: tuple[tuple[str, ...], ...]  # one entry per word: its stems (fr, en)
    negated: bool = False
    or_next: bool = False  # joined to the next clause with OR
    quoted: bool = False  # "as written": no cross-language expansion (storage/crosslang.py)

    @property
    def words_count(self) -> int:
        return len(self.terms)


def parse(query: str) -> list[Clause]:
    clauses: list[Clause] = []
    for m in TOKEN_RE.finditer(query.replace("\u201c", '"').replace("\u201d", '"')):
        neg, phrase, bare = m.group(1), m.group(2), m.group(3)
        if bare is not None:
            if bare == "OR" and clauses and not clauses[-1].negated:
                clauses[-1] = replace(clauses[-1], or_next=True)
                continue
            neg = "-" if bare.startswith("-") and len(bare) > 1 else ""
            for w in words(bare):  # "R&D", "AND", "NEAR(" ... become plain words
                clauses.append(Clause((stems_any(w),), bool(neg)))
            continue
        ws = words(phrase)
        if ws:
            clauses.append(Clause(tuple(stems_any(w) for w in ws), bool(neg), quoted=True))
    if clauses and clauses[-1].or_next:
        clauses[-1] = replace(clauses[-1], or_next=False)
    if clauses and all(c.negated for c in clauses):
        raise QueryError(Message(N_("the query only excludes words: add at least one word to look for")))
    n = sum(c.words_count for c in clauses)
    if n > MAX_WORDS:
        raise QueryError(Message(TOO_LONG, n=n, max=MAX_WORDS))
    return clauses


def query_stems(clauses: list[Clause]) -> set[str]:
    return {s for c in clauses if not c.negated for t in c.terms for s in t}


def _variants(c: Clause) -> list[list[str]]:
    """A phrase in each language's stems; a single word in all its stems."""
    n_lang = max(len(t) for t in c.terms)
    return [[t[min(i, len(t) - 1)] for t in c.terms] for i in range(n_lang)]


def to_fts5(clauses: list[Clause]) -> str:
    """The text part of an FTS5 query. No column filter: it makes FTS5 read every position list of
    a frequent term (70 ms instead of 2 ms at 1M notices), and the filter tokens of ``meta``
    (``xldeai``...) are not words anyone searches for."""
    return _fts5_expr(clauses) if clauses else ""


def _groups(clauses: list[Clause]) -> tuple[list[list[Clause]], list[Clause]]:
    """Positive clauses as AND-ed groups of OR-ed clauses, and the excluded clauses."""
    groups: list[list[Clause]] = []
    negative: list[Clause] = []
    joined = False
    for c in clauses:
        if c.negated:
            negative.append(c)
            continue
        if joined and groups:
            groups[-1].append(c)
        else:
            groups.append([c])
        joined = c.or_next
    return groups, negative


# The expressions are flat (``a OR b OR c``, ``x NOT (n1 OR n2)``): the FTS5 parser's stack overflows
# on nesting (94 OR-ed words or 96 exclusions nested one level each), not on length.


def _fts5_expr(clauses: list[Clause]) -> str:
    def clause(c: Clause) -> str:
        return " OR ".join('"' + " ".join(v) + '"' for v in _variants(c))

    groups, negative = _groups(clauses)
    out = " AND ".join("(" + " OR ".join(clause(c) for c in g) + ")" for g in groups)
    if negative:
        out = f"({out}) NOT (" + " OR ".join(clause(c) for c in negative) + ")"
    return out


def to_tsquery(clauses: list[Clause]) -> str:
    def clause(c: Clause) -> str:
        return " | ".join(" <-> ".join(v) for v in _variants(c))

    groups, negative = _groups(clauses)
    parts = ["(" + " | ".join(clause(c) for c in g) + ")" for g in groups]
    parts += ["!(" + clause(c) + ")" for c in negative]
    return " & ".join(parts)
