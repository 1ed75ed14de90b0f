"""What a digest or an alert says, as plain data (rendering is in ``render.py`` and ``slack.py``).

Grouped by label, then by kind (adopted acts / proposals and procedure steps / guidance and news),
ranked by score. Strings are cleaned here (one line, no control characters) and escaped by each
renderer for its own output.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from urllib.parse import quote

from alerts.config import Routing
from alerts.escape import clean, safe_url
from alerts.routing import Candidate, routed_labels
from core.dates import as_day, fr_date, paris_time
from core.lang import plainly_other
from core.profiles import Label
from core.records import as_utc
from nlp.explain import sentence
from storage.health import FailedRun

CELEX_RE = re.compile(r"^[0-9CE][0-9]{4}[A-Z]{1,2}[0-9A-Z()_.-]{1,20}$")

KIND_GROUPS = (
    ("acts", "Actes adoptés", {"act", "corrigendum"}),
    ("proposals", "Propositions et étapes de procédure", {"proposal", "procedure", "draft_act", "consultation"}),
    ("news", "Orientations et actualités", {"guidance", "news", "funding_call", "other"}),
)
KIND_NAMES = {
    "act": "acte",
    "corrigendum": "rectificatif",
    "proposal": "proposition",
    "procedure": "procédure",
    "news": "actualité",
    "guidance": "orientations",
    "consultation": "consultation",
    "draft_act": "projet d'acte",
    "funding_call": "appel à projets",
    "other": "autre",
}


@dataclass
class Item:
    notice_id: int
    title: str
    title_other: str  # the other language's title, when both exist
    day: date | None
    source: str
    url: str | None  # http(s) only, else None
    summary: str
    kind: str
    label: str
    score: float
    also: list[str]  # other labels' names this item also concerns
    why: list[str]  # the rules that fired, with their words
    page_url: str | None = None  # its workbench page ([web] public_url), None when unset
    eurlex_url: str | None = None  # its EUR-Lex page, in the language of the title shown

    @property
    def kind_name(self) -> str:
        return KIND_NAMES.get(self.kind, self.kind)

    @property
    def date_text(self) -> str:
        return fr_date(self.day)

    @property
    def score_text(self) -> str:
        """The score as a French reader writes it: ``0,92``."""
        return f"{self.score:.2f}".replace(".", ",")

    @property
    def links(self) -> list[tuple[str, str]]:
        """(label, URL) of the item's workbench page and EUR-Lex page, for every renderer."""
        out = [("Fiche veille", self.page_url)] if self.page_url else []
        if self.eurlex_url:
            out.append((f"EUR-Lex ({'FR' if '/FR/' in self.eurlex_url else 'EN'})", self.eurlex_url))
        return out


@dataclass
class Group:
    key: str
    title: str
    items: list[Item]


@dataclass
class Section:
    label: str
    name: str
    groups: list[Group]

    @property
    def count(self) -> int:
        return sum(len(g.items) for g in self.groups)


@dataclass
class FailedSource:
    source: str
    runs: int
    last_error: str
    last_at: datetime

    @property
    def last_at_text(self) -> str:
        return paris_time(self.last_at)


@dataclass
class QuietSource:
    """A source gone quiet or degraded (storage.health): ``state`` in French, reasons one line each."""

    source: str
    state: str
    reasons: list[str]

    @property
    def text(self) -> str:
        return f"{self.source} : {self.state}" + (f" — {' ; '.join(self.reasons)}" if self.reasons else "")


@dataclass
class Digest:
    purpose: str  # digest | alert
    recipient: str
    channel: str
    day: date
    since: datetime | None
    sections: list[Section] = field(default_factory=list)
    failed: list[FailedSource] = field(default_factory=list)
    unhealthy: list[QuietSource] = field(default_factory=list)  # quiet or degraded, not failed
    rule: str | None = None  # the critical rule, for an alert; "J-10 ouvrés" for a reminder
    nothing_new: bool = False
    deadlines: list = field(default_factory=list)  # alerts.deadlines.DeadlineItem, by deadline
    archived: int = 0  # items older than the profile's window, archived without being sent
    window_days: int = 14

    @property
    def archived_text(self) -> str:
        """The one line saying old items were archived unsent; empty when none were."""
        n, days = self.archived, self.window_days
        if not n:
            return ""
        if n == 1:
            return f"1 notice plus ancienne que {days} jours a été archivée sans envoi."
        return f"{n} notices plus anciennes que {days} jours ont été archivées sans envoi."

    @property
    def count(self) -> int:
        return sum(s.count for s in self.sections)

    @property
    def items(self) -> list[Item]:
        return [i for s in self.sections for g in s.groups for i in g.items]

    @property
    def subject(self) -> str:
        if self.purpose == "alert":
            first = self.items[0].title if self.items else ""
            return clean(f"[Alerte veille UE] {self.rule or ''} — {first}", 180)
        if self.purpose == "reminder":
            first = self.deadlines[0] if self.deadlines else None
            when = f"échéance {first.deadline_text}" if first else ""
            return clean(f"[Rappel veille UE] {when} ({self.rule}) — {first.title if first else ''}", 180)
        if self.nothing_new:
            n = self.archived
            old = f" ; {n} notice{'s' * (n > 1)} ancienne{'s' * (n > 1)} archivée{'s' * (n > 1)}" if n else ""
            return f"Veille UE du {fr_date(self.day)} — sources vérifiées, rien de nouveau{old}"
        names = ", ".join(s.name.split(" — ")[0] for s in self.sections)
        n = self.count
        return clean(f"Veille UE du {fr_date(self.day)} — {n} nouveauté{'s' if n > 1 else ''} ({names})", 180)


