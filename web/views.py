"""Pure helpers behind the pages: explanations, highlighting, version diffs, the weekly chart.

Everything that ends up in HTML from here is escaped here (``markupsafe.escape``) before any
markup of ours is added, so templates may output the results as ``Markup``.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

from markupsafe import Markup, escape

from nlp.explain import FIELD_NAMES, read_fired, rule_title
from web.i18n import current, gettext_

# --- explanations ---------------------------------------------------------------------------


@dataclass
class FiredRule:
    name: str  # the rule id (shown to analysts only)
    weight: float | None = None
    words: list[str] = field(default_factory=list)  # the phrases as written in the notice, each once
    field: str | None = None
    title: str = ""  # the rule's description from the rules file (French first)

    @property
    def against(self) -> bool:
        return (self.weight or 0) < 0

    @property
    def where(self) -> str:
        return FIELD_NAMES[current()].get(self.field or "", "")


def fired_rules(explanation: dict | None) -> list[FiredRule]:
    """The rules that fired, from a LabelScore.explanation as nlp writes it (``nlp.explain``), described in
    the request's language; rows stored by older versions (``words`` as a string, no description) read the same."""
    return [
        FiredRule(
            name=f["rule"] or "rule",
            weight=f["weight"],
            words=f["words"],
            field=f["field"],
            title=rule_title(f, current()),
        )
        for f in read_fired(explanation)
    ]


# --- highlighting ---------------------------------------------------------------------------

_WORD = re.compile(r"[^\W_]+")  # a word as nlp and the search index split them (core.lang.WORD_RE)


def _fold(text: str) -> str:
    """Lower-case, accents removed, one char per input char (so offsets stay valid)."""
    return "".join(unicodedata.normalize("NFD", c.lower())[0] for c in text)


def _phrase_pattern(phrase: str) -> str | None:
    """A phrase's words in order, whatever separates them in the text (``d'origine``, ``d origine``,
    ``2017/745``): old rows stored the matched words joined by spaces."""
    words = _WORD.findall(_fold(phrase))
    return r"[^\w]+".join(re.escape(w) for w in words) if words else None


def highlight(text: str | None, words: Iterable[str]) -> Markup:
    """``text`` escaped, with each occurrence of the phrases ``words`` (case/accent-insensitive, whole
    words only) in <mark>."""
    text = text or ""
    pats = {p for w in words if isinstance(w, str) for p in [_phrase_pattern(w)] if p}
    if not pats:
        return escape(text)
    pattern = re.compile(r"(?<!\w)(?:" + "|".join(sorted(pats, key=len, reverse=True)) + r")(?!\w)")
    folded, parts, pos = _fold(text), [], 0
    for m in pattern.finditer(folded):
        parts.append(escape(text[pos : m.start()]))
        parts.append(Markup("<mark>%s</mark>") % text[m.start() : m.end()])
        pos = m.end()
    parts.append(escape(text[pos:]))
    return Markup("").join(parts)


# --- version diffs --------------------------------------------------------------------------


@dataclass
class FieldChange:
    name: str
    old: object
    new: object
    inline: Markup | None = None  # word diff for long text


def _word_diff(old: str, new: str) -> Markup:
    a, b = old.split(), new.split()
    out = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            out.append(escape(" ".join(a[i1:i2])))
            continue
        if i2 > i1:
            out.append(Markup("<del>%s</del>") % " ".join(a[i1:i2]))
        if j2 > j1:
            out.append(Markup("<ins>%s</ins>") % " ".join(b[j1:j2]))
    return Markup(" ").join(out)


def snapshot_changes(old: dict | None, new: dict) -> list[FieldChange]:
    """What changed between two NoticeVersion snapshots (all fields for the first version)."""
    changes = []
    for name in sorted(set(new) | set(old or {})):
        before, after = (old or {}).get(name), new.get(name)
        if old is not None and before == after:
            continue
        if old is None and after in (None, "", [], {}):
            continue
        inline = None
        if old is not None and isinstance(before, str) and isinstance(after, str) and len(before + after) > 80:
            inline = _word_diff(before, after)
        changes.append(FieldChange(name, before, after, inline))
    return changes


# --- weekly chart ---------------------------------------------------------------------------

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f"]


def week_start(d: date) -> date:
    return d - timedelta(days=d.weekday())


def _ticks(peak: int) -> list[int]:
    step = max(1, -(-peak // 4))
    return list(range(0, peak + step, step))


def weekly_chart(counts: dict[str, dict[date, int]], weeks: list[date], width: int = 880, height: int = 280) -> Markup:
    """A stacked bar chart (inline SVG) of notices per week, one colour per label; no JavaScript."""
    left, right, top, bottom = 36, 190, 12, 30  # right: the legend (names up to 18 characters)
    plot_w, plot_h = width - left - right, height - top - bottom
    labels = sorted(counts)
    totals = [sum(counts[lab].get(wk, 0) for lab in labels) for wk in weeks]
    ticks = _ticks(max([1, *totals]))
    peak = ticks[-1]
    slot = plot_w / max(1, len(weeks))
    bar = max(1.0, slot * 0.8)
    colours = {lab: PALETTE[k % len(PALETTE)] for k, lab in enumerate(labels)}
    svg = [
        Markup('<svg class="chart" role="img" viewBox="0 0 %d %d" width="%d" height="%d">')
        % (width, height, width, height),
        Markup("<title>%s</title>") % gettext_("Notices per week per label"),
    ]
    for t in ticks:
        y = top + plot_h - t / peak * plot_h
        svg.append(Markup('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" class="grid"/>') % (left, left + plot_w, y, y))
        svg.append(Markup('<text x="%d" y="%.1f" class="axis" text-anchor="end">%d</text>') % (left - 4, y + 4, t))
    tip = gettext_("week of %(day)s: %(label)s %(n)s")
    for i, wk in enumerate(weeks):
        x = left + i * slot + (slot - bar) / 2
        base = top + plot_h
        for lab in labels:
            n = counts[lab].get(wk, 0)
            if not n:
                continue
            h = n / peak * plot_h
            base -= h
            svg.append(
                Markup(
                    '<rect class="bar" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s</title></rect>'
                )
                % (x, base, bar, h, colours[lab], tip % {"day": wk.isoformat(), "label": lab, "n": n})
            )
        if i % max(1, len(weeks) // 8) == 0:
            svg.append(
                Markup('<text x="%.1f" y="%d" class="axis" text-anchor="start">%s</text>')
                % (left + i * slot, height - 8, wk.strftime("%d/%m/%y"))  # no month names: they would be English
            )
    for k, lab in enumerate(labels):
        ly = top + 14 + k * 18
        key = Markup('<rect x="%d" y="%d" width="12" height="12" fill="%s"/>')
        svg.append(key % (width - right + 12, ly - 10, colours[lab]))
        total = sum(counts[lab].get(wk, 0) for wk in weeks)
        svg.append(Markup('<text x="%d" y="%d" class="legend">%s (%d)</text>') % (width - right + 30, ly, lab, total))
    svg.append(Markup("</svg>"))
    return Markup("").join(svg)
