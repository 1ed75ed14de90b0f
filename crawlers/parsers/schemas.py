"""Declared shapes of the JSON answers the parsers read: only the fields we read, anything else allowed.

A source renaming a field must be loud, never a silent zero (issue 19, docs/sources-health.md):
- a **required** field missing (SPARQL ``?work``, HYS ``initiativeResultDtoPage.content``, a Comitology
  ``documentReference``...) fails the source with one line ``what : field : problem`` (a ParseError, in French
  like every reason a person reads: ``recherche SEDIA : results[0].metadata : absent``);
- an **expected** item field missing (a date, a title, a deadline) is counted: each parser's check
  leaves a :class:`Gap` note, the spider collects the notes of its callbacks (``crawlers.spiders.base``)
  and the run keeps them as warnings (``crawl_run.warnings``, shown by ``veille status``).

Every parser calls :func:`check` at its entry on the decoded JSON, then goes on with its own code.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from crawlers.parsers import ParseError

M = TypeVar("M", bound=BaseModel)
UNREADABLE = " : illisible"  # the field of a Gap counting items of another shape


@dataclass(frozen=True)
class Gap:
    """``missing`` of ``total`` items of ``what`` came without ``field`` (``field`` "": the total alone)."""

    what: str
    field: str
    missing: int
    total: int

    def text(self) -> str:
        if self.field.endswith(UNREADABLE):  # items of another shape, skipped (see check)
            where = self.field.removesuffix(UNREADABLE)
            return f"{self.what} : {self.missing} sur {self.total} illisible(s) ({where})"
        return f"{self.what} : {self.missing} sur {self.total} sans {self.field}"


_PENDING: list[Gap] = []


def note(gap: Gap) -> None:
    if gap.missing or (not gap.field and gap.total):
        _PENDING.append(gap)


def drain() -> list[Gap]:
    """The notes left since the last call (the spiders call it after each step of a callback)."""
    out = list(_PENDING)
    _PENDING.clear()
    return out


class Shape(BaseModel):
    """A JSON object we read: the fields we read declared, others allowed and kept."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
    EXPECTED: ClassVar[tuple[str, ...]] = ()  # fields an item should have (counted when absent)

    def gaps(self) -> list[str]:
        """The expected fields this item lacks (None, empty string or empty list)."""
        return [f for f in self.EXPECTED if getattr(self, f, None) in (None, "", [], {})]


def _walk(value: object) -> Iterator[Shape]:
    if isinstance(value, BaseModel):
        if isinstance(value, Shape):
            yield value
        for name in type(value).model_fields:
            yield from _walk(getattr(value, name))
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _walk(v)


def count_gaps(items: Iterable[Shape], what: str) -> list[Gap]:
    """One Gap per expected field, over the items of each declared kind found under ``items``."""
    totals: dict[str, int] = {}
    missing: dict[tuple[str, str], int] = {}
    for item in items:
        for shape in _walk(item):
            if not type(shape).EXPECTED and type(shape).gaps is Shape.gaps:
                continue
            label = getattr(type(shape), "WHAT", what)
            totals[label] = totals.get(label, 0) + 1
            for f in shape.gaps():
                missing[(label, f)] = missing.get((label, f), 0) + 1
    return [Gap(w, "", 0, n) for w, n in totals.items()] + [Gap(w, f, n, totals[w]) for (w, f), n in missing.items()]


def _where(loc: tuple, root: str) -> str:
    parts = [root] if root else []
    for p in loc:
        if isinstance(p, int):
            parts[-1:] = [f"{parts[-1]}[{p}]" if parts else f"[{p}]"]
        elif not str(p).startswith(("function-", "tagged-union")):
            parts.append(str(p))
    return ".".join(parts)


def check(model: type[M], data: object, what: str, root: str = "", strip: int = 0) -> M:
    """``data`` as ``model``, or a ParseError ``what: field: problem``; expected-field gaps are noted.

    An item of a list that does not fit (a bare id string among event objects) is one odd record: it is
    counted and left to the parser, which skips it. A whole list of items that do not fit is drift: loud."""
    try:
        obj = model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        odd = _odd_items(errors, data)
        if odd is None:
            raise ParseError(_problem(errors[0], what, root, strip)) from None
        for (path, size), indexes in odd.items():
            note(Gap(what, f"{_where(path[strip:], root) or 'éléments'}{UNREADABLE}", len(indexes), size))
        obj = model.model_validate(_without(data, odd))
    for gap in count_gaps([obj], what):
        note(gap)
    return obj


# The problems a changed answer shows most, in French; pydantic's own wording for the others.
PROBLEMS = {
    "missing": "absent",
    "list_type": "devrait être une liste",
    "dict_type": "devrait être un objet",
    "model_type": "devrait être un objet",
    "model_attributes_type": "devrait être un objet",
    "string_type": "devrait être une chaîne",
    "too_short": "vide",
}