def _one_line(text: str | None, limit: int = 260) -> str:
    """The first sentence (when it says something on its own), on one line, at most ``limit`` chars."""
    text = clean(text)
    end = text.find(". ", 40)
    if 0 < end < limit:
        text = text[: end + 1]
    return clean(text, limit)


def _why(cand: Candidate, label: str, limit: int = 3) -> list[str]:
    """The rules that fired, in words: their description and the phrases as written (``nlp.explain``)."""
    score = cand.scores.get(label)
    if not score:
        return []
    fired = [f for f in score.fired if f.get("label") in (None, label)]
    fired.sort(key=lambda f: -float(f.get("weight") or 0))
    out = ["retenu par un analyste"] if score.verdict else []
    return out + [clean(sentence(f), 300) for f in fired[:limit]]


def eurlex_url(celex: str | None, french: bool) -> str | None:
    """The act's EUR-Lex page, French or English; None without a well-formed CELEX number."""
    if not celex or not CELEX_RE.match(celex):
        return None
    return f"https://eur-lex.europa.eu/legal-content/{'FR' if french else 'EN'}/TXT/?uri=CELEX:{quote(celex, safe='')}"


def page_url(public_url: str | None, notice_id: int) -> str | None:
    return f"{public_url}/notice/{notice_id}" if public_url else None


def item_day(cand: Candidate) -> date | None:
    """The item's date: publication, else the document's own date, else when the watch first saw it."""
    return cand.published_at or cand.document_date or as_day(cand.first_seen)


def _titles(cand: Candidate) -> tuple[str, str, bool]:
    """The title shown, the other language's title (when both exist and differ), whether the one shown is French."""
    title_fr, title_en = clean(cand.title_fr, 400), clean(cand.title_en, 400)
    # "French" is the title shown: the French one, unless that field plainly holds English.
    french = bool(title_fr) and plainly_other("fr", title_fr) is None
    other = title_en if title_fr and title_en and title_en != title_fr else ""
    return title_fr or title_en or f"(sans titre) {cand.source} #{cand.id}", other, french


def item_for(
    cand: Candidate, label: str, routing: Routing, labels: dict[str, Label], public_url: str | None = None
) -> Item:
    title, other, french = _titles(cand)
    eurlex = eurlex_url(cand.celex, french)
    also = [labels[k].name if k in labels else k for k in routed_labels(routing, cand) if k != label]
    return Item(
        notice_id=cand.id,
        title=title,
        title_other=other,
        day=item_day(cand),
        source=clean(cand.source, 80),
        url=safe_url(cand.url),
        summary=_one_line(cand.summary_fr or cand.summary_en),
        kind=cand.kind,
        label=label,
        score=cand.scores[label].score if label in cand.scores else 0.0,
        also=also,
        why=_why(cand, label),
        page_url=page_url(public_url, cand.id),
        eurlex_url=eurlex if eurlex != safe_url(cand.url) else None,  # not twice when it is the source link
    )


def file_under(cand: Candidate, wanted: tuple[str, ...], routing: Routing) -> str:
    """The recipient's label this item goes under: its best routed one, else its best score."""
    routed = routed_labels(routing, cand)
    pool = [k for k in wanted if k in routed] or [k for k in wanted if k in cand.scores] or list(wanted)
    return max(pool, key=lambda k: cand.scores[k].score if k in cand.scores else 0.0) if pool else "autre"


def sections(items: list[Item], labels: dict[str, Label], order: tuple[str, ...]) -> list[Section]:
    """Items by label, then kind group; one notice is listed once, under its first item's label."""
    by_label: dict[str, list[Item]] = defaultdict(list)
    for item in {i.notice_id: i for i in reversed(items)}.values():
        by_label[item.label].append(item)
    for chosen in by_label.values():
        point_into_shared_pages(chosen)
    ranked = sorted(by_label, key=lambda k: order.index(k) if k in order else len(order))
    return [Section(k, labels[k].name if k in labels else k, _groups(by_label[k])) for k in ranked]


def _groups(items: list[Item]) -> list[Group]:
    """One label's items by kind group (adopted acts, proposals, news), by score then date."""
    groups = []
    for key, title, kinds in KIND_GROUPS:
        chosen = [i for i in items if i.kind in kinds or (key == "news" and i.kind not in KIND_NAMES)]
        chosen.sort(key=lambda i: (-i.score, -(i.day.toordinal() if i.day else 0), i.notice_id))
        if chosen:
            groups.append(Group(key, title, chosen))
    return groups


def point_into_shared_pages(items: list[Item]) -> None:
    """A listing page can be the only link two different items have (DG SANTE links every MDCG document to
    its MDCG guidance page): each then links to its own entry with a text fragment (``#:~:text=``, which
    browsers scroll to and highlight), so that no message lists one link for two items."""
    shared = Counter(i.url for i in items if i.url)
    for i in items:
        if i.url and shared[i.url] > 1 and "#" not in i.url:
            words = " ".join(i.title.split()[:8])
            i.url = f"{i.url}#:~:text={quote(words, safe='')}"


def quiet_sources(states: list) -> list[QuietSource]:
    """storage.health states -> the digest footer's lines (text cleaned: reasons quote what sources sent)."""
    return [QuietSource(clean(st.name, 80), st.label, [clean(r, 200) for r in st.reasons]) for st in states]


def failed_sources(runs: list[FailedRun]) -> list[FailedSource]:
    acc: dict[str, FailedSource] = {}
    for run in runs:
        when = as_utc(run.started_at)
        prev = acc.get(run.source)
        if prev is None or when >= prev.last_at:
            acc[run.source] = FailedSource(
                clean(run.source, 80), (prev.runs if prev else 0) + 1, clean(run.error or "erreur", 200), when
            )
        else:
            prev.runs += 1
    return sorted(acc.values(), key=lambda f: f.source)
