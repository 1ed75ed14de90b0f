"""CELEX numbers: one parser for the whole grammar, used by every stage.

``{sector}{year}{descriptor}{number}`` then optional parts, as EUR-Lex and Cellar write them:

- sector ``0``-``9``, ``C`` or ``E`` (3 = legislation, 5 = preparatory acts, 0 = consolidated texts,
  6 = case law, E = EFTA documents);
- descriptor letters (``R``, ``L``, ``D``, ``PC``, ``SC``, ``DC``, ``XC``, ``M``...) and the number
  (4 digits, 5 for merger decisions such as ``32022M10396``);
- ``(nn)``: a numbered suffix; ``32021D1227(01)`` is another act than ``32021D1227``, so it is kept;
- ``R(nn)``: a corrigendum of the act (``32024R1689R(02)``);
- ``-YYYYMMDD``: a consolidated version (``02016R0679-20160504``);
- OJ C notices cited by issue: ``C2022/114A/01``.

Input is read case-insensitively (``celex:32024r1689``); the canonical form is upper case.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from urllib.parse import unquote

# Groups 1-4 (sector, year, descriptor, number) keep the numbering older callers rely on.
_BODY = (
    r"([0-9CE])(\d{4})([A-Z]{1,2})(\d{1,6})"
    r"(?:\((?P<suffix>\d{1,3})\))?"
    r"(?:R\((?P<corr>\d{1,3})\))?"
    r"(?:-(?P<version>\d{8}))?"
)
_OJ_C = r"C(?P<cyear>\d{4})/(?P<issue>\d{1,4}[A-Z]?)/(?P<item>\d{2})"
CELEX_RE = re.compile(rf"(?:{_BODY}|{_OJ_C})", re.I)
# In text: a CELEX after ``CELEX:`` (titles, links, ``uri=CELEX%3A…`` once unquoted), not glued to more word.
CELEX_IN_TEXT_RE = re.compile(rf"CELEX:\s*({_BODY}|{_OJ_C})(?![0-9A-Za-z(/])", re.I)
# A bare CELEX standing alone in a free-text field (``based on 32021R2282, 32017R0745``).
BARE_CELEX_RE = re.compile(rf"(?<![0-9A-Za-z/]){_BODY}(?![0-9A-Za-z(/])", re.I)


@dataclass(frozen=True)
class Celex:
    """The parts of one CELEX number."""

    sector: str
    year: int
    descriptor: str = ""
    number: str = ""
    suffix: str | None = None  # "01" of "32021D1227(01)"
    corrigendum: str | None = None  # "02" of "32024R1689R(02)"
    version: date | None = None  # consolidated version date, "-20160504"
    oj_issue: str | None = None  # "114A" of "C2022/114A/01"
    oj_item: str | None = None  # "01" of "C2022/114A/01"

    def __str__(self) -> str:
        if self.oj_issue is not None:
            return f"C{self.year:04d}/{self.oj_issue}/{self.oj_item}"
        out = f"{self.sector}{self.year:04d}{self.descriptor}{self.number}"
        if self.suffix is not None:
            out += f"({self.suffix})"
        if self.corrigendum is not None:
            out += f"R({self.corrigendum})"
        if self.version is not None:
            out += "-" + self.version.strftime("%Y%m%d")
        return out

    @property
    def is_corrigendum(self) -> bool:
        return self.corrigendum is not None

    @property
    def act(self) -> str:
        """The act a corrigendum corrects (itself otherwise): ``32024R1689R(02)`` -> ``32024R1689``."""
        if self.corrigendum is None:
            return str(self)
        return str(Celex(self.sector, self.year, self.descriptor, self.number, self.suffix, None, self.version))


def _from_match(m: re.Match[str]) -> Celex | None:
    if m.groupdict().get("issue") is not None:
        return Celex("C", int(m.group("cyear")), oj_issue=m.group("issue").upper(), oj_item=m.group("item"))
    version = None
    if m.group("version"):
        v = m.group("version")
        try:
            version = date(int(v[:4]), int(v[4:6]), int(v[6:]))
        except ValueError:
            return None  # "-20241399" is no day: not a consolidated version
    return Celex(
        sector=m.group(1).upper(),
        year=int(m.group(2)),
        descriptor=m.group(3).upper(),
        number=m.group(4),
        suffix=m.group("suffix"),
        corrigendum=m.group("corr"),
        version=version,
    )


def parse_celex(text: str | None) -> Celex | None:
    """The whole string as one CELEX number (``celex:`` prefix and spaces allowed), else None."""
    if not text:
        return None
    text = text.strip()
    if text[:6].lower() == "celex:":
        text = text[6:].strip()
    m = CELEX_RE.fullmatch(text)
    return _from_match(m) if m else None


def normalise_celex(text: str | None) -> str | None:
    """The canonical spelling of a CELEX number, or None if ``text`` is not one."""
    parsed = parse_celex(text)
    return str(parsed) if parsed else None


def is_celex(text: str | None) -> bool:
    return parse_celex(text) is not None


def celex_in_text(text: str | None) -> str | None:
    """The first ``CELEX:…`` in a title or link (URL-encoded or not), canonical; else None."""
    if not text:
        return None
    for m in CELEX_IN_TEXT_RE.finditer(unquote(text)):
        parsed = parse_celex(m.group(1))
        if parsed:
            return str(parsed)
    return None


def bare_celex_in_text(text: str | None) -> list[str]:
    """Every CELEX number written on its own in a free-text field, canonical, in order."""
    found = (_from_match(m) for m in BARE_CELEX_RE.finditer(text or ""))
    return list(dict.fromkeys(str(c) for c in found if c))


def base_celex(celex: str | None) -> str | None:
    """``32024R1689R(02)`` -> ``32024R1689``: a corrigendum belongs to its act. Other forms unchanged
    (a ``(01)`` suffix names another act); an unparsable value is returned trimmed."""
    if not celex:
        return None
    parsed = parse_celex(celex)
    return parsed.act if parsed else celex.strip()


def is_corrigendum(celex: str | None) -> bool:
    parsed = parse_celex(celex)
    return bool(parsed and parsed.is_corrigendum)
