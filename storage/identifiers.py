"""Identifiers people type instead of words: CELEX, act numbers, procedure references, ELI.

``veille search``, the web search box, ``veille explain`` and ``/notice/…`` read them through
:func:`parse_identifier` and find notices by the archive's indexed columns (``celex``, ``eli``,
``procedure``), not by full text: a CELEX is not a word of any title. The CELEX grammar here is the
small part search needs (sector, year, descriptor, number, corrigendum suffix).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from core.celex import parse_celex
from storage.reader import Archive, Reader, reading

MAX_NOTICE_ID = 2**63 - 1
# "2025/117", "(EU) 2025/117", "Regulation (EU) 2025/117", "règlement (UE) n° 2025/117"
NUMBER_Q = re.compile(
    r"(?:(?:regulation|directive|decision|règlement|reglement|décision)\s+)?"
    r"(?:\((?:eu|ue|ec|ce|euratom)\)\s*)?(?:n[o°º]\.?\s*)?(\d{4})\s*/\s*(\d{1,5})",
    re.I,
)
PROCEDURE_Q = re.compile(r"(\d{4})\s*/\s*(\d{4})\s*\(\s*([a-z]{3})\s*\)", re.I)
PROCEDURE_OLD_Q = re.compile(r"([a-z]{3})\s*\(\s*(\d{4})\s*\)\s*(\d{4})", re.I)  # COD(2021)0106
ELI_Q = re.compile(r"(?:https?://data\.europa\.eu/)?/?eli/([a-z_]+)/(\d{4})/(\d{1,5})(?:/[\w/.-]*)?", re.I)
ELI_LETTER = {"reg": "R", "dir": "L", "dec": "D", "reco": "H"}  # ELI type (before any _impl/_del) -> CELEX


@dataclass(frozen=True)
class Identifier:
    kind: Literal["celex", "number", "procedure", "eli"]
    value: str  # normalised: 32025R0117, 2025/117, 2021/0106(COD), reg/2024/1689
    year: int | None = None
    number: int | None = None
    letters: str | None = None  # CELEX descriptor letters an ELI type allows; None: any

    def mention_words(self) -> list[str]:
        """The words a title or text uses to cite it ("2025/117" for 32025R0117), searched as a phrase."""
        if self.kind == "procedure":
            return re.findall(r"\w+", self.value.lower())
        if self.year is not None and self.number is not None:
            return [str(self.year), str(self.number)]
        return []


def parse_identifier(query: str) -> Identifier | None:
    """The identifier the whole query is, or None (then it is words)."""
    q = query.strip().strip("\"'“”«» ").strip()
    if (c := parse_celex(q)) and c.oj_issue is None:  # the act a corrigendum corrects is the notice
        number = int(c.number) if c.sector == "3" and c.number.isdigit() else None
        return Identifier("celex", c.act, c.year, number)
    if m := PROCEDURE_Q.fullmatch(q):
        return Identifier("procedure", f"{m.group(1)}/{m.group(2)}({m.group(3).upper()})")
    if m := PROCEDURE_OLD_Q.fullmatch(q):
        return Identifier("procedure", f"{m.group(2)}/{m.group(3)}({m.group(1).upper()})")
    if m := ELI_Q.fullmatch(q):
        kind, year, number = m.group(1).lower(), int(m.group(2)), int(m.group(3))
        return Identifier("eli", f"{kind}/{year}/{number}", year, number, ELI_LETTER.get(kind.split("_")[0]))
    if (m := NUMBER_Q.fullmatch(q)) and 1950 <= int(m.group(1)) <= 2100:
        return Identifier("number", f"{int(m.group(1))}/{int(m.group(2))}", int(m.group(1)), int(m.group(2)))
    return None


def identifier_ids(r: Reader, ident: Identifier) -> list[int]:
    """The notices the identifier names (not those citing it), by indexed columns."""
    if ident.kind == "celex":
        return [row.id for row in r.all("SELECT id FROM notice WHERE celex = :c ORDER BY id", {"c": ident.value})]
    if ident.kind == "procedure":
        return [row.id for row in r.all("SELECT id FROM notice WHERE procedure = :p ORDER BY id", {"p": ident.value})]
    # An act number or an ELI: the sector-3 acts of that year with that number (a key range of the
    # celex index, then the number checked here), and for an ELI its URI as Cellar gives it.
    year, number = ident.year, ident.number
    shape = re.compile(rf"3{year}({ident.letters or '[A-Z]{1,2}'})0*{number}")
    rows = r.all(
        "SELECT id, celex FROM notice WHERE celex >= :lo AND celex < :hi ORDER BY id",
        {"lo": f"3{year}", "hi": f"3{year + 1}"},  # bounds any collation orders alike
    )
    ids = [row.id for row in rows if shape.fullmatch(row.celex or "")]
    if ident.kind == "eli":
        uri = f"http://data.europa.eu/eli/{ident.value}"
        uris = [uri, f"{uri}/oj", f"{uri}/oj/eng", f"{uri}/oj/fra"]
        ids += [row.id for row in r.all("SELECT id FROM notice WHERE eli IN :uris", {"uris": uris})]
    return sorted(set(ids))


def resolve_notice(db: Archive, ref: str) -> int | None:
    """A notice's internal id from what a person gives: the id itself, a CELEX, an ELI or a procedure
    reference naming one notice. None when nothing matches, or several ("2025/117" may be a regulation
    and a decision)."""
    ref = ref.strip()
    with reading(db) as r:
        if ref.isascii() and ref.isdigit():
            if int(ref) > MAX_NOTICE_ID:
                return None
            return r.scalar("SELECT id FROM notice WHERE id = :i", {"i": int(ref)})
        ident = parse_identifier(ref)
        if ident is None:
            return None
        ids = identifier_ids(r, ident)
    return ids[0] if len(ids) == 1 else None