def _problem(err: dict, what: str, root: str, strip: int) -> str:
    problem = str(err["msg"]).removeprefix("Value error, ")
    problem = PROBLEMS.get(err["type"], problem[:1].lower() + problem[1:])
    where = _where(tuple(err["loc"])[strip:], root)
    return f"{what} : {where} : {problem}" if where else f"{what} : {problem}"


def _odd_items(errors: list[dict], data: object) -> dict[tuple[tuple, int], set[int]] | None:
    """The failing items per list (path, length), or None when an error is not inside a list item, or when
    every item of a list fails (then the items' shape changed: that is drift, not one odd record)."""
    odd: dict[tuple[tuple, int], set[int]] = {}
    for err in errors:
        loc = tuple(err["loc"])
        at = next((i for i, p in enumerate(loc) if isinstance(p, int)), None)
        if at is None:
            return None
        items = _at(data, loc[:at])
        if not isinstance(items, list):
            return None
        odd.setdefault((loc[:at], len(items)), set()).add(loc[at])
    if any(len(indexes) >= size for (_, size), indexes in odd.items()):
        return None
    return odd


def _at(data: object, path: tuple) -> object:
    for key in path:
        if (
            isinstance(data, dict)
            and key in data
            or isinstance(data, list)
            and isinstance(key, int)
            and key < len(data)
        ):
            data = data[key]
        else:
            return None
    return data


def _without(data: object, odd: dict[tuple[tuple, int], set[int]]) -> object:
    """A copy of ``data`` without the odd items (the parser reads the original and skips them itself)."""
    import copy

    out = copy.deepcopy(data)
    for (path, _), indexes in sorted(odd.items(), key=lambda kv: -len(kv[0][0])):
        items = _at(out, path)
        if isinstance(items, list):
            items[:] = [v for i, v in enumerate(items) if i not in indexes]
    return out


# --- Cellar SPARQL JSON results (our queries' variables) --------------------------------------------


class Cell(Shape):
    value: Any


class DiscoveryRow(Shape):
    WHAT: ClassVar[str] = "lignes de découverte SPARQL"
    EXPECTED = ("celex", "ojDate")
    work: Cell
    celex: Cell | None = None
    ojDate: Cell | None = None  # the query's variable


class DetailsRow(Shape):
    WHAT: ClassVar[str] = "lignes de détails SPARQL"
    EXPECTED = ("title", "docDate")
    work: Cell
    title_en: Cell | None = None
    title_fr: Cell | None = None
    docDate: Cell | None = None

    def gaps(self) -> list[str]:
        out = [] if (self.title_en or self.title_fr) else ["titre (title_en, title_fr)"]
        return out + (["docDate"] if self.docDate is None else [])


class Discovery(BaseModel):
    rows: list[DiscoveryRow]


class Details(BaseModel):
    rows: list[DetailsRow]


def check_rows(model: type[Discovery] | type[Details], bindings: list[dict], what: str) -> None:
    """SPARQL rows (already decoded by ``load_results``) against the variables our query selects."""
    check(model, {"rows": bindings}, what, root="results.bindings", strip=1)


# --- Have Your Say -------------------------------------------------------------------------------------


class HysStatus(Shape):
    WHAT: ClassVar[str] = "currentStatuses HYS"
    frontEndStage: str | None = None
    receivingFeedbackStatus: str | None = None
    feedbackEndDate: str | None = None

    def gaps(self) -> list[str]:  # an open or closed feedback window has an end
        status = (self.receivingFeedbackStatus or "").upper()
        return ["feedbackEndDate"] if status in ("OPEN", "CLOSED") and not self.feedbackEndDate else []


class HysItem(Shape):
    WHAT: ClassVar[str] = "initiatives HYS"
    id: int | float | str
    shortTitle: str | None = None
    initiativeTranslations: list[dict] | None = None
    currentStatuses: list[HysStatus] | None = None  # real items may lack it: see the page

    def gaps(self) -> list[str]:
        return [] if (self.shortTitle or self.initiativeTranslations) else ["titre (shortTitle)"]


class HysSearch(Shape):
    class Page(Shape):
        WHAT: ClassVar[str] = "pages de recherche HYS"
        content: list[HysItem]

        def gaps(self) -> list[str]:  # one real item in two has none: only all of them without is drift
            lost = self.content and all(i.currentStatuses is None for i in self.content)
            return ["content[].currentStatuses (dans toutes les initiatives)"] if lost else []

    initiativeResultDtoPage: Page


class HysHalSearch(Shape):
    class Embedded(Shape):
        initiativeResultDtoes: list[HysItem] = Field(default_factory=list)

    embedded: Embedded | None = Field(None, alias="_embedded")


class HysPublication(Shape):
    WHAT: ClassVar[str] = "publications HYS"
    type: str | None = None
    receivingFeedbackStatus: str | None = None
    endDate: str | None = None

    def gaps(self) -> list[str]:
        status = (self.receivingFeedbackStatus or "").upper()
        return ["endDate"] if status in ("OPEN", "CLOSED") and not self.endDate else []


class HysDetail(Shape):
    id: int | float | str
    publications: list[HysPublication]


def check_hys_search(data: dict) -> None:
    """Either envelope; neither is left to the parser's own error (it names the keys it found)."""
    if "initiativeResultDtoPage" in data:
        check(HysSearch, data, "searchInitiatives")
    elif "_embedded" in data or "page" in data:
        check(HysHalSearch, data, "searchInitiatives")


# --- EP Open Data ------------------------------------------------------------------------------------


class OdpProcedure(Shape):
    WHAT: ClassVar[str] = "procédures EP Open Data"
    label: str | None = None
    process_id: str | None = None
    process_title: dict[str, Any] | None = None
    consists_of: list[Any] = Field(default_factory=list)

    @model_validator(mode="after")
    def _named(self) -> OdpProcedure:
        if not (self.label or self.process_id):
            raise ValueError("label : absent (et pas de process_id)")
        return self

    def gaps(self) -> list[str]:
        out = [] if self.process_title else ["process_title"]
        events = [e for e in self.consists_of if isinstance(e, dict)]
        if events and not any(e.get("activity_date") for e in events):
            out.append("consists_of[].activity_date")
        return out


class OdpAnswer(Shape):
    data: list[OdpProcedure] = Field(min_length=1)


# --- Funding & Tenders ----------------------------------------------------------------------------


class SediaMeta(Shape):
    identifier: list[str] | str | None = None
    title: list[str] | str | None = None
    deadlineDate: list[str] | str | None = None
    type: list[str] | str | None = None


class SediaRow(Shape):
    WHAT: ClassVar[str] = "résultats SEDIA"
    metadata: SediaMeta

    def gaps(self) -> list[str]:
        m = self.metadata
        if not m.identifier:
            return ["metadata.identifier"]
        return [f"metadata.{f}" for f in ("title", "deadlineDate") if not getattr(m, f)]


class SediaSearch(Shape):
    results: list[SediaRow]

    @model_validator(mode="after")
    def _identified(self) -> SediaSearch:
        if self.results and not any(r.metadata.identifier for r in self.results):
            raise ValueError(f"results[].metadata.identifier : absent des {len(self.results)} résultats")
        return self


class BulkRecord(Shape):
    """One ``GrantTenderObj`` of the bulk file (tenders included: they are skipped after the check)."""

    WHAT: ClassVar[str] = "enregistrements grantsTenders"
    identifier: str | int | None = None
    type: str | int | None = None
    title: str | None = None

    def gaps(self) -> list[str]:
        if not self.identifier:
            return ["identifier"]
        return ["title"] if str(self.type) == "1" and not self.title else []


# --- Comitology Register ------------------------------------------------------------------------------


class RegDelRow(Shape):
    WHAT: ClassVar[str] = "actes délégués RegDel"
    EXPECTED = ("completeTitle", "delegatedActStatus")
    id: int | str | None = None
    completeTitle: str | None = None
    delegatedActStatus: str | None = None


class RegDelList(Shape):
    rows: list[RegDelRow] = Field(alias="list")

    @model_validator(mode="after")
    def _identified(self) -> RegDelList:
        if self.rows and all(r.id is None for r in self.rows):
            raise ValueError(f"list[].id : absent des {len(self.rows)} lignes")
        return self


class ComitologyCommittee(Shape):
    code: str | int
    committeeTitles: list[dict] | None = None


class ComitologyDoc(Shape):
    WHAT: ClassVar[str] = "documents de comitologie"
    documentReference: str | int
    title: str | None = None
    documentType: dict | None = None
    meetingStartDate: str | None = None
    creationDate: str | None = None

    def gaps(self) -> list[str]:
        out = [f for f in ("title", "documentType", "creationDate") if not getattr(self, f)]
        draft = str((self.documentType or {}).get("letter") or "") == "D"
        return out + (["meetingStartDate (échéance)"] if draft and not self.meetingStartDate else [])


class ComitologyPage(Shape):
    content: list[ComitologyDoc]


class CommitteeList(BaseModel):
    rows: list[ComitologyCommittee]


def check_committees(rows: list) -> None:
    check(CommitteeList, {"rows": rows}, "comités de comitologie", root="content", strip=1)


class GapCounter:
    """Gaps summed over items checked one by one (the bulk file, streamed), noted at the end."""

    def __init__(self, model: type[Shape], what: str):
        self.model, self.what, self.items = model, what, 0
        self.missing: dict[str, int] = {}

    def add(self, obj: dict) -> Shape | None:
        try:
            item = self.model.model_validate(obj)
        except ValidationError:
            return None  # a record of another shape: the parser's own checks decide
        self.items += 1
        for f in item.gaps():
            self.missing[f] = self.missing.get(f, 0) + 1
        return item

    def flush(self) -> None:
        note(Gap(self.what, "", 0, self.items))
        for f, n in self.missing.items():
            note(Gap(self.what, f, n, self.items))
